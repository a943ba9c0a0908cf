"""Records in the SDK simulator: vitals (units, privacy), medications with dose reminders by timer
(taken, missed, rescheduled, across a DST change), allergies, the web view's calls, bad input with
nothing written, and concurrent Taken presses of one dose recorded once."""

from __future__ import annotations

import asyncio

import pytest

from sdk import ViewError
from sdk.timers import timer_params
from tests.miniapps.health.records_fixtures import (
    DAY,
    DISCLAIMER,
    HOUR,
    START,
    app_module,
    local,
    open_health,
)


@pytest.fixture
def health(monkeypatch):
    return open_health(monkeypatch)


@pytest.fixture
def health_ny(monkeypatch):
    """Ann lives in New York."""
    return open_health(monkeypatch, zone="America/New_York")


def dose_timers(sim):
    return [t for t in sim.pending_timers() if t["name"] == "medication.dose"]


# --- vitals -------------------------------------------------------------------------------


async def test_vitals_are_recorded_in_canonical_units_and_shown_only_to_their_owner(health):
    sim, ann = health.sim, health.ann
    said = await health.command(ann, "/health vitals add weight 154 lb", health.group)
    assert "69.85 kg" in said and "154 lb" in said and DISCLAIMER in said
    await health.command(ann, "/health vitals add bp 120/80 mmHg", health.group)
    await health.command(ann, "/health vitals add glucose 99mg/dL")  # value and unit glued
    await health.command(ann, "/health vitals add heart_rate 72 bpm")
    await health.command(ann, "/health vitals add temperature 98.6 °F")

    stored = sorted(health.stored("vitals").values(), key=lambda v: v["kind"])
    assert [v["kind"] for v in stored] == [
        "blood_pressure",
        "glucose",
        "heart_rate",
        "temperature",
        "weight",
    ]
    by_kind = {v["kind"]: v for v in stored}
    assert by_kind["weight"]["value"] == 69.85 and by_kind["weight"]["owner"] == ann.id
    assert by_kind["blood_pressure"]["value"] == {"systolic": 120, "diastolic": 80}
    assert by_kind["glucose"]["value"] == 5.5 and by_kind["glucose"]["basis"] == "mass"
    assert by_kind["temperature"]["value"] == 37.0
    assert all(key.startswith(f"{ann.id}:") for key in health.stored("vitals"))

    latest = await health.command(ann, "/health vitals", health.group)
    assert "Weight: 69.85 kg" in latest and "Blood pressure: 120/80 mmHg" in latest
    assert DISCLAIMER in latest
    # Never posted in the group: everything was shown to Ann alone.
    assert sim.messages(health.group) == []
    assert sim.ephemeral(health.bea) == [] and sim.ephemeral(health.otto) == []
    assert health.last_card(ann)["buttons"][0]["opens"] == "webview"


async def test_one_kind_lists_its_last_readings(health):
    ann = health.ann
    for n, value in enumerate((70, 71, 72)):
        health.sim.now = START + n * HOUR
        await health.command(ann, f"/health vitals add weight {value} kg")
    said = await health.command(ann, "/health vitals weight")
    card = health.last_card(ann)
    assert card["title"].startswith("Weight")
    assert [f["value"] for f in card["fields"]] == ["72 kg", "71 kg", "70 kg"]  # newest first
    assert DISCLAIMER in said


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/health vitals add heart_rate 500 bpm", "not possible"),
        ("/health vitals add weight 70 furlongs", "not a unit of weight"),
        ("/health vitals add weight 70 m", "not a unit of weight"),
        ("/health vitals add bp 80/120 mmHg", "systolic pressure must be above"),
        ("/health vitals add height 180 cm", "Unknown vital"),
        ("/health vitals add weight 70", "Give the unit"),
        ("/health vitals add weight", "Usage"),
        ("/health vitals add weight abc kg", "not a number"),
        ("/health vitals weight kg", "Usage"),
        ("/health vitals height", "Unknown vital"),
    ],
)
async def test_bad_vitals_are_refused_and_nothing_is_written(health, text, expected):
    said = await health.command(health.ann, text)
    assert expected in said
    assert health.written() == {}


async def test_vital_views_add_and_chart_series(health):
    ann = health.ann
    for n, value in enumerate(("120/80", "130/85", "125/82")):
        health.sim.now = START + n * DAY
        added = await health.view(ann, "vitals.add", {"kind": "bp", "value": value, "unit": "mmHg"})
        assert added["disclaimer"] == DISCLAIMER
    added = await health.view(ann, "vitals.add", {"kind": "weight", "value": 70, "unit": "kg"})
    assert added["vital"]["value"] == 70 and added["vital"]["kind"] == "weight"

    series = await health.view(ann, "vitals.series", {"kind": "blood_pressure"})
    assert series["unit"] == "mmHg" and series["disclaimer"] == DISCLAIMER
    assert [p["value"]["systolic"] for p in series["points"]] == [120, 130, 125]  # oldest first
    assert [p["at"] for p in series["points"]] == [START, START + DAY, START + 2 * DAY]
    last_two = await health.view(ann, "vitals.series", {"kind": "bp", "limit": 2})
    assert [p["value"]["systolic"] for p in last_two["points"]] == [130, 125]

    summary = await health.view(ann, "records.summary")
    assert summary["latest"]["blood_pressure"]["shown"] == "125/82 mmHg"
    assert summary["latest"]["weight"]["value"] == 70
    assert {k["kind"] for k in summary["kinds"]} >= {"weight", "glucose", "heart_rate"}

    # Another person's view of the same calls shows their own (empty) records, never Ann's.
    theirs = await health.view(health.bea, "vitals.series", {"kind": "bp"})
    assert theirs["points"] == []
    assert (await health.view(health.bea, "records.summary"))["latest"] == {}


@pytest.mark.parametrize(
    ("name", "params", "code"),
    [
        ("vitals.add", {"kind": "weight", "value": "900", "unit": "kg"}, "impossible_value"),
        ("vitals.add", {"kind": "weight", "value": "70", "unit": "parsec"}, "unknown_unit"),
        ("vitals.add", {"kind": "mood", "value": "7", "unit": "kg"}, "unknown_kind"),
        ("vitals.add", {}, "unknown_kind"),
        ("vitals.series", {"kind": "weight", "limit": 0}, "invalid_limit"),
        ("vitals.series", {"kind": "weight", "limit": True}, "invalid_limit"),
        ("vitals.series", {"kind": 7}, "unknown_kind"),
        ("meds.add", {"name": "", "dose": "5 mg", "times": ["08:00"]}, "invalid_name"),
        ("meds.add", {"name": "X", "dose": "", "times": ["08:00"]}, "invalid_dose"),
        ("meds.add", {"name": "X", "dose": "5 mg", "times": ["8am"]}, "invalid_times"),
        ("meds.add", {"name": "X", "dose": "5 mg", "times": 8}, "invalid_times"),
        ("meds.add", {"name": "X", "dose": "5 mg", "times": []}, "invalid_times"),
        ("meds.stop", {"med_id": "med-000000000000"}, "unknown_medication"),
        ("meds.stop", {"med_id": "../x"}, "unknown_medication"),
        ("meds.adherence", {"days": 0}, "invalid_days"),
        ("dose.take", {"dose": "med-000000000000:1741000000000"}, "unknown_dose"),
        ("dose.take", {"dose": "nope"}, "unknown_dose"),
        ("allergies.add", {"substance": ""}, "invalid_substance"),
        ("allergies.add", {"substance": "nuts", "severity": "deadly"}, "invalid_severity"),
        ("allergies.add", {"substance": "nuts", "reaction": "x" * 200}, "invalid_reaction"),
        ("allergies.remove", {"allergy_id": "al-000000000000"}, "unknown_allergy"),
    ],
)
async def test_bad_view_calls_are_refused_with_a_code_and_nothing_is_written(
    health, name, params, code
):
    with pytest.raises(ViewError) as refused:
        await health.view(health.ann, name, params)
    assert refused.value.code == code
    assert health.written() == {} and health.sim.pending_timers() == []


# --- medications and dose reminders -------------------------------------------------------


async def test_a_medication_reminds_each_dose_in_the_owners_zone_and_reschedules(health_ny):
    health, sim, ann = health_ny, health_ny.sim, health_ny.ann
    said = await health.command(ann, "/health meds add Metformin 500 mg at 20:00,08:00")
    assert "Metformin 500 mg at 08:00, 20:00 (America/New_York)" in said
    (med,) = health.stored("medications").values()
    assert med["zone"] == "America/New_York" and med["times"] == ["08:00", "20:00"]
    assert med["active"] and med["owner"] == ann.id
    # 06:00 UTC is 01:00 in New York: the next dose is 08:00 there.
    (timer,) = dose_timers(sim)
    assert timer["key"] == f"dose:{med['id']}"
    assert local(timer["due_at"], "America/New_York").strftime("%H:%M") == "08:00"

    await sim.advance(hours=7, minutes=30)  # 08:30 in New York (13:30 UTC)
    (notified,) = sim.notifications(ann)
    assert notified["title"] == "💊 Time for: Metformin" and DISCLAIMER in notified["text"]
    assert notified["buttons"][0]["action_id"] == "dose.taken"
    (dose,) = health.stored("adherence").values()
    assert dose["status"] == "pending" and dose["time"] == "08:00" and dose["owner"] == ann.id
    # Rescheduled to the evening dose, and the missed check an hour after this one.
    (timer,) = dose_timers(sim)
    assert local(timer["due_at"], "America/New_York").strftime("%H:%M") == "20:00"
    missed = [t for t in sim.pending_timers() if t["name"] == "medication.missed"]
    assert [t["due_at"] - dose["due"] for t in missed] == [HOUR]

    message_id = await health.press_notified(ann, notified, "dose.taken")
    assert "Marked taken: Metformin 500 mg at 08:00" in health.told(ann)
    (dose,) = health.stored("adherence").values()
    assert dose["status"] == "taken" and dose["taken_at"] == sim.now and not dose["late"]
    assert "✓ Taken" in sim.card(message_id)["text"] and not sim.card(message_id).get("buttons")

    await sim.advance(hours=2)  # the missed check finds it taken: nothing more
    assert len(sim.notifications(ann)) == 1
    await sim.advance(days=2)  # two more days: four more doses, each reminded
    assert len(health.stored("adherence")) == 5 and len(sim.notifications(ann)) > 5
    assert len(dose_timers(sim)) == 1
    times = sorted({d["time"] for d in health.stored("adherence").values()})
    assert times == ["08:00", "20:00"]


async def test_a_dose_not_taken_within_the_hour_is_missed(health):
    sim, ann = health.sim, health.ann
    await health.command(ann, "/health meds add Aspirin 100 mg at 07:00")
    await sim.advance(hours=1, minutes=1)
    assert [d["status"] for d in health.stored("adherence").values()] == ["pending"]
    await sim.advance(hours=1)
    (dose,) = health.stored("adherence").values()
    assert dose["status"] == "missed" and dose["missed_notified"]
    _reminder, missed = sim.notifications(ann)
    assert missed["title"] == "💊 Missed: Aspirin" and "within the hour" in missed["text"]
    # Taken after all (late): recorded, flagged late.
    await health.press_notified(ann, missed, "dose.taken")
    (dose,) = health.stored("adherence").values()
    assert dose["status"] == "taken" and dose["late"]
    adherence = await health.view(ann, "meds.adherence", {"days": 7})
    assert adherence["taken"] == 1 and adherence["missed"] == 0 and adherence["adherence"] == 100


async def test_doses_stay_at_local_time_across_a_dst_change(monkeypatch):
    health = open_health(monkeypatch, zone="America/New_York")
    sim, ann = health.sim, health.ann
    sim.now = START + 5 * DAY  # Saturday 2025-03-08; clocks go forward on Sunday the 9th
    await health.command(ann, "/health meds add Vitamin_D 1000 IU at 08:00")
    await sim.advance(days=3)
    doses = sorted(health.stored("adherence").values(), key=lambda d: d["due"])
    assert [local(d["due"], "America/New_York").strftime("%d %H:%M") for d in doses] == [
        "08 08:00",
        "09 08:00",
        "10 08:00",
    ]
    utc_hours = [local(d["due"], "UTC").hour for d in doses]
    assert utc_hours == [13, 12, 12]  # EST, then EDT


async def test_stopping_a_medication_ends_its_reminders(health):
    sim, ann = health.sim, health.ann
    await health.command(ann, "/health meds add Ibuprofen 200 mg at 09:00")
    await health.command(ann, "/health meds add Ibuprofen 400 mg at 21:00")
    assert "Several are called that" in await health.command(ann, "/health meds stop ibuprofen")
    meds = health.stored("medications")
    first = next(m for m in meds.values() if m["dose"] == "200 mg")
    said = await health.command(ann, f"/health meds stop {first['id']}")
    assert "Stopped Ibuprofen" in said
    assert not health.stored("medications")[first["id"]]["active"]
    assert [t["key"] for t in dose_timers(sim)] != [f"dose:{first['id']}"]
    assert len(dose_timers(sim)) == 1
    await sim.advance(days=1)
    assert {d["med_id"] for d in health.stored("adherence").values()} == {
        m["id"] for m in meds.values() if m["dose"] == "400 mg"
    }
    listing = await health.command(ann, "/health meds")
    assert "Ibuprofen: 400 mg at 21:00" in listing and "200 mg" not in listing
    with pytest.raises(ViewError) as refused:  # stopped already
        await health.view(ann, "meds.stop", {"med_id": first["id"]})
    assert refused.value.code == "unknown_medication"


async def test_the_web_view_lists_adds_stops_and_takes(health):
    sim, ann = health.sim, health.ann
    added = await health.view(
        ann, "meds.add", {"name": "Metformin", "dose": "500 mg", "times": ["08:00", "20:00"]}
    )
    med = added["medication"]
    assert med["zone"] == "UTC" and added["disclaimer"] == DISCLAIMER
    listing = await health.view(ann, "meds.list")
    assert [m["id"] for m in listing["medications"]] == [med["id"]]
    assert [(d["time"], d["status"]) for d in listing["today"]] == [
        ("08:00", "upcoming"),
        ("20:00", "upcoming"),
    ]
    await sim.advance(hours=2, minutes=30)  # 08:30
    listing = await health.view(ann, "meds.list")
    (pending,) = [d for d in listing["today"] if d["status"] == "pending"]
    taken = await health.view(ann, "dose.take", {"dose": f"{med['id']}:{pending['due']}"})
    assert taken["outcome"] == "taken" and taken["dose"]["status"] == "taken"
    again = await health.view(ann, "dose.take", {"dose": f"{med['id']}:{pending['due']}"})
    assert again["outcome"] == "already"
    with pytest.raises(ViewError) as refused:  # Bea cannot mark Ann's dose
        await health.view(health.bea, "dose.take", {"dose": f"{med['id']}:{pending['due']}"})
    assert refused.value.code == "unknown_dose"
    stopped = await health.view(ann, "meds.stop", {"med_id": med["id"]})
    assert stopped["stopped"] == med["id"] and dose_timers(sim) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/health meds add Metformin 500 mg", "Usage"),
        ("/health meds add Metformin at 08:00", "Usage"),
        ("/health meds add Metformin 500 mg at 25:00", "not a time"),
        ("/health meds add Metformin 500 mg at", "Give the dose times"),
        ("/health meds add Metformin 500 mg at 1,2,3", "not a time"),
        (
            "/health meds add Metformin 500 mg at 01:00,02:00,03:00,04:00,05:00,06:00,07:00",
            "At most 6",
        ),
        ("/health meds add " + "x" * 61 + " 5 mg at 08:00", "1-60 characters"),
        ("/health meds stop", "Usage"),
        ("/health meds stop Nothing", "No active medication"),
        ("/health meds list all", "Usage"),
    ],
)
async def test_bad_medication_commands_write_nothing(health, text, expected):
    said = await health.command(health.ann, text)
    assert expected in said and DISCLAIMER in said
    assert health.written() == {} and health.sim.pending_timers() == []


async def test_concurrent_taken_presses_record_the_dose_once(health):
    sim, ann = health.sim, health.ann
    await health.command(ann, "/health meds add Aspirin 100 mg at 07:00")
    await sim.advance(hours=1)
    (notified,) = sim.notifications(ann)
    _, posted = await sim.call_capability(
        ann, health.service(ann), "messages.send_card", {"card": notified}
    )
    (key,) = health.stored("adherence")
    version = sim.storage_version("adherence", key)
    await asyncio.gather(*(sim.press(ann, posted["message_id"], "dose.taken") for _ in range(10)))
    told = [shown["text"] for shown in sim.ephemeral(ann)[-10:]]
    assert sum("Marked taken" in t for t in told) == 1
    assert sum("already marked taken" in t for t in told) == 9
    assert sim.storage_version("adherence", key) == version + 1  # one write
    assert health.stored("adherence")[key]["status"] == "taken"


async def test_someone_elses_dose_cannot_be_marked(health):
    sim, ann, bea = health.sim, health.ann, health.bea
    await health.command(ann, "/health meds add Aspirin 100 mg at 07:00")
    await sim.advance(hours=1)
    (notified,) = sim.notifications(ann)
    before = health.stored("adherence")
    # Bea's client sends a press for Ann's dose (the card posted where Bea can press it).
    _, posted = await sim.call_capability(
        bea, health.direct, "messages.send_card", {"card": notified}
    )
    await sim.press(bea, posted["message_id"], "dose.taken")
    assert "No such dose of yours" in health.told(bea)
    await sim.press(bea, posted["message_id"], "dose.taken", value="garbage")
    assert "No such dose of yours" in health.told(bea)
    assert health.stored("adherence") == before


# --- allergies ----------------------------------------------------------------------------


async def test_allergies_add_list_remove(health):
    ann = health.ann
    said = await health.command(ann, '/health allergies add penicillin "skin rash" hives severe')
    assert "penicillin (skin rash hives · severe)" in said
    await health.command(ann, "/health allergies add peanuts")
    assert "already on your list" in await health.command(ann, "/health allergies add Peanuts")
    listing = await health.command(ann, "/health allergies")
    assert "penicillin: skin rash hives · severe" in listing and "peanuts" in listing
    assert DISCLAIMER in listing
    (penicillin,) = [
        a for a in health.stored("allergies").values() if a["substance"] == "penicillin"
    ]
    assert penicillin["severity"] == "severe" and penicillin["owner"] == ann.id
    assert "Removed allergy: peanuts" in await health.command(
        ann, "/health allergies remove PEANUTS"
    )
    assert len(health.stored("allergies")) == 1
    # Bea cannot remove Ann's allergy: to her, it does not exist.
    with pytest.raises(ViewError) as refused:
        await health.view(health.bea, "allergies.remove", {"allergy_id": penicillin["id"]})
    assert refused.value.code == "unknown_allergy"
    assert "No allergy" in await health.command(health.bea, "/health allergies remove penicillin")
    assert len(health.stored("allergies")) == 1

    health.sim.now += HOUR
    added = await health.view(ann, "allergies.add", {"substance": "latex", "severity": "mild"})
    assert added["allergy"]["severity"] == "mild"
    listing = await health.view(ann, "allergies.list")
    assert [a["substance"] for a in listing["allergies"]] == ["penicillin", "latex"]
    removed = await health.view(ann, "allergies.remove", {"allergy_id": added["allergy"]["id"]})
    assert removed["removed"] == added["allergy"]["id"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/health allergies add", "Usage"),
        ("/health allergies add nuts rash deadly", None),  # "deadly" is part of the reaction
        ("/health allergies remove", "Usage"),
        ("/health allergies remove nuts", "No allergy"),
        ("/health allergies list", "Usage"),
        ("/health allergies add " + "x" * 61, "1-60 characters"),
    ],
)
async def test_bad_allergy_commands_write_nothing(health, text, expected):
    said = await health.command(health.ann, text)
    if expected is None:
        assert "Added allergy" in said
        (allergy,) = health.stored("allergies").values()
        assert allergy["reaction"] == "rash deadly" and allergy["severity"] is None
        return
    assert expected in said
    assert health.written() == {}


async def test_unknown_subcommands_and_the_welcome(health):
    ann = health.ann
    reply = await health.sim.command(ann, health.service(ann), "/health")
    assert DISCLAIMER in reply["card"]["text"]
    assert "Unknown /health command" in await health.command(ann, "/health vital")
    assert app_module("adherence").MISSED_AFTER_MS == HOUR


async def fire_twice(health, timer: dict) -> None:
    """Fire the pending ``timer`` twice at once, as two gateway nodes would."""
    sim = health.sim
    sim.now = max(sim.now, timer["due_at"])
    params = [
        timer_params(timer["name"], timer["key"], timer["due_at"], dict(timer["payload"]), 1)
        for _ in range(2)
    ]
    service = health.service(health.ann)
    await asyncio.gather(*(sim._invoke("timer", health.ann, service, p) for p in params))


async def test_two_copies_of_a_dose_firing_remind_once_and_miss_once(health):
    sim, ann = health.sim, health.ann
    await health.command(ann, "/health meds add Aspirin 100 mg at 07:00")
    (dose_timer,) = dose_timers(sim)
    await fire_twice(health, dose_timer)
    assert len(health.stored("adherence")) == 1 and len(sim.notifications(ann)) == 1
    assert len(dose_timers(sim)) == 1  # the next dose, scheduled once under its key
    (missed_timer,) = [t for t in sim.pending_timers() if t["name"] == "medication.missed"]
    await fire_twice(health, missed_timer)
    assert [d["status"] for d in health.stored("adherence").values()] == ["missed"]
    assert len(sim.notifications(ann)) == 2  # the reminder, then one "missed"


async def test_without_service_messages_doses_are_still_logged(monkeypatch):
    health = open_health(monkeypatch)
    sim, ann = health.sim, health.ann
    ann.notifications = False  # did not allow the app's service messages
    await health.command(ann, "/health meds add Aspirin 100 mg at 07:00")
    await sim.advance(hours=3)
    (dose,) = health.stored("adherence").values()
    assert dose["status"] == "missed" and sim.notifications(ann) == []
    assert len(dose_timers(sim)) == 1
