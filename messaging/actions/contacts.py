"""Contacts: friend requests, friendships, blocks, and finding people.

The storage model (one ``contacts`` document per unordered pair, every transition a conditional
single-document write) is described in ``messaging/store/contacts.py``; blocks are the separate
``blocks`` collection. Events go to user rooms after the write:

==========================  ===================  ============================================
event                       audience             payload
==========================  ===================  ============================================
contact.request             the addressee        ``{"request": REQUEST}``
contact.accepted            the requester        ``{"user": USER, "since": ts}`` (a FRIEND)
contact.added               the accepter         ``{"user": USER, "since": ts}`` (a FRIEND)
contact.removed             each of the two      ``{"user_id": the other}``
contact.request_cancelled   the addressee        ``{"user_id": the requester}``
contact.request_declined    the requester        ``{"user_id": the addressee}``
contact.blocked             the blocker          ``{"user_id": the blocked user}``
contact.unblocked           the blocker          ``{"user_id": the unblocked user}``
==========================  ===================  ============================================

Blocking ends what linked the two, with the same events as doing it by hand (a friendship gives
``contact.removed`` to both; a pending request ``contact.request_cancelled`` or
``contact.request_declined`` to the other party), so a blocked person never learns of the block
itself.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from messaging.actions.accounts import user_view
from messaging.context import Messaging
from messaging.events import event
from messaging.store.contacts import FRIENDS, other_of, pair_id
from storage.errors import AppError
from storage.mongo import iso, now_ms

REQUEST_MESSAGE_MAX = 200
FRIENDS_PAGE_DEFAULT = 50
FRIENDS_PAGE_MAX = 100
REQUESTS_LIST_MAX = 500
SEARCH_QUERY_MAX = 64
SEARCH_LIMIT_DEFAULT = 20
SEARCH_LIMIT_MAX = 50
# A send that keeps losing races (the pair changes between our insert and our read) gives up.
_SEND_ATTEMPTS = 5


# --- helpers other modules call -------------------------------------------------------------


async def are_friends(ctx: Messaging, a: str, b: str) -> bool:
    contact = await ctx.contacts.get_contact(a, b)
    return contact is not None and contact["state"] == FRIENDS


async def get_friend_ids(ctx: Messaging, user_id: str) -> list[str]:
    return await ctx.contacts.get_friend_ids(user_id)


async def check_not_blocked(ctx: Messaging, a: str, b: str) -> None:
    """Raise 403 ``blocked`` when either user blocked the other (without saying which)."""
    if await ctx.blocks.is_blocked_either_way(a, b):
        raise AppError("blocked", "you cannot interact with this user", status=403)


# --- views ----------------------------------------------------------------------------------


def friend_view(contact: dict[str, Any], friend: dict[str, Any]) -> dict[str, Any]:
    return {"user": user_view(friend), "since": iso(contact["since"])}


def request_view(
    contact: dict[str, Any], requester: dict[str, Any], addressee: dict[str, Any]
) -> dict[str, Any]:
    return {
        "from": user_view(requester),
        "to": user_view(addressee),
        "message": contact.get("message", ""),
        "created_at": iso(contact["requested_at"]),
    }


async def _users_by_id(ctx: Messaging, ids: list[str]) -> dict[str, dict[str, Any]]:
    return {user["_id"]: user for user in await ctx.users.get_users(list(set(ids)))}


async def _request_views(ctx: Messaging, contacts: list[dict[str, Any]]) -> list[dict]:
    users = await _users_by_id(ctx, [uid for c in contacts for uid in c["users"]])
    return [
        request_view(c, users[c["requester_id"]], users[c["addressee_id"]])
        for c in contacts
        if c["requester_id"] in users and c["addressee_id"] in users
    ]


# --- checks ---------------------------------------------------------------------------------


async def _other_user(ctx: Messaging, me: str, user_id: str, self_error: AppError) -> dict:
    if user_id == me:
        raise self_error
    user = await ctx.users.get_user(user_id)
    if user is None:
        raise AppError("user_not_found", "no such user", status=404)
    return user


async def _blocked_error(ctx: Messaging, me: str, other: str) -> AppError:
    # The blocker may be told why; the blocked party learns no more than "you cannot add".
    if await ctx.blocks.has_blocked(me, other):
        return AppError("blocked", "you have blocked this user; unblock them first", status=403)
    return AppError("blocked", "you cannot add this user", status=403)


def _already_friends() -> AppError:
    return AppError("already_friends", "you are already friends", status=409)


def _request_not_found() -> AppError:
    return AppError("request_not_found", "no such pending friend request", status=404)


async def check_send_request(
    ctx: Messaging, requester_id: str, addressee_id: str, message: str
) -> tuple[dict, str]:
    """Validate a friend request; return the addressee and the normalised message."""
    message = message.strip()
    if len(message) > REQUEST_MESSAGE_MAX:
        raise AppError(
            "invalid_field",
            f"message must be at most {REQUEST_MESSAGE_MAX} characters",
            details={"field": "message"},
        )
    error = AppError("cannot_add_self", "you cannot send a friend request to yourself")
    addressee = await _other_user(ctx, requester_id, addressee_id, error)
    if await ctx.blocks.is_blocked_either_way(requester_id, addressee_id):
        raise await _blocked_error(ctx, requester_id, addressee_id)
    return addressee, message


# --- friend requests ------------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    """What sending a friend request did: exactly one of ``request`` and ``friend`` is set."""

    created: bool
    request: dict[str, Any] | None = None
    friend: dict[str, Any] | None = None


async def do_send_request(
    ctx: Messaging, requester_id: str, addressee_id: str, message: str = ""
) -> SendResult:
    """Ask ``addressee_id`` to be friends.

    Idempotent: while a request of ours is pending, sending again returns it unchanged. When they
    already asked us, this accepts their request (a mutual request) and returns the friendship.
    """
    addressee, message = await check_send_request(ctx, requester_id, addressee_id, message)
    requester = await ctx.users.get_user(requester_id)
    if requester is None:
        raise AppError("user_not_found", "your account no longer exists", status=404)
    for _ in range(_SEND_ATTEMPTS):
        contact = await ctx.contacts.add_request(requester_id, addressee_id, message, now_ms())
        if contact is not None:
            # A block written after our check deleted the pair before our insert: undo (and
            # undo an acceptance that slipped in meanwhile; blocked people are never friends).
            if await ctx.blocks.is_blocked_either_way(requester_id, addressee_id):
                undone = await ctx.contacts.delete_contact(requester_id, addressee_id)
                if undone is not None and undone["state"] == FRIENDS:
                    await _emit_removed(ctx, requester_id, addressee_id)
                raise await _blocked_error(ctx, requester_id, addressee_id)
            view = request_view(contact, requester, addressee)
            await ctx.events.emit(
                event("contact.request", {"user": addressee_id}, {"request": view})
            )
            return SendResult(created=True, request=view)

        existing = await ctx.contacts.get_contact(requester_id, addressee_id)
        if existing is None:
            continue  # deleted between our insert and our read: try again
        if existing["state"] == FRIENDS:
            raise _already_friends()
        if existing["requester_id"] == requester_id:
            return SendResult(created=False, request=request_view(existing, requester, addressee))
        friend = await _accept(ctx, requester_id=addressee_id, addressee_id=requester_id)
        if friend is not None:
            return SendResult(created=False, friend=friend)
        # Their request was cancelled or declined meanwhile: go round and insert ours.
    raise AppError("conflict", "this contact changed while we updated it; try again", status=409)


async def _accept(ctx: Messaging, *, requester_id: str, addressee_id: str) -> dict | None:
    """pending → friends; emits and returns the new friend as the addressee sees them."""
    contact = await ctx.contacts.accept_request(requester_id, addressee_id, now_ms())
    if contact is None:
        return None
    users = await _users_by_id(ctx, [requester_id, addressee_id])
    requester, addressee = users.get(requester_id), users.get(addressee_id)
    if requester is None or addressee is None:
        # Only an account deleted mid-accept gets here; the friendship stands, nothing to show.
        raise AppError("user_not_found", "no such user", status=404)
    await ctx.events.emit(
        event("contact.accepted", {"user": requester_id}, friend_view(contact, addressee))
    )
    view = friend_view(contact, requester)
    await ctx.events.emit(event("contact.added", {"user": addressee_id}, view))
    return view


async def do_accept_request(ctx: Messaging, user_id: str, requester_id: str) -> dict:
    friend = await _accept(ctx, requester_id=requester_id, addressee_id=user_id)
    if friend is not None:
        return friend
    if await are_friends(ctx, user_id, requester_id):
        raise _already_friends()
    raise _request_not_found()


async def do_decline_request(ctx: Messaging, user_id: str, requester_id: str) -> None:
    if not await ctx.contacts.delete_request(requester_id, user_id):
        raise _request_not_found()
    payload = {"user_id": user_id}
    await ctx.events.emit(event("contact.request_declined", {"user": requester_id}, payload))


async def do_cancel_request(ctx: Messaging, user_id: str, addressee_id: str) -> None:
    if not await ctx.contacts.delete_request(user_id, addressee_id):
        raise _request_not_found()
    payload = {"user_id": user_id}
    await ctx.events.emit(event("contact.request_cancelled", {"user": addressee_id}, payload))


async def get_requests(ctx: Messaging, user_id: str) -> dict[str, list[dict]]:
    incoming, outgoing = await asyncio.gather(
        ctx.contacts.get_requests(user_id, incoming=True, limit=REQUESTS_LIST_MAX),
        ctx.contacts.get_requests(user_id, incoming=False, limit=REQUESTS_LIST_MAX),
    )
    return {
        "incoming": await _request_views(ctx, incoming),
        "outgoing": await _request_views(ctx, outgoing),
    }


# --- friends --------------------------------------------------------------------------------


def _parse_cursor(user_id: str, before: str) -> tuple[int, str]:
    since, _, other = before.partition(".")
    if not since.isdigit() or not other:
        raise AppError(
            "invalid_field",
            "before must be the next_before of a previous page",
            details={"field": "query.before"},
        )
    return int(since), pair_id(user_id, other)


async def get_friends(
    ctx: Messaging, user_id: str, *, limit: int = FRIENDS_PAGE_DEFAULT, before: str | None = None
) -> tuple[list[dict], str | None]:
    """A page of friends, most recent first, and the cursor of the next page (or None)."""
    cursor = _parse_cursor(user_id, before) if before else None
    contacts = await ctx.contacts.get_friends(user_id, limit + 1, cursor)
    more, contacts = len(contacts) > limit, contacts[:limit]
    users = await _users_by_id(ctx, [other_of(c, user_id) for c in contacts])
    friends = [
        friend_view(c, users[other_of(c, user_id)])
        for c in contacts
        if other_of(c, user_id) in users
    ]
    next_before = None
    if more and contacts:
        last = contacts[-1]
        next_before = f"{last['since']}.{other_of(last, user_id)}"
    return friends, next_before


async def do_remove_friend(ctx: Messaging, user_id: str, friend_id: str) -> None:
    if not await ctx.contacts.remove_friendship(user_id, friend_id):
        raise AppError("not_friends", "this user is not your friend", status=404)
    await _emit_removed(ctx, user_id, friend_id)


async def _emit_removed(ctx: Messaging, a: str, b: str) -> None:
    await ctx.events.emit(event("contact.removed", {"user": a}, {"user_id": b}))
    await ctx.events.emit(event("contact.removed", {"user": b}, {"user_id": a}))


# --- blocks ---------------------------------------------------------------------------------


async def do_block(ctx: Messaging, user_id: str, blocked_id: str) -> None:
    """Block (idempotent); ends a friendship or pending request between the two."""
    error = AppError("cannot_block_self", "you cannot block yourself")
    await _other_user(ctx, user_id, blocked_id, error)
    # The block is written first, then the pair deleted: a concurrent request either sees the
    # block in its checks or is deleted here.
    added = await ctx.blocks.add_block(user_id, blocked_id, now_ms())
    contact = await ctx.contacts.delete_contact(user_id, blocked_id)
    if added:
        payload = {"user_id": blocked_id}
        await ctx.events.emit(event("contact.blocked", {"user": user_id}, payload))
    if contact is None:
        return
    if contact["state"] == FRIENDS:
        await _emit_removed(ctx, user_id, blocked_id)
    else:
        was_mine = contact["requester_id"] == user_id
        type_ = "contact.request_cancelled" if was_mine else "contact.request_declined"
        await ctx.events.emit(event(type_, {"user": blocked_id}, {"user_id": user_id}))


async def do_unblock(ctx: Messaging, user_id: str, blocked_id: str) -> None:
    """Unblock (idempotent: unblocking someone not blocked changes nothing)."""
    if await ctx.blocks.remove_block(user_id, blocked_id):
        payload = {"user_id": blocked_id}
        await ctx.events.emit(event("contact.unblocked", {"user": user_id}, payload))


async def get_blocks(ctx: Messaging, user_id: str) -> list[dict]:
    blocks = await ctx.blocks.get_blocked_ids(user_id)
    users = await _users_by_id(ctx, [b["blocked_id"] for b in blocks])
    return [
        {"user": user_view(users[b["blocked_id"]]), "created_at": iso(b["created_at"])}
        for b in blocks
        if b["blocked_id"] in users
    ]


# --- finding people -------------------------------------------------------------------------


async def search_users(
    ctx: Messaging, user_id: str, q: str, limit: int = SEARCH_LIMIT_DEFAULT
) -> list[dict]:
    """Users whose username starts with ``q`` (any case), minus me and those who blocked me."""
    prefix = q.strip().lower()
    if not prefix:
        raise AppError("invalid_field", "q must not be blank", details={"field": "query.q"})
    hidden = [user_id, *await ctx.blocks.get_blocker_ids(user_id)]
    found = await ctx.users.find_by_username_prefix(prefix, exclude_ids=hidden, limit=limit)
    return [user_view(user) for user in found]


async def get_profile(ctx: Messaging, user_id: str, other_id: str) -> dict[str, Any]:
    """A public profile and how I stand with them; someone who blocked me is "not found"."""
    user = await ctx.users.get_user(other_id)
    if user is None or (other_id != user_id and await ctx.blocks.has_blocked(other_id, user_id)):
        raise AppError("user_not_found", "no such user", status=404)
    return {"user": user_view(user), "relationship": await _relationship(ctx, user_id, other_id)}


async def _relationship(ctx: Messaging, user_id: str, other_id: str) -> str:
    if user_id == other_id:
        return "self"
    if await ctx.blocks.has_blocked(user_id, other_id):
        return "blocked"
    contact = await ctx.contacts.get_contact(user_id, other_id)
    if contact is None:
        return "none"
    if contact["state"] == FRIENDS:
        return "friend"
    return "request_sent" if contact["requester_id"] == user_id else "request_received"
