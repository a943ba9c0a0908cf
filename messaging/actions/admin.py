"""What an operator does from the admin panel: find users and suspend them, look into
conversations, moderate reported messages, read the charts. (Switching mini-programs off and on
is the host's: ``miniapps/host/admin.py``, which records in the same audit through ``record``.)

The gateway checks the admin role on every request before any of this runs; every action here
that changes something (and reading a conversation's messages) is written to ``admin_audit``.
"""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

from messaging.actions.auth import do_revoke_session, session_view
from messaging.actions.conversations import check_member
from messaging.actions.messages import broadcast_update
from messaging.actions.stats import get_daily
from messaging.context import Messaging
from messaging.views import message_view
from storage.errors import AppError
from storage.mongo import iso, new_id, now_ms

REASON_MAX = 500
LIST_LIMIT_MAX = 200
REPORT_STATUSES = ("open", "resolved", "dismissed")
STATS_DAYS_MAX = 90


# --- the audit ------------------------------------------------------------------------------


async def record(
    ctx: Messaging, actor_id: str, action: str, target: dict[str, Any], reason: str = ""
) -> None:
    await ctx.admin_audit.record(
        {"actor_id": actor_id, "action": action, "target": target, "reason": reason, "at": now_ms()}
    )


async def get_audit(
    ctx: Messaging, *, action: str | None, before: int | None, limit: int
) -> list[dict]:
    entries = await ctx.admin_audit.get_entries(action, before=before, limit=limit)
    actors = {
        u["_id"]: u for u in await ctx.users.get_users(list({e["actor_id"] for e in entries}))
    }
    return [
        {
            "id": e["_id"],
            "actor": {
                "id": e["actor_id"],
                "username": actors.get(e["actor_id"], {}).get("username", ""),
            },
            "action": e["action"],
            "target": e["target"],
            "reason": e.get("reason", ""),
            "at": iso(e["at"]),
            "at_ms": e["at"],
        }
        for e in entries
    ]


def check_reason(reason: object, *, required: bool = False) -> str:
    text = " ".join(reason.split()) if isinstance(reason, str) else ""
    if required and not text:
        raise AppError("missing_reason", "say why (reason)", details={"field": "reason"})
    if len(text) > REASON_MAX:
        raise AppError(
            "invalid_field",
            f"a reason has at most {REASON_MAX} characters",
            details={"field": "reason"},
        )
    return text


# --- users ----------------------------------------------------------------------------------


def admin_user_view(user: dict[str, Any], online: bool = False) -> dict[str, Any]:
    return {
        "id": user["_id"],
        "username": user["username"],
        "display_name": user.get("display_name") or user["username"],
        "email": user.get("email", ""),
        "role": user.get("role", "user"),
        "suspended": bool(user.get("suspended")),
        "suspended_reason": user.get("suspended_reason") or "",
        "created_at": iso(user["created_at"]),
        "created_at_ms": user["created_at"],
        "last_seen_at": iso(user.get("last_seen_at")),
        "online": online,
    }


async def get_users(
    ctx: Messaging, *, text: str, before: int | None, limit: int
) -> list[dict[str, Any]]:
    found = await ctx.users.search_users(text.strip(), before=before, limit=limit)
    online = await ctx.presence.online([u["_id"] for u in found])
    return [admin_user_view(u, u["_id"] in online) for u in found]


async def _check_user(ctx: Messaging, user_id: str) -> dict[str, Any]:
    user = await ctx.users.get_user(user_id)
    if user is None:
        raise AppError("user_not_found", "no such user", status=404)
    return user


async def get_user(ctx: Messaging, user_id: str) -> dict[str, Any]:
    user = await _check_user(ctx, user_id)
    online = await ctx.presence.online([user_id])
    sessions = await ctx.sessions.get_active_sessions(user_id)
    return {
        **admin_user_view(user, user_id in online),
        "sessions": [session_view(s, "") for s in sessions],
    }


async def _revoke_all(ctx: Messaging, user_id: str, reason: str) -> int:
    revoked = 0
    for session in await ctx.sessions.get_active_sessions(user_id):
        try:
            await do_revoke_session(ctx, user_id, session["_id"], reason)
            revoked += 1
        except AppError:  # revoked meanwhile (logout, another admin): already what we want
            pass
    return revoked


async def do_suspend(ctx: Messaging, admin_id: str, user_id: str, reason: object) -> dict:
    """Suspend: sign-in refused (``account_suspended``) and every session revoked, which
    disconnects the user's open sockets with ``session.revoked`` (reason ``suspended``)."""
    text = check_reason(reason)
    if user_id == admin_id:
        raise AppError("cannot_suspend_self", "you cannot suspend your own account", status=409)
    user = await _check_user(ctx, user_id)
    if user.get("suspended"):
        raise AppError("already_suspended", "this account is already suspended", status=409)
    now = now_ms()
    user = await ctx.users.update_user(
        user_id,
        {"suspended": True, "suspended_reason": text, "suspended_at": now, "updated_at": now},
    )
    assert user is not None
    # Revoke after the flag is stored, so a refresh racing with us is refused either way.
    revoked = await _revoke_all(ctx, user_id, "suspended")
    await record(ctx, admin_id, "user.suspend", {"user_id": user_id}, text)
    return {**admin_user_view(user), "sessions_revoked": revoked}


async def do_unsuspend(ctx: Messaging, admin_id: str, user_id: str, reason: object) -> dict:
    text = check_reason(reason)
    user = await _check_user(ctx, user_id)
    if not user.get("suspended"):
        raise AppError("not_suspended", "this account is not suspended", status=409)
    user = await ctx.users.update_user(
        user_id, {"suspended": False, "suspended_reason": "", "updated_at": now_ms()}
    )
    assert user is not None
    await record(ctx, admin_id, "user.unsuspend", {"user_id": user_id}, text)
    return admin_user_view(user)


async def do_revoke_user_session(
    ctx: Messaging, admin_id: str, user_id: str, session_id: str
) -> None:
    await _check_user(ctx, user_id)
    await do_revoke_session(ctx, user_id, session_id, "revoked_by_admin")
    await record(ctx, admin_id, "session.revoke", {"user_id": user_id, "session_id": session_id})


# --- conversations --------------------------------------------------------------------------


async def _titles(ctx: Messaging, conversations: list[dict]) -> dict[str, str]:
    """Direct chats have no title: name them after their two members."""
    titles = {c["_id"]: c.get("title") or "" for c in conversations}
    directs = [c["_id"] for c in conversations if c["type"] == "direct"]
    member_ids: dict[str, list[str]] = {}
    for cid in directs:
        member_ids[cid] = [m["user_id"] for m in await ctx.members.get_members(cid)]
    everyone = list({u for ids in member_ids.values() for u in ids})
    names = {u["_id"]: u["username"] for u in await ctx.users.get_users(everyone)}
    for cid, ids in member_ids.items():
        titles[cid] = " & ".join(sorted(names.get(u, "?") for u in ids))
    return titles


def admin_conversation_view(conversation: dict, title: str) -> dict[str, Any]:
    last = conversation.get("last_message") or {}
    return {
        "id": conversation["_id"],
        "type": conversation["type"],
        "title": title,
        "member_count": conversation.get("member_count", 0),
        "last_seq": conversation.get("last_seq", 0),
        "created_at": iso(conversation["created_at"]),
        "last_activity_at": iso(conversation.get("updated_at")),
        "last_activity_ms": conversation.get("updated_at"),
        "last_message_at": iso(last.get("created_at")),
    }


async def get_conversations(
    ctx: Messaging, *, text: str, before: int | None, limit: int
) -> list[dict[str, Any]]:
    found = await ctx.conversations.search_conversations(text.strip(), before=before, limit=limit)
    titles = await _titles(ctx, found)
    return [admin_conversation_view(c, titles[c["_id"]]) for c in found]


async def _check_conversation(ctx: Messaging, conversation_id: str) -> dict[str, Any]:
    conversation = await ctx.conversations.get_conversation(conversation_id)
    if conversation is None:
        raise AppError("conversation_not_found", "no such conversation", status=404)
    return conversation


async def get_conversation_messages(
    ctx: Messaging,
    admin_id: str,
    conversation_id: str,
    *,
    before: int | None,
    around: int | None,
    limit: int,
) -> dict[str, Any]:
    """A page of any conversation's history for moderation (newest page, or the one before
    ``before``, or the one centred on ``around``); reading it is recorded in the audit."""
    conversation = await _check_conversation(ctx, conversation_id)
    if around is not None:
        page = await ctx.messages.get_page(
            conversation_id, after=max(0, around - limit // 2 - 1), limit=limit
        )
    else:
        page = await ctx.messages.get_page(
            conversation_id, after=0, before=before, limit=limit, newest_first=True
        )
        page.reverse()
    senders = {
        u["_id"]: u["username"]
        for u in await ctx.users.get_users(list({m["sender_id"] for m in page}))
    }
    await record(
        ctx,
        admin_id,
        "conversation.read",
        {
            "conversation_id": conversation_id,
            "seqs": [page[0]["seq"], page[-1]["seq"]] if page else [],
        },
    )
    title = (await _titles(ctx, [conversation]))[conversation_id]
    return {
        "conversation": admin_conversation_view(conversation, title),
        "messages": [
            {**message_view(m), "sender_username": senders.get(m["sender_id"], "")} for m in page
        ],
    }


# --- reports and moderation -----------------------------------------------------------------


def report_view(report: dict, message: dict | None, names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": report["_id"],
        "conversation_id": report["conversation_id"],
        "message_id": report["message_id"],
        "seq": report.get("seq"),
        "reporter": {"id": report["reporter_id"], "username": names.get(report["reporter_id"], "")},
        "reason": report.get("reason", ""),
        "status": report["status"],
        "created_at": iso(report["created_at"]),
        "created_at_ms": report["created_at"],
        "closed_at": iso(report.get("closed_at")),
        "message": (
            {**message_view(message), "sender_username": names.get(message["sender_id"], "")}
            if message
            else None
        ),
    }


async def do_report(
    ctx: Messaging, user_id: str, conversation_id: str, message_id: str, reason: object
) -> dict:
    """A member reports a message they can see (not their own, not a system message), once."""
    text = check_reason(reason, required=True)
    membership = await check_member(ctx, conversation_id, user_id)
    message = await ctx.messages.get_message(conversation_id, message_id)
    if message is None or message["seq"] <= membership.joined_seq.get(user_id, 0):
        raise AppError("message_not_found", "no such message in this chat", status=404)
    if message["type"] == "system" or message["sender_id"] == user_id:
        raise AppError(
            "not_allowed", "you can report other people's messages, not your own", status=403
        )
    report = {
        "_id": new_id(),
        "conversation_id": conversation_id,
        "message_id": message_id,
        "seq": message["seq"],
        "sender_id": message["sender_id"],
        "reporter_id": user_id,
        "reason": text,
        "status": "open",
        "created_at": now_ms(),
    }
    try:
        await ctx.reports.add_report(report)
    except DuplicateKeyError:
        raise AppError(
            "already_reported", "you already reported this message", status=409
        ) from None
    return report_view(report, None, {})


async def get_reports(
    ctx: Messaging, *, status: str | None, before: int | None, limit: int
) -> list[dict[str, Any]]:
    reports = await ctx.reports.get_reports(status, before=before, limit=limit)
    messages = {}
    for r in reports:
        if r["message_id"] not in messages:
            messages[r["message_id"]] = await ctx.messages.get_message(
                r["conversation_id"], r["message_id"]
            )
    people = {r["reporter_id"] for r in reports} | {m["sender_id"] for m in messages.values() if m}
    names = {u["_id"]: u["username"] for u in await ctx.users.get_users(list(people))}
    return [report_view(r, messages[r["message_id"]], names) for r in reports]


async def do_hide_message(
    ctx: Messaging, admin_id: str, conversation_id: str, message_id: str, reason: object
) -> dict:
    """Hide a message for everyone: blanked like a recall and flagged ``moderated``; members
    get ``message.updated``; its open reports are resolved."""
    text = check_reason(reason, required=True)
    await _check_conversation(ctx, conversation_id)
    message = await ctx.messages.get_message(conversation_id, message_id)
    if message is None:
        raise AppError("message_not_found", "no such message in this chat", status=404)
    if message["type"] == "system":
        raise AppError("not_allowed", "system messages cannot be hidden", status=403)
    if message.get("moderated"):
        raise AppError("already_hidden", "this message is already hidden", status=409)
    now = now_ms()
    stamp = await ctx.conversations.note_change(conversation_id)
    changes: dict[str, Any] = {
        "text": "",
        "mentions": [],
        "mention_all": False,
        "reply_to": None,
        "recalled": True,
        "recalled_at": now,
        "recalled_by": admin_id,
        "moderated": True,
        "moderated_reason": text,
        "updated_at_seq": stamp,
    }
    if message["type"] == "card":
        changes["card"] = None
    updated = await ctx.messages.update_message(conversation_id, message_id, {}, changes)
    assert updated is not None
    await ctx.conversations.blank_preview(conversation_id, message_id)
    resolved = await ctx.reports.resolve_for_message(message_id, admin_id, now)
    await record(
        ctx,
        admin_id,
        "message.hide",
        {"conversation_id": conversation_id, "message_id": message_id, "seq": message["seq"]},
        text,
    )
    membership = await ctx.membership.get(conversation_id)
    view = (
        await broadcast_update(ctx, membership, updated)
        if membership is not None
        else message_view(updated)
    )
    return {"message": view, "reports_resolved": resolved}


async def do_dismiss_report(ctx: Messaging, admin_id: str, report_id: str, reason: object) -> dict:
    text = check_reason(reason)
    report = await ctx.reports.get_report(report_id)
    if report is None:
        raise AppError("report_not_found", "no such report", status=404)
    closed = await ctx.reports.close_report(report_id, "dismissed", admin_id, now_ms())
    if closed is None:
        raise AppError("report_closed", "this report is already closed", status=409)
    await record(
        ctx,
        admin_id,
        "report.dismiss",
        {"report_id": report_id, "message_id": report["message_id"]},
        text,
    )
    return report_view(closed, None, {})


# --- stats ----------------------------------------------------------------------------------


async def get_stats(ctx: Messaging, days: int) -> dict[str, Any]:
    return {"days": await get_daily(ctx, days)}
