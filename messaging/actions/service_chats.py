"""Service chats: one conversation of type ``service`` per (user, app), where a mini-program's
service messages to that user land (WeChat's service accounts).

It is created on the app's first service message. Its only member is the user; the app posts as
its bot (``app:<id>``), like cards in groups. The user reads, presses buttons, mutes it (the
member's ``muted``, which is the per-app mute: its notifications become silent) and can
unsubscribe (the host revokes the ``notifications`` consent) — but cannot type into it.
Each service message is also a ``service`` notification in the user's feed.

App chats: a ``group`` an app opens for a set of people who share no conversation, so that it
can start a call between them (``calls.start`` with ``own_chat``: a doctor and a patient). One
per (app, set of people); created by the app's bot, nobody owns it (so nobody can add people to
it or rename it), and its members talk in it like in any group.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pymongo.errors import DuplicateKeyError

from messaging.actions import cards, notifications
from messaging.actions.conversations import (
    TITLE_MAX,
    announce_new,
    check_not_blocked,
    new_member,
)
from messaging.context import Messaging
from storage.mongo import now_ms

SERVICE = "service"


def service_chat_id(user_id: str, app_id: str) -> str:
    """Fixed by the pair, so concurrent first messages create one chat (the unique _id)."""
    return hashlib.sha256(f"service\0{user_id}\0{app_id}".encode()).hexdigest()[:24]


async def do_open_service_chat(
    ctx: Messaging, user_id: str, app_id: str, app_name: str
) -> tuple[dict[str, Any], bool]:
    """The user's service chat with the app, created on first use; (conversation, created)."""
    conversation_id = service_chat_id(user_id, app_id)
    existing = await ctx.conversations.get_conversation(conversation_id)
    if existing is not None:
        # A crash between the two inserts below left it without its member: finish it.
        if await ctx.members.get_member(conversation_id, user_id) is None:
            member = new_member(conversation_id, user_id, "member", 0, now_ms())
            await ctx.members.add_members([member])
            await ctx.membership_changed(conversation_id)
        return existing, False
    now = now_ms()
    conversation = {
        "_id": conversation_id,
        "type": SERVICE,
        "app_id": app_id,
        "title": app_name,
        "created_by": f"app:{app_id}",
        "created_at": now,
        "updated_at": now,
        "last_seq": 0,
        "last_change_seq": 0,
        "last_message": None,
        "member_count": 1,
        "members_version": 1,
    }
    try:
        await ctx.conversations.add_conversation(conversation)
    except DuplicateKeyError:
        return await do_open_service_chat(ctx, user_id, app_id, app_name)
    await ctx.members.add_members([new_member(conversation_id, user_id, "member", 0, now)])
    await ctx.membership_changed(conversation_id)
    await announce_new(ctx, conversation, [user_id])
    return conversation, True


def app_chat_id(app_id: str, user_ids: list[str]) -> str:
    """Fixed by the app and the set of people (in any order), so concurrent opens create one
    chat (the unique _id) and the next call between the same people finds it again."""
    key = "\0".join(["app-chat", app_id, *sorted(set(user_ids))])
    return hashlib.sha256(key.encode()).hexdigest()[:24]


async def check_app_chat(ctx: Messaging, user_ids: list[str]) -> None:
    """Nobody is put in an app chat with someone they blocked or who blocked them (``blocked``,
    the code of a person's own group)."""
    for index, user_id in enumerate(user_ids):
        await check_not_blocked(ctx, user_id, user_ids[index + 1 :])


async def do_open_app_chat(
    ctx: Messaging, app_id: str, app_name: str, title: str | None, user_ids: list[str]
) -> tuple[dict[str, Any], bool]:
    """The app's group of exactly ``user_ids`` (platform ids), created on first use and titled
    ``title`` or else the app's name; (conversation, created). On reuse, whoever is missing
    (a crash between the inserts, or someone who left) is a member again: the app only opens
    it to ring them, and joining a call still takes their tap."""
    user_ids = list(dict.fromkeys(user_ids))
    conversation_id = app_chat_id(app_id, user_ids)
    existing = await ctx.conversations.get_conversation(conversation_id)
    if existing is not None:
        present = {m["user_id"] for m in await ctx.members.get_members(conversation_id)}
        missing = [u for u in user_ids if u not in present]
        if missing:
            now = now_ms()
            seq = existing["last_seq"]  # a returning member does not get the history back
            added = await ctx.members.add_members(
                [new_member(conversation_id, u, "member", seq, now) for u in missing]
            )
            # Counted after the insert, so a concurrent repair cannot set a smaller count.
            count = len(await ctx.members.get_members(conversation_id))
            existing = await ctx.conversations.update_conversation(
                conversation_id, {"member_count": count}, membership_changed=True
            )
            await ctx.membership_changed(conversation_id)
            if existing is not None and added:
                await announce_new(ctx, existing, added)
        return existing or await ctx.conversations.get_conversation(conversation_id), False
    now = now_ms()
    name = " ".join((title or app_name).split())[:TITLE_MAX] or app_id
    conversation = {
        "_id": conversation_id,
        "type": "group",
        "app_id": app_id,
        "title": name,
        "created_by": f"app:{app_id}",
        "created_at": now,
        "updated_at": now,
        "last_seq": 0,
        "last_change_seq": 0,
        "last_message": None,
        "member_count": len(user_ids),
        "members_version": 1,
    }
    try:
        await ctx.conversations.add_conversation(conversation)
    except DuplicateKeyError:
        return await do_open_app_chat(ctx, app_id, app_name, title, user_ids)
    added = await ctx.members.add_members(
        [new_member(conversation_id, u, "member", 0, now) for u in user_ids]
    )
    await ctx.membership_changed(conversation_id)
    await announce_new(ctx, conversation, added)
    return conversation, True


async def do_send_service_message(
    ctx: Messaging,
    user_id: str,
    app_id: str,
    app_name: str,
    *,
    text: str | None = None,
    card: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Post a text or a card (exactly one) from the app into the user's service chat, then add
    the ``service`` notification (silent when the user muted the chat). Returns the message."""
    assert (text is None) != (card is None)
    conversation, _ = await do_open_service_chat(ctx, user_id, app_id, app_name)
    conversation_id = conversation["_id"]
    if card is not None:
        message = await cards.do_post_card(ctx, conversation_id, app_id, card)
    else:
        message = await cards.do_post_app_text(ctx, conversation_id, app_id, text or "")
    member = await ctx.members.get_member(conversation_id, user_id)
    await notifications.do_notify(
        ctx,
        user_id,
        "service",
        title=app_name,
        body=message["text"],
        source=f"msg:{message['id']}",
        silent=bool(member and member.get("muted")),
        conversation_id=conversation_id,
        seq=message["seq"],
        app_id=app_id,
        card=card,
    )
    return message
