"""Family group adherence cards in the SDK simulator: posted only when the owner shares in a
group, updated in place as doses are reminded, taken and missed, stopped on request."""

from __future__ import annotations

import pytest

from tests.miniapps.health.records_fixtures import DISCLAIMER, open_health


@pytest.fixture
def health(monkeypatch):
    return open_health(monkeypatch)


def fields(card: dict) -> dict[str, str]:
    return {f["label"]: f["value"] for f in card.get("fields", [])}


async def test_the_card_follows_the_doses_in_place(health):
    sim, ann, group = health.sim, health.ann, health.group
    await health.command(ann, "/health meds add Metformin 500 mg at 07:00,19:00")
    await health.command(ann, "/health meds add Aspirin 100 mg at 09:00")
    said = await health.command(ann, "/health adherence share", group)
    assert "shared with this group" in said
    (message,) = sim.messages(group)
    card = message["card"]
    assert card["title"] == "💊 Ann: medicines today" and DISCLAIMER in card["text"]
    assert fields(card) == {
        "Metformin": "07:00 · later · 19:00 · later",
        "Aspirin": "09:00 · later",
    }

    await sim.advance(hours=1, minutes=5)  # 07:05: Metformin reminded
    assert fields(sim.card(message["id"]))["Metformin"] == "07:00 ⏳ due · 19:00 · later"
    await health.press_notified(ann, sim.notifications(ann)[-1], "dose.taken")
    assert fields(sim.card(message["id"]))["Metformin"] == "07:00 ✓ taken · 19:00 · later"
    await sim.advance(hours=4)  # 11:05: Aspirin reminded at 09:00, missed at 10:00
    assert fields(sim.card(message["id"]))["Aspirin"] == "09:00 ✗ missed"
    assert len(sim.messages(group)) == 1  # one card, updated in place
    history = sim.card_history(message["id"])
    assert len(history) >= 4

    # Sharing again refreshes the same card; nothing new is posted.
    said = await health.command(ann, "/health adherence share", group)
    assert "already share" in said and len(sim.messages(group)) == 1
    (share,) = health.stored("adherence_shares").values()
    assert share["active"] and share["message_id"] == message["id"]

    mine = await health.command(ann, "/health adherence")
    assert "07:00 Metformin: taken" in mine and "09:00 Aspirin: missed" in mine


async def test_stop_ends_the_sharing(health):
    sim, ann, group = health.sim, health.ann, health.group
    await health.command(ann, "/health meds add Metformin 500 mg at 07:00,19:00")
    await health.command(ann, "/health adherence share", group)
    (message,) = sim.messages(group)
    said = await health.command(ann, "/health adherence stop", group)
    assert "no longer sees your doses" in said
    stopped = sim.card(message["id"])
    assert "stopped sharing" in stopped["text"] and not stopped.get("fields")
    versions = len(sim.card_history(message["id"]))
    await sim.advance(days=1)
    assert len(sim.card_history(message["id"])) == versions  # the card no longer changes
    assert len(sim.messages(group)) == 1
    assert "not sharing" in await health.command(ann, "/health adherence stop", group)
    # Sharing again later posts a fresh card.
    await health.command(ann, "/health adherence share", group)
    assert len(sim.messages(group)) == 2


async def test_nothing_reaches_a_group_without_a_share(health):
    sim, ann, group = health.sim, health.ann, health.group
    await health.command(ann, "/health meds add Metformin 500 mg at 07:00", group)
    await health.command(ann, "/health vitals add weight 70 kg", group)
    await sim.advance(days=2)
    assert sim.messages(group) == []
    # Another member stopping or sharing acts on their own doses only.
    assert "not sharing" in await health.command(health.bea, "/health adherence stop", group)
    await health.command(health.bea, "/health adherence share", group)
    (card,) = sim.messages(group)
    assert card["card"]["title"] == "💊 Bea: medicines today" and fields(card["card"]) == {}


@pytest.mark.parametrize(
    ("text", "chat", "expected"),
    [
        ("/health adherence share", "direct", "group chat"),
        ("/health adherence share", "service", "group chat"),
        ("/health adherence stop", "direct", "group chat"),
        ("/health adherence share now", "group", "Usage"),
        ("/health adherence publish", "group", "Usage"),
    ],
)
async def test_sharing_happens_in_groups_only(health, text, chat, expected):
    conversation = {
        "direct": health.direct,
        "group": health.group,
        "service": health.service(health.ann),
    }[chat]
    said = await health.command(health.ann, text, conversation)
    assert expected in said
    assert health.written() == {} and health.sim.messages(conversation) == []
