"""Ephemeral cards whose buttons work, in the simulator as on the host: ``/whisper`` (the
``whisper`` test app) shows the invoker a card with buttons; ``sim.ephemeral(user)`` records it
with its ``ephemeral_id``; ``sim.press(user, ephemeral_id, …)`` reaches the app's action with
that id as ``message_id``, for that user only and for an hour; ``update_card`` of the id shows
the new card to its reader. Cards without buttons and texts are not kept."""

from __future__ import annotations

import pytest

from sdk.simulator import HostRefused, Simulator
from tests.miniapps.conftest import APPS_DIR


@pytest.fixture
def world():
    sim = Simulator(APPS_DIR / "whisper")
    ann, bea = sim.user("ann"), sim.user("bea")
    chat = sim.conversation(members=[ann, bea])
    return sim, ann, bea, chat


async def shown(sim, user, chat) -> dict:
    await sim.command(user, chat, "/whisper")
    return sim.ephemeral(user)[-1]


async def test_an_ephemeral_card_with_buttons_gets_an_id_and_can_be_pressed(world):
    sim, ann, bea, chat = world
    entry = await shown(sim, ann, chat)
    ephemeral_id = entry["ephemeral_id"]
    assert entry["conversation_id"] == chat.id and entry["card"]["title"] == "Just for you"
    assert sim.messages(chat) == [] and sim.ephemeral(bea) == []  # nothing in the chat

    await sim.press(ann, ephemeral_id, "pay", "500")
    assert sim.messages(chat)[-1]["text"] == f"whisper: paid 500 on {ephemeral_id}"
    await sim.press(ann, ephemeral_id, "pay")  # the first Pay button's own value
    assert sim.messages(chat)[-1]["text"] == f"whisper: paid 1250 on {ephemeral_id}"


async def test_only_its_reader_may_press_it_and_only_its_buttons(world):
    sim, ann, bea, chat = world
    ephemeral_id = (await shown(sim, ann, chat))["ephemeral_id"]
    with pytest.raises(HostRefused) as refused:
        await sim.press(bea, ephemeral_id, "pay")  # a member, but not the one who saw it
    assert refused.value.code == "message_not_found"
    with pytest.raises(HostRefused) as refused:
        await sim.press(ann, ephemeral_id, "refund")
    assert refused.value.code == "no_such_button"
    with pytest.raises(HostRefused) as refused:
        await sim.press(ann, "e-404", "pay")
    assert refused.value.code == "message_not_found"
    sim.remove_member(chat, ann)  # she left the chat: her private card goes with it
    with pytest.raises(HostRefused) as refused:
        await sim.press(ann, ephemeral_id, "pay")
    assert refused.value.code == "not_member"
    assert sim.messages(chat) == []


async def test_it_expires_after_an_hour(world):
    sim, ann, _bea, chat = world
    ephemeral_id = (await shown(sim, ann, chat))["ephemeral_id"]
    await sim.advance(minutes=59)
    await sim.press(ann, ephemeral_id, "pay")
    await sim.advance(minutes=1)
    with pytest.raises(HostRefused) as refused:
        await sim.press(ann, ephemeral_id, "pay")
    assert refused.value.code == "message_not_found"
    assert len(sim.messages(chat)) == 1


async def test_update_card_of_an_ephemeral_id_shows_the_new_card_to_its_reader(world):
    sim, ann, bea, chat = world
    ephemeral_id = (await shown(sim, ann, chat))["ephemeral_id"]
    await sim.press(ann, ephemeral_id, "settle")
    assert sim.ephemeral(ann)[-1] == {
        "conversation_id": chat.id,
        "card": {
            "title": "All settled",
            "text": "Nothing to pay",
            "buttons": [{"action_id": "pay", "label": "Tip 1.00", "value": "100"}],
        },
        "ephemeral_id": ephemeral_id,
    }
    assert sim.ephemeral(bea) == [] and sim.messages(chat) == []
    # The new card's buttons are the ones that can be pressed now.
    with pytest.raises(HostRefused) as refused:
        await sim.press(ann, ephemeral_id, "settle")
    assert refused.value.code == "no_such_button"
    await sim.press(ann, ephemeral_id, "pay")
    assert sim.messages(chat)[-1]["text"] == f"whisper: paid 100 on {ephemeral_id}"


async def test_cards_without_buttons_and_texts_are_not_kept(world):
    sim, ann, _bea, chat = world
    await sim.command(ann, chat, "/whisper plain")
    await sim.command(ann, chat, "/whisper text")
    plain, text = sim.ephemeral(ann)
    assert plain == {
        "conversation_id": chat.id,
        "card": {"title": "Just for you", "text": "No buttons here"},
    }
    assert text == {"conversation_id": chat.id, "text": "whisper: only you can read this"}
