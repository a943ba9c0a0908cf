"""Weekly leagues per group, on the simulator's clock: starting one (in the group's zone, or the
starter's), the leaderboard card updated in place as XP is earned in the group (and not
elsewhere), the cutover at Monday 00:00 in the group's zone with promotion and demotion over two
weeks, the cutover exactly once when two nodes fire it at once, and bad input."""

from __future__ import annotations

import datetime

from tests.miniapps.courses.motivation_fixtures import (
    award,
    fire_concurrently,
    last_ephemeral,
    local,
    module,
    new_sim,
    walk_to,
)

BERLIN, TOKYO = "Europe/Berlin", "Asia/Tokyo"
WEEK_START = local(BERLIN, 2027, 3, 3, 12, 0)  # Wednesday of ISO week 2027-W09


def cards(sim, chat, title_start: str) -> list[dict]:
    return [
        m
        for m in sim.messages(chat)
        if m["type"] == "card" and m["card"]["title"].startswith(title_start)
    ]


def tiers(sim, chat) -> dict[str, str]:
    members = sim.storage("leagues")[chat.id]["members"]
    return {m["name"]: m["tier"] for m in members.values()}


def cutover_timers(sim) -> list[dict]:
    return [t for t in sim.pending_timers() if t["name"] == "league.cutover"]


async def test_a_league_starts_once_per_group_in_its_zone(monkeypatch):
    sim = new_sim(monkeypatch, WEEK_START)
    ann = sim.user("ann", time_zone=TOKYO)
    ben = sim.user("ben")
    group = sim.conversation(members=[ann, ben])

    await sim.command(ann, group, "/course league start Europe/Berlin")
    [card] = cards(sim, group, "🏆")
    assert card["card"]["title"] == "🏆 Weekly league · 2027-W09"
    assert "Monday 00:00 · Europe/Berlin" in str(card["card"]["fields"])
    [timer] = cutover_timers(sim)
    assert timer["due_at"] == int(local(BERLIN, 2027, 3, 8, 0, 0).timestamp() * 1000)
    assert timer["payload"] == {"week": "2027-W09"}
    assert sim.storage("leagues")[group.id]["zone"] == BERLIN

    await sim.command(ben, group, "/course league start Asia/Tokyo")
    assert last_ephemeral(sim, ben) == "This chat already has a league: /course league shows it."
    assert sim.storage("leagues")[group.id]["zone"] == BERLIN and len(cutover_timers(sim)) == 1

    # Without a zone: the starter's own (Ann's profile says Tokyo).
    other = sim.conversation(members=[ann, ben])
    await sim.command(ann, other, "/course league start")
    assert sim.storage("leagues")[other.id]["zone"] == TOKYO
    due = sorted(t["due_at"] for t in cutover_timers(sim))
    assert due[0] == int(local(TOKYO, 2027, 3, 8, 0, 0).timestamp() * 1000)

    await sim.command(ben, group, "/course league")  # the card again, kept up to date from now
    assert len(cards(sim, group, "🏆")) == 2
    assert sim.storage("leagues")[group.id]["message_id"] == cards(sim, group, "🏆")[-1]["id"]


async def test_bad_input_is_refused_and_writes_nothing(monkeypatch):
    sim = new_sim(monkeypatch, WEEK_START)
    ann = sim.user("ann")
    direct = sim.conversation(members=[ann], type="direct")
    group = sim.conversation(members=[ann])

    await sim.command(ann, direct, "/course league start Europe/Berlin")
    assert last_ephemeral(sim, ann).startswith("Leagues run in groups")
    await sim.command(ann, direct, "/course league")
    assert last_ephemeral(sim, ann).startswith("Leagues run in groups")
    await sim.command(ann, group, "/course league")
    assert last_ephemeral(sim, ann).startswith("No league in this chat yet")
    for zone in ("Mars/Olympus", "../../etc/passwd", "europe/berlin", "UTC+3"):
        await sim.command(ann, group, f"/course league start {zone}")
        assert last_ephemeral(sim, ann).startswith("Unknown time zone"), zone
    await sim.command(ann, group, "/course league start Europe/Berlin now")
    assert last_ephemeral(sim, ann).startswith("Usage: /course league")
    await sim.command(ann, group, "/course league table")
    assert last_ephemeral(sim, ann).startswith("Usage: /course league")
    assert sim.storage("leagues") == {} and cutover_timers(sim) == []
    assert sim.messages(group) == [] and sim.messages(direct) == []


async def test_weekly_cutover_promotes_the_top_three_and_demotes_the_bottom_three(monkeypatch):
    sim = new_sim(monkeypatch, WEEK_START)
    names = ["ana", "ben", "cy", "dee", "eli", "fay", "gus"]
    people = [sim.user(n) for n in names]
    group = sim.conversation(members=people)
    await sim.command(people[0], group, "/course league start Europe/Berlin")
    board_id = cards(sim, group, "🏆")[0]["id"]

    for n, person in enumerate(people):
        await award(sim, person, group, 70 - 10 * n, f"w1-{n}")
    # XP earned outside the group counts in no league.
    await award(sim, people[6], sim.conversation(members=[people[6]], type="direct"), 500, "dm")

    board = sim.card(board_id)
    assert len(sim.card_history(board_id)) == 1 + len(people)  # updated in place, each time
    assert board["text"].splitlines()[0] == "1. Ana · 🥉 Bronze · 70 XP"
    assert board["text"].splitlines()[6] == "7. Gus · 🥉 Bronze · 10 XP"

    fired = await walk_to_monday(sim, 2027, 3, 8)
    assert [f["name"] for f in fired] == ["league.cutover"]
    [results] = cards(sim, group, "🏁")
    assert results["card"]["title"] == "🏁 League results · 2027-W09"
    lines = results["card"]["text"].splitlines()
    assert lines[0] == "1. Ana · 70 XP · Bronze → Silver ⬆"
    assert lines[3] == "4. Dee · 40 XP"
    assert lines[6] == "7. Gus · 10 XP"  # Bronze is the lowest tier
    assert tiers(sim, group) == dict(
        Ana="Silver",
        Ben="Silver",
        Cy="Silver",
        Dee="Bronze",
        Eli="Bronze",
        Fay="Bronze",
        Gus="Bronze",
    )
    [timer] = cutover_timers(sim)
    assert timer["payload"] == {"week": "2027-W10"}
    assert timer["due_at"] == int(local(BERLIN, 2027, 3, 15, 0, 0).timestamp() * 1000)
    assert sim.card(board_id)["title"] == "🏆 Weekly league · 2027-W10"
    assert "🥈 Silver · 0 XP" in sim.card(board_id)["text"]

    # Week 2: the order turns round. XP just after Monday 00:00 counts for the new week.
    await walk_to(sim, local(BERLIN, 2027, 3, 8, 0, 30))
    for n, person in enumerate(people):
        await award(sim, person, group, 10 + 10 * n, f"w2-{n}")
    week2 = sim.storage("league_weeks")[f"{group.id}:2027-W10"]
    assert sum(v for k, v in week2.items() if k.startswith("xp_")) == sum(
        10 + 10 * n for n in range(7)
    )
    await walk_to_monday(sim, 2027, 3, 15)
    results = cards(sim, group, "🏁")[-1]["card"]
    assert results["text"].splitlines()[4] == "5. Cy · 30 XP · Silver → Bronze ⬇"
    assert tiers(sim, group) == dict(
        Ana="Bronze",
        Ben="Bronze",
        Cy="Bronze",
        Dee="Bronze",
        Eli="Silver",
        Fay="Silver",
        Gus="Silver",
    )


async def walk_to_monday(sim, year: int, month: int, day: int) -> list:
    fired_before = len(sim.timers_fired)
    await walk_to(sim, local(BERLIN, year, month, day, 0, 0) + datetime.timedelta(seconds=1))
    return sim.timers_fired[fired_before:]


async def test_the_cutover_happens_once_when_two_nodes_fire_it_at_once(monkeypatch):
    sim = new_sim(monkeypatch, WEEK_START)
    people = [sim.user(n) for n in ("ana", "ben", "cy", "dee")]
    group = sim.conversation(members=people)
    await sim.command(people[0], group, "/course league start Europe/Berlin")
    for n, person in enumerate(people):
        await award(sim, person, group, 40 - 10 * n, f"xp-{n}")
    [timer] = cutover_timers(sim)

    await fire_concurrently(sim, timer, people[0], group, copies=2)

    assert len(cards(sim, group, "🏁")) == 1
    assert tiers(sim, group) == dict(Ana="Silver", Ben="Silver", Cy="Silver", Dee="Bronze")
    week = sim.storage("league_weeks")[f"{group.id}:2027-W09"]
    assert week["state"] == "closed" and [r["rank"] for r in week["results"]] == [1, 2, 3, 4]
    assert sim.storage("leagues")[group.id]["applied_week"] == "2027-W09"
    [next_timer] = cutover_timers(sim)  # both firings set the group's one timer to one time
    assert next_timer["payload"] == {"week": "2027-W10"}
    assert next_timer["due_at"] == int(local(BERLIN, 2027, 3, 15, 0, 0).timestamp() * 1000)

    # A late retry of the same firing changes nothing either.
    await fire_concurrently(sim, timer, people[0], group, copies=1)
    assert len(cards(sim, group, "🏁")) == 1
    assert tiers(sim, group)["Ana"] == "Silver"
    assert len(cutover_timers(sim)) == 1

    # The next week's cutover still comes, by the timer.
    fired = await walk_to_monday(sim, 2027, 3, 15)
    assert [f["name"] for f in fired] == ["league.cutover"]
    assert len(cards(sim, group, "🏁")) == 2
    assert module("leagues").week_label(datetime.date(2027, 3, 15)) == "2027-W11"
