"""The health app's read-only tool for the assistant, ``find_doctors``, through the SDK
simulator (``sim.invoke_tool``, as the host runs it: arguments checked against the manifest's
JSON Schema, the invocation read-only, its card posted as the health app's): the matching
practitioners as data with their next free times in the reader's zone, the practitioner card
``/health doctors`` shows (its Book button opens the web view: a person books), no match,
refused arguments, and that the tool writes nothing — in the simulator, and through the running
platform (a real gateway, the app in its sandboxed process, Socket.IO clients)."""

from __future__ import annotations

import pytest

from gateway.keys import MESSAGING, MINIAPPS
from sdk.errors import InvalidParams
from sdk.tools import TOOL_CAPABILITIES
from storage.mongo import now_ms
from tests.helpers import eventually
from tests.messaging.chat_helpers import app_cards, close_all, group, people
from tests.miniapps.health.booking_fixtures import PROFILE, at, open_clinic
from tests.miniapps.shop.e2e_helpers import grant_role, view
from tests.miniapps.shop.test_tools import app_state, tool_calls
from tests.miniapps.test_app_tools_e2e import concierge, use
from tests.miniapps.test_webview_calls import add_apps


@pytest.fixture
def clinic(monkeypatch):
    return open_clinic(monkeypatch)


def world(clinic) -> dict:
    """Everything the app could have changed: its storage, uploads, timers, payments."""
    sim = clinic.sim
    return {
        "storage": clinic.snapshot(),
        "media": sim.media_ids(),
        "timers": sim.pending_timers(),
        "payments": sim.payments,
    }


async def two_doctors(clinic):
    wang = await clinic.practitioner(
        "wang",
        name="Dr. Wei Wang",
        specialties=["cardiology"],
        languages=["zh", "en"],
        fee={"amount": 4550, "currency": "USD"},
        zone="Asia/Shanghai",
    )
    silva = await clinic.practitioner("silva")  # Dr. Ana Silva, general practice, free
    return wang, silva


async def test_find_doctors_answers_the_matches_and_the_doctors_card(clinic):
    wang, _silva = await two_doctors(clinic)
    reader = clinic.patient("heidi", locale="de-DE", time_zone="Europe/Berlin")
    answer = await clinic.sim.invoke_tool(
        reader, clinic.chat, "find_doctors", {"specialty": "Cardio"}
    )
    (doctor,) = answer["result"]
    next_free = doctor.pop("next_free")
    assert doctor == {
        "id": wang.id,
        "name": "Dr. Wei Wang",
        "specialties": ["cardiology"],
        "zone": "Asia/Shanghai",
        "fee": "45,50\xa0$",  # as the reader reads it
    }
    # Shanghai 09:00, 09:30, 10:00 on Monday 1 March are 02:00… in Berlin, German clock.
    assert len(next_free) == 3
    assert "02:00" in next_free[0] and "02:30" in next_free[1] and "03:00" in next_free[2]
    assert all("Europe/Berlin" in text and "1. März 2027" in text for text in next_free)
    card = clinic.sim.card(answer["message_id"])
    # The very card /health doctors shows the reader.
    await clinic.command(reader, "/health doctors cardio")
    assert clinic.said(reader) == card
    assert card["buttons"] == [
        {"label": "Book", "style": "primary", "opens": "webview", "path": f"#doctor={wang.id}"}
    ]
    assert clinic.sim.storage("appointments") == {} and clinic.sim.payments == {}


async def test_without_a_specialty_every_active_doctor_by_name_up_to_limit(clinic):
    wang, silva = await two_doctors(clinic)
    await clinic.practitioner("away", name="Dr. Away", active=False)
    pat = clinic.patient()
    every = await clinic.sim.invoke_tool(pat, clinic.chat, "find_doctors", {})
    assert [d["id"] for d in every["result"]] == [silva.id, wang.id]
    assert every["result"][0]["fee"] == "Free"
    assert clinic.sim.card(every["message_id"])["title"] == "Dr. Ana Silva"
    one = await clinic.sim.invoke_tool(pat, clinic.chat, "find_doctors", {"limit": 1})
    assert one["result"] == every["result"][:1]


async def test_a_held_slot_is_not_offered(clinic):
    _wang, silva = await two_doctors(clinic)
    pat, other = clinic.patient("pat", time_zone="Europe/Lisbon"), clinic.patient("oli")
    await clinic.hold(other, silva, at("Europe/Lisbon", "2027-03-01 09:00"))
    answer = await clinic.sim.invoke_tool(
        pat, clinic.chat, "find_doctors", {"specialty": "general practice"}
    )
    (doctor,) = answer["result"]
    first, *_ = doctor["next_free"]
    # 09:00 Lisbon is held by someone else: the next free one is 09:30.
    assert "9:30\u202fAM" in first
    assert not any("9:00\u202fAM" in text for text in doctor["next_free"])


async def test_no_match_is_an_empty_result_and_no_card(clinic):
    await two_doctors(clinic)
    pat = clinic.patient()
    answer = await clinic.sim.invoke_tool(
        pat, clinic.chat, "find_doctors", {"specialty": "dermatology"}
    )
    assert answer == {"result": [], "message_id": None}
    assert clinic.sim.messages(clinic.chat) == []


async def test_the_tool_only_reads(clinic):
    _wang, silva = await two_doctors(clinic)
    pat = clinic.patient()
    await clinic.hold(pat, silva, at("Europe/Lisbon", "2027-03-01 09:00"))
    before, start = world(clinic), len(clinic.sim.calls)
    await clinic.sim.invoke_tool(pat, clinic.chat, "find_doctors", {})
    await clinic.sim.invoke_tool(pat, clinic.chat, "find_doctors", {"specialty": "cardiology"})
    assert world(clinic) == before
    made = clinic.sim.calls[start:]
    assert made and all(c["ok"] for c in made), made  # nothing refused on the way either
    assert {c["method"] for c in made} <= TOOL_CAPABILITIES


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"specialty": ""}, "arguments.specialty"),
        ({"specialty": "c"}, "arguments.specialty"),
        ({"specialty": "x" * 41}, "arguments.specialty"),
        ({"specialty": "<script>"}, "arguments.specialty"),
        ({"specialty": ["cardiology"]}, "arguments.specialty"),
        ({"limit": 0}, "arguments.limit"),
        ({"limit": 6}, "arguments.limit"),
        ({"limit": "2"}, "arguments.limit"),
        ({"book": True}, "Additional properties"),
    ],
)
async def test_bad_arguments_are_refused_before_the_app_runs(clinic, arguments, problem):
    await two_doctors(clinic)
    pat = clinic.patient()
    before, start = world(clinic), len(clinic.sim.calls)
    with pytest.raises(InvalidParams) as refused:
        await clinic.sim.invoke_tool(pat, clinic.chat, "find_doctors", arguments)
    assert refused.value.code == "invalid_params" and problem in refused.value.message
    assert clinic.sim.calls[start:] == [] and world(clinic) == before
    assert clinic.sim.messages(clinic.chat) == []


# --- through the running platform ------------------------------------------------------------


@pytest.mark.timeout(120)
async def test_through_the_platform_the_tool_finds_a_doctor_and_writes_nothing(gateway):
    add_apps(gateway)  # the concierge test app, which calls the chat's tools
    host, db = gateway.app[MINIAPPS], gateway.app[MESSAGING].db
    doc, pat, admin = await people(str(gateway.make_url("")).rstrip("/"), 3)
    try:
        await db.users.update_one({"_id": admin.user_id}, {"$set": {"role": "admin"}})
        await grant_role(admin, doc, "health", "practitioner")
        cid = await group(doc, [pat], "Clinic")
        for app_id in ("health", "concierge"):
            status, body = await doc.api.post(
                f"/api/v1/conversations/{cid}/apps", json={"app_id": app_id}
            )
            assert status == 201, body
        await view(doc, cid, "practice.save", PROFILE, app="health")
        before, since = await app_state(db, "health"), now_ms()

        answer = await concierge(pat, cid, use("health", "find_doctors", {"specialty": "general"}))
        (found,) = answer["result"]
        doc_id = host.identity.app_user_id("health", doc.user_id)  # the health app's id for doc
        assert {k: v for k, v in found.items() if k != "next_free"} == {
            "id": doc_id,
            "name": "Dr. Ana Silva",
            "specialties": ["general practice"],
            "zone": "Europe/Lisbon",
            "fee": "Free",
        }
        assert len(found["next_free"]) == 3  # weekdays 09:00-12:00 Lisbon: always some ahead
        cards = await eventually(lambda: app_cards(pat, cid, "health"), what="the doctor's card")
        assert [c["id"] for c in cards] == [answer["message_id"]]
        assert cards[0]["sender_id"] == "app:health"
        assert cards[0]["card"]["buttons"] == [
            {"label": "Book", "style": "primary", "opens": "webview", "path": f"#doctor={doc_id}"}
        ]
        assert await app_state(db, "health") == before
        made = await tool_calls(host, "health", since)
        assert made and all(e["ok"] for e in made), made
        assert {e["method"] for e in made} <= TOOL_CAPABILITIES
        refused = await concierge(pat, cid, use("health", "find_doctors", {"limit": 9}))
        assert refused["error"] == "invalid_params" and "arguments.limit" in refused["message"]
    finally:
        await close_all([doc, pat, admin])
