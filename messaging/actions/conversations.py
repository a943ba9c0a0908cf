"""Conversations: open a direct chat, create a group, list, rename, mute."""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from messaging.actions.accounts import user_view
from messaging.context import Messaging
from messaging.events import event
from messaging.membership import Membership
from messaging.views import conversation_view
from storage.errors import AppError
from storage.mongo import new_id, now_ms

TITLE_MAX = 64
LIST_LIMIT_MAX = 100


def not_a_member() -> AppError:
    # The same answer whether the conversation exists or not: non-members learn nothing.
    return AppError("not_a_member", "you are not a member of this conversation", status=403)


async def check_member(ctx: Messaging, conversation_id: object, user_id: str) -> Membership:
    """The conversation's membership if ``user_id`` belongs to it, else ``not_a_member``."""
    if not isinstance(conversation_id, str) or not conversation_id:
        raise not_a_member()
    membership = await ctx.membership.get(conversation_id)
    if membership is None or membership.role_of(user_id) is None:
        raise not_a_member()
    return membership


def check_title(title: object) -> str:
    cleaned = " ".join(str(title).split()) if isinstance(title, str) else ""
    if not 1 <= len(cleaned) <= TITLE_MAX:
        raise AppError(
            "invalid_field", f"title must be 1-{TITLE_MAX} characters", details={"field": "title"}
        )
    return cleaned


async def check_users_exist(ctx: Messaging, user_ids: list[str]) -> dict[str, dict]:
    found = {u["_id"]: u for u in await ctx.users.get_users(user_ids)}
    missing = [u for u in user_ids if u not in found]
    if missing:
        raise AppError("user_not_found", "no such user", status=404, details={"user_ids": missing})
    return found


async def check_not_blocked(ctx: Messaging, actor_id: str, user_ids: list[str]) -> None:
    for user_id in user_ids:
        if await ctx.blocks.is_blocked_either_way(actor_id, user_id):
            raise AppError(
                "blocked",
                "you cannot start a chat with this user",
                status=403,
                details={"user_id": user_id},
            )


def _new_conversation(kind: str, title: str, creator: str, members: int, now: int) -> dict:
    return {
        "_id": new_id(),
        "type": kind,
        "title": title,
        "created_by": creator,
        "created_at": now,
        "updated_at": now,
        "last_seq": 0,
        "last_change_seq": 0,
        "last_message": None,
        "member_count": members,
        "members_version": 1,
    }


def new_member(conversation_id: str, user_id: str, role: str, joined_seq: int, now: int) -> dict:
    return {
        "_id": f"{conversation_id}|{user_id}",
        "conversation_id": conversation_id,
        "user_id": user_id,
        "role": role,
        "joined_seq": joined_seq,
        "last_read_seq": joined_seq,
        "joined_at": now,
        "muted": False,
    }


async def views_for(ctx: Messaging, user_id: str, conversations: list[dict]) -> list[dict]:
    """Conversation views for one user (direct chats get their peer's profile)."""
    if not conversations:
        return []
    ids = [c["_id"] for c in conversations]
    members = {m["conversation_id"]: m for m in await ctx.members.get_member_docs(ids, user_id)}
    peers: dict[str, str] = {}
    for conversation in conversations:
        if conversation["type"] == "direct":
            membership = await ctx.membership.get(conversation["_id"])
            others = [u for u in (membership.member_ids if membership else []) if u != user_id]
            if others:
                peers[conversation["_id"]] = others[0]
    users = {u["_id"]: user_view(u) for u in await ctx.users.get_users(list(set(peers.values())))}
    views = [
        conversation_view(c, members[c["_id"]], peer=users.get(peers.get(c["_id"], "")))
        for c in conversations
        if c["_id"] in members
    ]
    apps = {c["_id"]: c.get("app_id") for c in conversations if c["type"] == "service"}
    for view in views:
        if view["id"] in apps:  # a user's chat with one app (actions/service_chats.py)
            view["app_id"] = apps[view["id"]]
    return views


async def view_for(ctx: Messaging, user_id: str, conversation: dict) -> dict:
    return (await views_for(ctx, user_id, [conversation]))[0]


async def announce_new(ctx: Messaging, conversation: dict, user_ids: list[str]) -> None:
    for user_id in user_ids:
        view = await view_for(ctx, user_id, conversation)
        await ctx.events.emit(event("conversation.new", {"user": user_id}, {"conversation": view}))


async def do_open_direct(ctx: Messaging, user_id: str, other_id: str) -> tuple[dict, bool]:
    """The one direct chat between two people, created on first use (idempotent)."""
    if other_id == user_id:
        raise AppError("cannot_chat_with_self", "a direct chat needs another person")
    await check_users_exist(ctx, [other_id])
    await check_not_blocked(ctx, user_id, [other_id])
    # Claim the pair first: its unique id decides a race. A crash before the conversation is
    # written is repaired by the next call, which finds the claimed id and creates it then.
    conversation_id = await ctx.direct_pairs.get_pair(user_id, other_id)
    if conversation_id is None:
        conversation_id = await ctx.direct_pairs.claim_pair(user_id, other_id, new_id())
    existing = await ctx.conversations.get_conversation(conversation_id)
    if existing is not None:
        return existing, False
    now = now_ms()
    conversation = {**_new_conversation("direct", "", user_id, 2, now), "_id": conversation_id}
    try:
        await ctx.conversations.add_conversation(conversation)
    except DuplicateKeyError:
        return await ctx.conversations.get_conversation(conversation_id), False
    await ctx.members.add_members(
        [new_member(conversation_id, u, "member", 0, now) for u in (user_id, other_id)]
    )
    await ctx.membership_changed(conversation_id)
    await announce_new(ctx, conversation, [user_id, other_id])
    return conversation, True


async def do_create_group(ctx: Messaging, user_id: str, title: str, member_ids: list[str]) -> dict:
    from messaging.actions.system import post_system

    title = check_title(title)
    others = [m for m in dict.fromkeys(member_ids) if m != user_id]
    if len(others) + 1 > ctx.config.group_max_members:
        raise AppError(
            "group_full",
            f"a group has at most {ctx.config.group_max_members} members",
            status=409,
            details={"limit": ctx.config.group_max_members},
        )
    await check_users_exist(ctx, others)
    await check_not_blocked(ctx, user_id, others)
    now = now_ms()
    conversation = _new_conversation("group", title, user_id, len(others) + 1, now)
    await ctx.conversations.add_conversation(conversation)
    await ctx.members.add_members(
        [new_member(conversation["_id"], user_id, "owner", 0, now)]
        + [new_member(conversation["_id"], u, "member", 0, now) for u in others]
    )
    await announce_new(ctx, conversation, [user_id, *others])
    await post_system(
        ctx, conversation["_id"], user_id, "group_created", title=title, user_ids=others
    )
    return await ctx.conversations.get_conversation(conversation["_id"]) or conversation


async def get_conversation_list(
    ctx: Messaging, user_id: str, *, before: int | None, limit: int
) -> tuple[list[dict], int | None]:
    """My conversations, most recently active first; returns (views, next ``before``)."""
    limit = max(1, min(limit, LIST_LIMIT_MAX))
    ids = [m["conversation_id"] for m in await ctx.members.get_memberships(user_id)]
    page = await ctx.conversations.get_conversations(ids, before=before, limit=limit + 1)
    more = len(page) > limit
    page = page[:limit]
    return await views_for(ctx, user_id, page), (page[-1]["updated_at"] if more else None)


async def get_conversation_detail(ctx: Messaging, user_id: str, conversation_id: str) -> dict:
    await check_member(ctx, conversation_id, user_id)
    conversation = await ctx.conversations.get_conversation(conversation_id)
    if conversation is None:
        raise not_a_member()
    view = await view_for(ctx, user_id, conversation)
    members = await ctx.members.get_members(conversation_id)
    users = {
        u["_id"]: user_view(u) for u in await ctx.users.get_users([m["user_id"] for m in members])
    }
    view["members"] = [
        {"user": users[m["user_id"]], "role": m["role"], "joined_seq": m.get("joined_seq", 0)}
        for m in members
        if m["user_id"] in users
    ]
    return view


async def do_rename(ctx: Messaging, user_id: str, conversation_id: str, title: str) -> dict:
    from messaging.actions.system import post_system

    membership = await check_member(ctx, conversation_id, user_id)
    if membership.type != "group":
        raise AppError("not_a_group", "only groups have a title")
    if not membership.is_admin(user_id):
        raise AppError("not_allowed", "only the owner and admins can rename the group", status=403)
    title = check_title(title)
    conversation = await ctx.conversations.update_conversation(conversation_id, {"title": title})
    await ctx.events.emit(
        event(
            "conversation.updated",
            {"users": membership.member_ids},
            {"conversation_id": conversation_id, "title": title},
        )
    )
    await post_system(ctx, conversation_id, user_id, "renamed", title=title)
    return await view_for(ctx, user_id, conversation)


async def do_set_group_avatar(
    ctx: Messaging, user_id: str, conversation_id: str, media_id: str | None
) -> dict:
    """Set (an image the admin uploaded) or clear (None) a group's picture; members see it as
    the conversation's ``avatar_url``."""
    from messaging.actions import media

    membership = await check_member(ctx, conversation_id, user_id)
    if membership.type != "group":
        raise AppError("not_a_group", "only groups have a picture")
    if not membership.is_admin(user_id):
        raise AppError(
            "not_allowed", "only the owner and admins can change the group picture", status=403
        )
    url = None
    if media_id is not None:
        await media.check_avatar(ctx, user_id, media_id)
        url = media.avatar_url(ctx, media_id)
        await media.do_set_avatar_of(ctx, f"conversation:{conversation_id}", media_id, None)
    before = await ctx.conversations.get_conversation(conversation_id)
    conversation = await ctx.conversations.update_conversation(
        conversation_id, {"avatar_media_id": media_id, "avatar_url": url}
    )
    await media.do_set_avatar_of(
        ctx, f"conversation:{conversation_id}", media_id, (before or {}).get("avatar_media_id")
    )
    await ctx.events.emit(
        event(
            "conversation.updated",
            {"users": membership.member_ids},
            {"conversation_id": conversation_id, "avatar_url": url},
        )
    )
    return await view_for(ctx, user_id, conversation)


async def do_update_group(
    ctx: Messaging, user_id: str, conversation_id: str, changes: dict
) -> dict:
    """A group's title and/or picture (``avatar_media_id``)."""
    if "title" not in changes and "avatar_media_id" not in changes:
        raise AppError("empty_update", "nothing to change: send title or avatar_media_id")
    view = None
    if "title" in changes:
        view = await do_rename(ctx, user_id, conversation_id, changes["title"])
    if "avatar_media_id" in changes:
        view = await do_set_group_avatar(ctx, user_id, conversation_id, changes["avatar_media_id"])
    return view


async def do_set_muted(ctx: Messaging, user_id: str, conversation_id: str, muted: bool) -> dict:
    await check_member(ctx, conversation_id, user_id)
    await ctx.members.set_muted(conversation_id, user_id, muted)
    conversation = await ctx.conversations.get_conversation(conversation_id)
    view = await view_for(ctx, user_id, conversation)
    await ctx.events.emit(
        event(
            "conversation.updated",
            {"user": user_id},
            {"conversation_id": conversation_id, "muted": muted},
        )
    )
    return view
