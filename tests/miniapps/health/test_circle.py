"""The care circle in the SDK simulator: invite and Accept (consent), scopes, reading a member's
shared records (audited), revoking (unreadable at once), sharing with a non-member
(``not_in_circle``, nothing written), missed-dose reminders shared, and dependents."""

from __future__ import annotations

import asyncio

import pytest

from sdk import ViewError
from tests.miniapps.health.records_fixtures import (
    DISCLAIMER,
    HOUR,
    START,
    app_module,
    join_circle,
    open_health,
)


@pytest.fixture
def health(monkeypatch):
    return open_health(monkeypatch)


def invite_cards(health, chat):
    return [m for m in health.sim.messages(chat) if m["type"] == "card"]


async def records_of(health, reader, owner, **params):
    return await health.view(reader, "circle.records", {"owner": owner.id, **params})


async def refused(health, reader, name, params):
    with pytest.raises(ViewError) as refusal:
        await health.view(reader, name, params)
    return refusal.value.code


async def test_invite_and_accept_joins_the_circle_with_those_scopes(health):
    sim, ann, bea = health.sim, health.ann, health.bea
    said = await health.command(ann, "/health circle invite vitals,allergies", health.direct)
    assert "Invite posted" in said
    (invite,) = invite_cards(health, health.direct)
    card = invite["card"]
    assert card["title"] == "🤝 Ann invites you to their care circle"
    assert card["buttons"][0]["action_id"] == "circle.accept" and DISCLAIMER in card["text"]

    await sim.press(ann, invite["id"], "circle.accept")  # your own invite
    assert "your own invite" in health.told(ann)
    assert health.stored("circle") == {}

    await sim.press(bea, invite["id"], "circle.accept")
    assert "You joined Ann's care circle: vitals, allergies" in health.told(bea)
    membership = health.stored("circle")[f"{ann.id}:{bea.id}"]
    assert membership["scopes"] == ["vitals", "allergies"] and membership["member_name"] == "Bea"
    updated = sim.card(invite["id"])
    assert "Accepted by Bea" in updated["text"] and not updated.get("buttons")

    listing = await health.command(ann, "/health circle")
    assert "Bea: vitals, allergies" in listing
    shared = await health.command(bea, "/health circle shared")
    assert "Ann: vitals, allergies" in shared
    circle_view = await health.view(ann, "circle.list")
    assert [m["member"] for m in circle_view["members"]] == [bea.id]
    assert (await health.view(bea, "circle.list"))["shared_with_me"][0]["owner"] == ann.id


async def test_an_invite_is_used_once_even_when_two_press_at_once(health):
    sim, ann, bea, otto = health.sim, health.ann, health.bea, health.otto
    await health.command(ann, "/health circle invite vitals", health.group)
    (invite,) = invite_cards(health, health.group)
    await asyncio.gather(
        sim.press(bea, invite["id"], "circle.accept"),
        sim.press(otto, invite["id"], "circle.accept"),
    )
    assert len(health.stored("circle")) == 1
    told = [health.told(bea), health.told(otto)]
    assert sum("You joined" in t for t in told) == 1
    assert sum("already used" in t for t in told) == 1


async def test_an_expired_or_foreign_invite_is_refused(health):
    sim, ann, bea, otto = health.sim, health.ann, health.bea, health.otto
    await health.command(ann, "/health circle invite vitals", health.direct)
    (invite,) = invite_cards(health, health.direct)
    # A client sending the invite's id from another chat.
    _, posted = await sim.call_capability(
        otto, health.group, "messages.send_card", {"card": invite["card"]}
    )
    await sim.press(otto, posted["message_id"], "circle.accept")
    assert "No such invite in this chat" in health.told(otto)
    sim.now = START + 8 * 24 * HOUR
    await sim.press(bea, invite["id"], "circle.accept")
    assert "expired" in health.told(bea)
    assert health.stored("circle") == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/health circle invite", "Name what to share"),
        ("/health circle invite everything", "Unknown scope 'everything'"),
        ("/health circle invite vitals,x-rays", "Unknown scope 'x-rays'"),
    ],
)
async def test_bad_invites_write_nothing(health, text, expected):
    said = await health.command(health.ann, text, health.direct)
    assert expected in said
    assert health.written() == {} and health.sim.messages(health.direct) == []


async def test_an_invite_needs_a_chat_with_the_family_member(health):
    said = await health.command(health.ann, "/health circle invite vitals")  # service chat
    assert "chat with the family member" in said
    assert health.written() == {}


async def test_a_member_reads_only_the_shared_records_and_each_read_is_logged(health):
    ann, bea = health.ann, health.bea
    await health.command(ann, "/health vitals add weight 70 kg")
    await health.command(ann, "/health allergies add penicillin rash severe")
    await health.command(ann, "/health meds add Aspirin 100 mg at 09:00")
    await join_circle(health, "vitals medications")

    shared = await records_of(health, bea, ann)
    assert shared["owner_name"] == "Ann" and shared["disclaimer"] == DISCLAIMER
    assert shared["latest"]["weight"]["value"] == 70
    assert shared["series"]["weight"]["points"][0]["value"] == 70
    assert [m["name"] for m in shared["medications"]] == ["Aspirin"]
    assert "allergies" not in shared and "appointments" not in shared
    only = await records_of(health, bea, ann, what="medications")
    assert "latest" not in only and only["medications"]

    (entry, second) = sorted(health.stored("access_log").values(), key=lambda e: e["what"])
    assert entry["reader"] == bea.id and entry["owner"] == ann.id
    assert {entry["what"], second["what"]} == {"medications", "vitals, medications"}
    log = await health.command(ann, "/health circle log")
    assert "Bea: vitals, medications" in log and "Bea: medications" in log
    assert len((await health.view(ann, "circle.log"))["entries"]) == 2

    # What is not shared is refused — and a refused read is not logged.
    assert await refused(health, bea, "circle.records", {"owner": ann.id, "what": "allergies"}) == (
        "not_shared"
    )
    assert len(health.stored("access_log")) == 2


async def test_reading_another_persons_records_is_refused_and_writes_nothing(health):
    ann, bea, otto = health.ann, health.bea, health.otto
    await health.command(ann, "/health vitals add weight 70 kg")
    await join_circle(health, "vitals")
    before = health.written()
    for reader, params in (
        (otto, {"owner": ann.id}),  # not in Ann's circle
        (ann, {"owner": bea.id}),  # Bea shares nothing with Ann
        (ann, {"owner": ann.id}),  # one's own records are not read through the circle
        (bea, {"owner": "u-unknown"}),
        (bea, {}),
    ):
        assert await refused(health, reader, "circle.records", params) == "not_in_circle"
    assert await refused(health, bea, "circle.records", {"owner": ann.id, "what": "x"}) == (
        "invalid_scope"
    )
    assert health.written() == before


async def test_a_shared_then_revoked_record_is_unreadable(health):
    ann, bea = health.ann, health.bea
    await health.command(ann, "/health vitals add weight 70 kg")
    await health.command(ann, "/health allergies add latex")
    await join_circle(health, "vitals allergies")
    assert (await records_of(health, bea, ann))["latest"]["weight"]["value"] == 70

    said = await health.command(ann, "/health circle revoke Bea vitals")
    assert "Bea now sees: allergies" in said
    code = await refused(health, bea, "circle.records", {"owner": ann.id, "what": "vitals"})
    assert code == "not_shared"
    still = await records_of(health, bea, ann)
    assert "latest" not in still and [a["substance"] for a in still["allergies"]] == ["latex"]

    said = await health.command(ann, "/health circle revoke bea")
    assert "no longer in your care circle" in said
    assert health.stored("circle") == {}
    assert await refused(health, bea, "circle.records", {"owner": ann.id}) == "not_in_circle"
    logged = len(health.stored("access_log"))
    assert await refused(health, bea, "circle.records", {"owner": ann.id}) == "not_in_circle"
    assert len(health.stored("access_log")) == logged


async def test_grant_and_revoke_through_the_web_view(health):
    ann, bea = health.ann, health.bea
    await join_circle(health, "vitals")
    granted = await health.view(
        ann, "circle.grant", {"member": bea.id, "scopes": ["medications", "reminders"]}
    )
    assert granted["member"]["scopes"] == ["vitals", "medications", "reminders"]
    revoked = await health.view(ann, "circle.revoke", {"member": bea.id, "scopes": ["vitals"]})
    assert revoked["member"]["scopes"] == ["medications", "reminders"]
    gone = await health.view(ann, "circle.revoke", {"member": bea.id})
    assert gone["removed"] and health.stored("circle") == {}


async def test_sharing_with_someone_not_in_the_circle_is_refused_and_writes_nothing(health):
    ann, otto = health.ann, health.otto
    await join_circle(health, "vitals")
    before = {c: health.stored(c) for c in ("circle", "circle_invites", "access_log")}
    said = await health.command(ann, "/health circle share Otto vitals")
    assert "Otto is not one of your contacts in the care circle" in said
    said = await health.command(ann, f"/health circle share {otto.id} medications")
    assert "not one of your contacts in the care circle" in said
    assert "not one of your contacts" in await health.command(ann, "/health circle revoke Otto")
    for params in ({"member": otto.id, "scopes": ["vitals"]}, {"member": "", "scopes": ["all"]}):
        assert await refused(health, ann, "circle.grant", params) == "not_in_circle"
    assert await refused(health, ann, "circle.revoke", {"member": otto.id}) == "not_in_circle"
    assert await refused(health, ann, "circle.grant", {"member": otto.id, "scopes": "x"}) == (
        "invalid_scope"
    )
    # Otto cannot grant himself anything of Ann's (he has no circle of his own with Ann in it).
    assert await refused(health, otto, "circle.grant", {"member": ann.id, "scopes": ["all"]}) == (
        "not_in_circle"
    )
    assert {c: health.stored(c) for c in before} == before


async def test_share_adds_scopes_to_a_member(health):
    ann, bea = health.ann, health.bea
    await join_circle(health, "vitals")
    said = await health.command(ann, "/health circle share Bea medications,reminders")
    assert "Bea now sees: vitals, medications, reminders" in said
    assert "Usage" in await health.command(ann, "/health circle share Bea")
    assert "Usage" in await health.command(ann, "/health circle revoke")
    assert "Usage" in await health.command(ann, "/health circle frobnicate")
    assert health.stored("circle")[f"{ann.id}:{bea.id}"]["scopes"] == [
        "vitals",
        "medications",
        "reminders",
    ]


async def test_missed_doses_reach_members_sharing_reminders_only(health):
    sim, ann, bea, otto = health.sim, health.ann, health.bea, health.otto
    await join_circle(health, "reminders")
    await join_circle(health, "vitals", member=otto)
    await health.command(ann, "/health meds add Aspirin 100 mg at 07:00")
    await sim.advance(hours=2, minutes=1)  # the dose at 07:00, missed at 08:00
    (message,) = sim.notifications(bea)
    assert message["title"] == "💊 Ann missed a dose" and "Aspirin at 07:00" in message["text"]
    assert DISCLAIMER in message["text"] and not message.get("buttons")
    assert sim.notifications(otto) == []
    (entry,) = health.stored("access_log").values()
    assert entry["reader"] == bea.id and entry["what"] == "reminders"
    # Once the scope is revoked, no more messages.
    await health.command(ann, "/health circle revoke Bea reminders")
    await sim.advance(days=1)
    assert len(sim.notifications(bea)) == 1


async def test_dependents_add_list_remove_and_dependent_of(health):
    ann, bea = health.ann, health.bea
    said = await health.command(ann, '/health dependent add "Leo Smith" 2019-05-04 child')
    assert "Added Leo Smith (child, born 2019-05-04)" in said
    health.sim.now += HOUR  # listed in the order they were added
    said = await health.command(ann, "/health dependent add Grandma Rose 1941-01-30 grandparent")
    assert "Added Grandma Rose" in said
    listing = await health.command(ann, "/health dependent")
    assert "Leo Smith: child, born 2019-05-04" in listing and "Grandma Rose" in listing
    leo = next(d for d in health.stored("dependents").values() if d["name"] == "Leo Smith")
    assert leo["guardian"] == ann.id

    dependent_of = app_module("circle").dependent_of
    calls = []

    async def check(ctx):
        calls.append(
            (
                await dependent_of(ctx, ann.id, leo["id"]),
                await dependent_of(ctx, bea.id, leo["id"]),
                await dependent_of(ctx, ann.id, "dp-000000000000"),
                await dependent_of(ctx, ann.id, None),
            )
        )
        return {}

    health.sim.app.views["test.dependent_of"] = check
    await health.view(ann, "test.dependent_of")
    ((mine, theirs, unknown, bad),) = calls
    assert mine["name"] == "Leo Smith" and theirs is None and unknown is None and bad is None

    view = await health.view(ann, "dependents.list")
    assert [d["name"] for d in view["dependents"]] == ["Leo Smith", "Grandma Rose"]
    added = await health.view(
        ann, "dependent.add", {"name": "Mia", "birth_date": "2021-02-03", "relationship": "child"}
    )
    assert added["dependent"]["id"].startswith("dp-")
    assert await refused(health, bea, "dependent.remove", {"dependent_id": leo["id"]}) == (
        "unknown_dependent"
    )
    assert "No such dependent" in await health.command(bea, "/health dependent remove Leo Smith")
    removed = await health.view(ann, "dependent.remove", {"dependent_id": added["dependent"]["id"]})
    assert removed["removed"] == added["dependent"]["id"]
    assert "Removed Leo Smith" in await health.command(ann, "/health dependent remove leo smith")
    assert [d["name"] for d in health.stored("dependents").values()] == ["Grandma Rose"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/health dependent add Leo 2019-05-04", "Usage"),
        ("/health dependent add Leo 04/05/2019 child", "YYYY-MM-DD"),
        ("/health dependent add Leo 2019-02-30 child", "YYYY-MM-DD"),
        ("/health dependent add Leo 2099-01-01 child", "between 1900 and today"),
        ("/health dependent add Leo 1850-01-01 child", "between 1900 and today"),
        ("/health dependent add Leo 2019-05-04 pet", "Relationship: one of"),
        ("/health dependent remove", "Usage"),
        ("/health dependent remove Nobody", "No such dependent"),
        ("/health dependent list extra", "Usage"),
    ],
)
async def test_bad_dependent_commands_write_nothing(health, text, expected):
    said = await health.command(health.ann, text)
    assert expected in said
    assert health.written() == {}


async def test_a_duplicate_dependent_is_refused(health):
    ann = health.ann
    await health.command(ann, "/health dependent add Leo 2019-05-04 child")
    said = await health.command(ann, "/health dependent add leo 2019-05-04 child")
    assert "already listed" in said and len(health.stored("dependents")) == 1
    code = await refused(
        health,
        ann,
        "dependent.add",
        {"name": "Leo", "birth_date": "2019-05-04", "relationship": "child"},
    )
    assert code == "duplicate_dependent"
    code = await refused(
        health, ann, "dependent.add", {"name": "Max", "birth_date": 2019, "relationship": "child"}
    )
    assert code == "invalid_birth_date" and len(health.stored("dependents")) == 1


async def test_a_member_without_service_messages_is_not_told_nor_logged(health):
    sim, ann, bea = health.sim, health.ann, health.bea
    await join_circle(health, "reminders")
    bea.notifications = False
    await health.command(ann, "/health meds add Aspirin 100 mg at 07:00")
    await sim.advance(hours=3)
    assert sim.notifications(bea) == [] and health.stored("access_log") == {}
    assert [d["status"] for d in health.stored("adherence").values()] == ["missed"]
