"""Search: messages in my conversations, people, my conversations by title, and apps.

Messages: the store's text index finds candidates by the query's tokens (see
``messaging.search_terms``), only in conversations I belong to now (a conversation I left is not
searched); each candidate is then checked here: after my ``joined_seq``, not deleted for me, not
recalled or hidden by an admin, and every part of the query really in its text. Results come
newest first (by ``created_at``, then conversation and seq); ``next_before`` pages on.

Bounded work per request: at most ``SCAN_MAX`` candidates are read. When that many are read
before a page is full, the page is returned short, with a ``next_before`` that resumes the scan
(so a client may get fewer than ``limit`` results and still a cursor).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from messaging.actions.accounts import user_view
from messaging.actions.conversations import not_a_member, views_for
from messaging.actions.messages import media_for
from messaging.context import Messaging
from messaging.search_terms import Query, find_matches, name_matches, parse_query, snippet
from messaging.views import message_view
from storage.errors import AppError

log = logging.getLogger(__name__)

TYPES = ("messages", "people", "conversations", "apps")
Q_MAX = 200  # characters
LIMIT_MAX = 50
LIMIT_DEFAULT = 20
SCAN_MAX = 1000  # message candidates read per request at most
OFFSET_MAX = 500  # people, conversations and apps: results reachable by paging
BACKFILL_BATCH = 500


def check_query(q: object) -> Query:
    """The parsed query, or a clear error (``missing_field``, ``invalid_field``)."""
    if q is None:
        raise AppError("missing_field", "query.q is required", details={"field": "query.q"})
    if not isinstance(q, str) or not q.strip():
        raise AppError("invalid_field", "query.q must not be blank", details={"field": "query.q"})
    if len(q) > Q_MAX:
        raise AppError(
            "invalid_field",
            f"query.q must have maximum length {Q_MAX}",
            details={"field": "query.q", "limit": Q_MAX},
        )
    query = parse_query(q)
    if query is None:
        raise AppError(
            "invalid_field",
            "query.q has no letter, digit, character or emoji to search for",
            details={"field": "query.q"},
        )
    return query


def check_limit(limit: object) -> int:
    if limit is None:
        return LIMIT_DEFAULT
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= LIMIT_MAX:
        raise AppError(
            "invalid_field",
            f"query.limit must be from 1 to {LIMIT_MAX}",
            details={"field": "query.limit"},
        )
    return limit


def _bad_cursor() -> AppError:
    return AppError(
        "invalid_field",
        "query.before must be the next_before of a previous page of the same search",
        details={"field": "query.before"},
    )


# --- messages ---------------------------------------------------------------------------------


def _message_cursor(message: dict[str, Any]) -> str:
    return f"m.{message['created_at']}.{message['seq']}.{message['conversation_id']}"


def _parse_message_cursor(before: str) -> tuple[int, str, int]:
    """(created_at, conversation_id, seq) of the last result of the previous page."""
    parts = before.split(".", 3)
    if len(parts) != 4 or parts[0] != "m" or not parts[3]:
        raise _bad_cursor()
    try:
        created_at, seq = int(parts[1]), int(parts[2])
    except ValueError:
        raise _bad_cursor() from None
    if created_at < 0 or seq < 0:
        raise _bad_cursor()
    return created_at, parts[3], seq


def _order_key(message: dict[str, Any]) -> tuple[int, str, int]:
    return message["created_at"], message["conversation_id"], message["seq"]


async def search_messages(
    ctx: Messaging,
    user_id: str,
    query: Query,
    *,
    conversation_id: str | None = None,
    before: str | None = None,
    limit: int = LIMIT_DEFAULT,
) -> dict[str, Any]:
    """Messages I may see that match ``query``, newest first: ``{results, next_before}``."""
    after = _parse_message_cursor(before) if before is not None else None
    if conversation_id is not None:
        member = await ctx.members.get_member(conversation_id, user_id)
        if member is None:
            raise not_a_member()
        members = [member]
    else:
        members = await ctx.members.get_memberships(user_id)
    if not members:
        return {"results": [], "next_before": None}
    by_conversation = {m["conversation_id"]: m for m in members}
    cursor = ctx.messages.search(
        list(by_conversation),
        query.tokens,
        after_seq=members[0].get("joined_seq", 0) if conversation_id is not None else 0,
        created_at_most=after[0] if after else None,
        batch_size=min(SCAN_MAX, limit * 2 + 10),
    )
    hidden = _HiddenSeqs(ctx, user_id)
    found: list[tuple[dict, list[tuple[int, int]]]] = []
    scanned = 0
    last: dict[str, Any] | None = None
    try:
        async for message in cursor:
            if after is not None and _order_key(message) >= after:
                continue  # at or before the previous page's end (same created_at)
            scanned += 1
            last = message
            member = by_conversation.get(message["conversation_id"])
            if _visible(message, member) and not await hidden.has(member, message["seq"]):
                matches = find_matches(message.get("text") or "", query)
                if matches is not None:
                    found.append((message, matches))
            if len(found) > limit or scanned >= SCAN_MAX:
                break
    finally:
        await cursor.close()
    page = found[:limit]
    if len(found) > limit:
        next_before = _message_cursor(page[-1][0])
    elif scanned >= SCAN_MAX and last is not None:
        next_before = _message_cursor(last)  # the scan stopped early: resume after it
    else:
        next_before = None
    summaries = await ctx.reactions.get_summaries([m["_id"] for m, _ in page])
    media = await media_for(ctx, [m for m, _ in page])  # photos and card images, signed
    results = []
    for message, matches in page:
        text, highlights = snippet(message.get("text") or "", matches)
        results.append(
            {
                "type": "message",
                "conversation_id": message["conversation_id"],
                "seq": message["seq"],
                "message": message_view(message, summaries.get(message["_id"]), media),
                "snippet": text,
                "highlights": highlights,
            }
        )
    return {"results": results, "next_before": next_before}


def _visible(message: dict[str, Any], member: dict[str, Any] | None) -> bool:
    if member is None or message["seq"] <= member.get("joined_seq", 0):
        return False
    return message.get("type") != "system" and not message.get("recalled")


class _HiddenSeqs:
    """The seqs I deleted for myself, read once per conversation where I ever deleted one."""

    def __init__(self, ctx: Messaging, user_id: str) -> None:
        self.ctx = ctx
        self.user_id = user_id
        self.seqs: dict[str, set[int]] = {}

    async def has(self, member: dict[str, Any], seq: int) -> bool:
        if not member.get("last_hidden_at_seq"):
            return False
        conversation_id = member["conversation_id"]
        if conversation_id not in self.seqs:
            self.seqs[conversation_id] = await self.ctx.hidden.get_hidden_seqs(
                self.user_id, conversation_id, member.get("joined_seq", 0) + 1, 2**62
            )
        return seq in self.seqs[conversation_id]


# --- people, conversations, apps ----------------------------------------------------------------


def _parse_offset(before: str | None) -> int:
    if before is None:
        return 0
    prefix, _, number = before.partition(".")
    if prefix != "o" or not number.isdigit() or int(number) > OFFSET_MAX:
        raise _bad_cursor()
    return int(number)


def _page(items: list[Any], offset: int, limit: int, make: Callable[[Any], dict]) -> dict:
    page = items[offset : offset + limit]
    more = len(items) > offset + limit and offset + limit <= OFFSET_MAX
    return {
        "results": [make(item) for item in page],
        "next_before": f"o.{offset + limit}" if more else None,
    }


async def search_people(
    ctx: Messaging, user_id: str, query: Query, *, before: str | None, limit: int
) -> dict[str, Any]:
    """My contacts whose name or username matches, by name; then other people whose username
    starts with the query, by username. Never me, nor anyone who blocked me."""
    offset = _parse_offset(before)
    wanted = offset + limit + 1
    blockers = set(await ctx.blocks.get_blocker_ids(user_id))
    friend_ids = [f for f in await ctx.contacts.get_friend_ids(user_id) if f not in blockers]
    friends = [
        u
        for u in await ctx.users.get_users(friend_ids)
        if name_matches(query, u.get("display_name") or "", u["username"])
    ]
    friends.sort(key=lambda u: ((u.get("display_name") or u["username"]).casefold(), u["_id"]))
    people = friends[:wanted]
    prefix = query.folded
    if len(people) < wanted and prefix and " " not in prefix:
        others = await ctx.users.find_by_username_prefix(
            prefix,
            exclude_ids=[user_id, *blockers, *friend_ids],
            limit=wanted - len(people),
        )
        people.extend(others)
    return _page(people, offset, limit, lambda u: {"type": "person", "user": user_view(u)})


async def search_conversations(
    ctx: Messaging, user_id: str, query: Query, *, before: str | None, limit: int
) -> dict[str, Any]:
    """My conversations whose title (a direct chat's: the other person's name) matches, most
    recently active first."""
    offset = _parse_offset(before)
    ids = [m["conversation_id"] for m in await ctx.members.get_memberships(user_id)]
    conversations = await ctx.conversations.get_conversations(ids) if ids else []
    views = await views_for(ctx, user_id, conversations)
    matched = [
        v
        for v in views
        if name_matches(query, v.get("title") or "", (v.get("peer") or {}).get("username", ""))
    ]
    return _page(matched, offset, limit, lambda v: {"type": "conversation", "conversation": v})


def search_apps(
    catalogue: Iterable[dict[str, Any]], query: Query, *, before: str | None, limit: int
) -> dict[str, Any]:
    """Enabled mini-programs whose name, id or description matches, by name. The catalogue is
    the host's; the gateway passes it (messaging does not know the host)."""
    offset = _parse_offset(before)
    matched = sorted(
        (
            app
            for app in catalogue
            if app.get("enabled", True)
            and name_matches(query, app.get("name", ""), app["id"], app.get("description", ""))
        ),
        key=lambda app: (app.get("name", "").casefold(), app["id"]),
    )
    return _page(
        matched,
        offset,
        limit,
        lambda app: {
            "type": "app",
            "app": {
                "id": app["id"],
                "name": app.get("name", ""),
                "description": app.get("description", ""),
            },
        },
    )


# --- the text index and the one-time backfill --------------------------------------------


async def ensure_index(ctx: Messaging) -> None:
    await ctx.messages.ensure_search_index()


async def do_backfill(ctx: Messaging, batch: int = BACKFILL_BATCH) -> int:
    """Index messages stored before search existed; returns how many. Safe on every node at
    once and against concurrent edits (each write is conditional, see the store)."""
    done = 0
    seen: set[str] = set()
    while True:
        todo = [m for m in await ctx.messages.get_unindexed(batch) if m["_id"] not in seen]
        if not todo:
            break
        for message in todo:
            seen.add(message["_id"])
            if await ctx.messages.set_search_text(message):
                done += 1
        await asyncio.sleep(0)  # let requests in between batches
    if done:
        log.info("indexed %d older messages for search", done)
    return done
