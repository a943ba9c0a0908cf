"""Daily streaks in the learner's time zone, on the simulator's clock: a streak across New York's
spring-forward (a 23-hour day counts once) and fall-back (a 25-hour day counts once), a flight
Tokyo → Los Angeles (the same date twice, and an earlier one, count nothing) and back (a skipped
local date is a missed day), freezes bought with XP (used for a missed day, at most two held, a
purchase refused when XP is short, concurrent purchases bounded), and bad input."""

from __future__ import annotations

import asyncio

from tests.miniapps.courses.motivation_fixtures import (
    award,
    last_ephemeral,
    local,
    new_sim,
    streak,
    walk_to,
    xp_total,
)

NY, TOKYO, LA = "America/New_York", "Asia/Tokyo", "America/Los_Angeles"


async def test_a_streak_across_new_yorks_dst_changes_counts_calendar_dates(monkeypatch):
    sim = new_sim(monkeypatch, local(NY, 2027, 3, 13, 23, 30))
    ana = sim.user("ana", time_zone=NY)
    chat = sim.conversation(members=[ana], type="direct")

    await award(sim, ana, chat, 10, "r1")  # Sat 13 March, 23:30 EST
    assert streak(sim, ana)["count"] == 1 and streak(sim, ana)["last_date"] == "2027-03-13"

    await walk_to(sim, local(NY, 2027, 3, 14, 0, 10))  # Sunday: clocks spring forward at 2:00
    await award(sim, ana, chat, 10, "r2")
    assert streak(sim, ana)["count"] == 2

    # 23:50 EDT on the 23-hour Sunday is already Monday 03:50 in UTC: still the same local date.
    await walk_to(sim, local(NY, 2027, 3, 14, 23, 50))
    await award(sim, ana, chat, 10, "r3")
    assert streak(sim, ana)["count"] == 2 and streak(sim, ana)["last_date"] == "2027-03-14"

    await walk_to(sim, local(NY, 2027, 3, 15, 0, 5))
    await award(sim, ana, chat, 10, "r4")
    assert (streak(sim, ana)["count"], streak(sim, ana)["best"]) == (3, 3)

    # Fall back: Sunday 7 November 2027 lasts 25 hours; its first and last minutes are one date.
    await walk_to(sim, local(NY, 2027, 11, 6, 21, 0))
    await award(sim, ana, chat, 10, "r5")  # a long gap: a new streak
    await walk_to(sim, local(NY, 2027, 11, 7, 0, 1))
    await award(sim, ana, chat, 10, "r6")
    await walk_to(sim, local(NY, 2027, 11, 7, 23, 59))
    await award(sim, ana, chat, 10, "r7")
    assert (streak(sim, ana)["count"], streak(sim, ana)["best"]) == (2, 3)

    await sim.command(ana, chat, "/course streak")
    shown = last_ephemeral(sim, ana)
    assert shown.startswith("🔥 2-day streak") and "Today is done" in shown


async def test_travel_counts_the_date_in_the_zone_at_the_time_of_each_activity(monkeypatch):
    sim = new_sim(monkeypatch, local(TOKYO, 2027, 3, 10, 8, 0))
    ken = sim.user("ken", time_zone=TOKYO)
    chat = sim.conversation(members=[ken], type="direct")

    await award(sim, ken, chat, 10, "tokyo-morning")  # Wed 10 March in Tokyo
    assert streak(sim, ken)["last_date"] == "2027-03-10"

    # Flies to Los Angeles, landing on Tuesday 9 March local time: an earlier date, not counted.
    sim.set_time_zone(ken, LA)
    await walk_to(sim, local(LA, 2027, 3, 9, 18, 0))
    await award(sim, ken, chat, 10, "la-evening-before")
    assert (streak(sim, ken)["count"], streak(sim, ken)["last_date"]) == (1, "2027-03-10")
    # 10 March again, in Los Angeles: the same date, counted once.
    await walk_to(sim, local(LA, 2027, 3, 10, 10, 0))
    await award(sim, ken, chat, 10, "la-10th")
    assert streak(sim, ken)["count"] == 1
    await walk_to(sim, local(LA, 2027, 3, 11, 9, 0))
    await award(sim, ken, chat, 10, "la-11th")
    assert streak(sim, ken)["count"] == 2 and streak(sim, ken)["zone"] == LA

    # Flies back on the evening of the 11th (LA) and lands on the 13th (Tokyo): the 12th was
    # never a local date for him — a missed day, and with no freeze the streak starts again.
    await walk_to(sim, local(LA, 2027, 3, 11, 20, 0))
    sim.set_time_zone(ken, TOKYO)
    await walk_to(sim, local(TOKYO, 2027, 3, 13, 9, 0))
    await award(sim, ken, chat, 10, "tokyo-13th")
    assert (streak(sim, ken)["count"], streak(sim, ken)["best"]) == (1, 2)
    await sim.command(ken, chat, "/course streak")
    assert "Asia/Tokyo" in str(sim.ephemeral(ken)[-1]["card"]["fields"])


async def test_freezes_bought_with_xp_keep_a_streak_over_missed_days(monkeypatch):
    sim = new_sim(monkeypatch, local(NY, 2027, 5, 3, 12, 0))
    bea = sim.user("bea", time_zone=NY)
    chat = sim.conversation(members=[bea], type="direct")
    await award(sim, bea, chat, 120, "big")  # day 1 (3 May)
    assert xp_total(sim, bea) == 120

    await sim.command(bea, chat, "/course freeze")
    assert "you hold 1 / 2" in last_ephemeral(sim, bea)
    await sim.command(bea, chat, "/course freeze")
    assert streak(sim, bea)["freezes"] == 2 and xp_total(sim, bea) == 20
    await sim.command(bea, chat, "/course freeze")
    assert last_ephemeral(sim, bea) == "You already hold 2 freezes, the most you can hold."
    assert streak(sim, bea)["freezes"] == 2 and xp_total(sim, bea) == 20

    await walk_to(sim, local(NY, 2027, 5, 4, 12, 0))
    await award(sim, bea, chat, 10, "day2")
    # 5 May missed; 6 May: a freeze covers the 5th.
    await walk_to(sim, local(NY, 2027, 5, 6, 12, 0))
    await award(sim, bea, chat, 10, "day4")
    doc = streak(sim, bea)
    assert (doc["count"], doc["freezes"], doc["freezes_used"]) == (3, 1, 1)
    assert doc["frozen_dates"] == ["2027-05-05"]
    # Two days missed with one freeze held: the streak starts again, the freeze is kept.
    await walk_to(sim, local(NY, 2027, 5, 9, 12, 0))
    await sim.command(bea, chat, "/course streak")
    assert last_ephemeral(sim, bea).startswith("🔥 0-day streak")
    await award(sim, bea, chat, 10, "day7")
    doc = streak(sim, bea)
    assert (doc["count"], doc["best"], doc["freezes"]) == (1, 3, 1)


async def test_a_freeze_is_refused_when_xp_is_short_and_nothing_changes(monkeypatch):
    sim = new_sim(monkeypatch, local(NY, 2027, 5, 3, 12, 0))
    cy = sim.user("cy", time_zone=NY)
    chat = sim.conversation(members=[cy], type="direct")
    await award(sim, cy, chat, 30, "small")

    await sim.command(cy, chat, "/course freeze")
    assert last_ephemeral(sim, cy) == "A freeze costs 50 XP; you have 30 XP."
    assert xp_total(sim, cy) == 30 and streak(sim, cy)["freezes"] == 0
    assert not [k for k in sim.storage("xp_awards") if k.startswith("freeze:")]


async def test_concurrent_purchases_never_hold_more_than_two(monkeypatch):
    sim = new_sim(monkeypatch, local(NY, 2027, 5, 3, 12, 0))
    dan = sim.user("dan", time_zone=NY)
    chat = sim.conversation(members=[dan], type="direct")
    await award(sim, dan, chat, 500, "lots")

    await asyncio.gather(*(sim.command(dan, chat, "/course freeze") for _ in range(6)))
    assert streak(sim, dan)["freezes"] == 2
    assert xp_total(sim, dan) == 500 - 2 * 50


async def test_bad_input_is_answered_privately_and_writes_nothing(monkeypatch):
    sim = new_sim(monkeypatch, local(NY, 2027, 5, 3, 12, 0))
    eve = sim.user("eve")
    chat = sim.conversation(members=[eve], type="direct")
    await sim.command(eve, chat, "/course streak please")
    assert last_ephemeral(sim, eve).startswith("Usage: /course streak")
    await sim.command(eve, chat, "/course freeze 3")
    assert last_ephemeral(sim, eve).startswith("Usage: /course freeze")
    await sim.command(eve, chat, "/course streak")
    assert last_ephemeral(sim, eve).startswith("🔥 0-day streak\nNo streak yet")
    assert sim.storage("streaks") == {} and sim.messages(chat) == []
