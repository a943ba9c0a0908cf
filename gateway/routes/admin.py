"""The operator's admin panel: users, conversations, reports and moderation, mini-programs,
stats and the admin audit log — plus the members' report of a message that feeds moderation.

Every ``/api/v1/admin/`` route is ``admin=True``: the role is checked on the server for every
request (403 ``not_admin``), whatever the page shows.
"""

from __future__ import annotations

from aiohttp import web

from gateway.api import AUTH, BODY, QUERY, Api
from gateway.keys import MESSAGING, MINIAPPS, WALLET
from gateway.schemas import SESSION, obj, string
from messaging.actions import admin
from miniapps.host import admin as miniapps_admin
from miniapps.host.ai import usage as ai_usage
from wallet.actions import fees

api = Api("admin", "Administration and moderation (admins), and reporting a message")

REASON = string(admin.REASON_MAX, description="why; kept in the admin audit log")
REASON_BODY = obj({"reason": REASON})
LIMIT = {"type": "integer", "minimum": 1, "maximum": admin.LIST_LIMIT_MAX}
BEFORE = {"type": "integer", "minimum": 0, "description": "epoch ms: entries older than this"}
ADMIN_USER = obj(
    {
        "id": {"type": "string"},
        "username": {"type": "string"},
        "display_name": {"type": "string"},
        "email": {"type": "string"},
        "role": {"type": "string"},
        "suspended": {"type": "boolean"},
        "suspended_reason": {"type": "string"},
        "created_at": {"type": "string"},
        "created_at_ms": {"type": "integer", "description": "for paging with before="},
        "last_seen_at": {"type": ["string", "null"]},
        "online": {"type": "boolean"},
        "sessions": {"type": "array", "items": SESSION},
        "sessions_revoked": {"type": "integer"},
    }
)
ADMIN_CONVERSATION = obj(
    {
        "id": {"type": "string"},
        "type": {"enum": ["direct", "group"]},
        "title": {"type": "string"},
        "member_count": {"type": "integer"},
        "last_seq": {"type": "integer"},
        "created_at": {"type": "string"},
        "last_activity_at": {"type": ["string", "null"]},
        "last_activity_ms": {"type": ["integer", "null"]},
        "last_message_at": {"type": ["string", "null"]},
    }
)
REPORT = obj(
    {"id": {"type": "string"}, "status": {"enum": list(admin.REPORT_STATUSES)}}, extra=True
)


def _admin_id(request: web.Request) -> str:
    return request[AUTH].user_id


# --- users ----------------------------------------------------------------------------------


@api.get(
    "/api/v1/admin/users",
    summary="Find users by username or display name, newest first (admins)",
    query={"q": string(64), "before": BEFORE, "limit": LIMIT},
    response=obj({"users": {"type": "array", "items": ADMIN_USER}}),
    admin=True,
)
async def admin_list_users(request: web.Request) -> dict:
    query = request[QUERY]
    users = await admin.get_users(
        request.app[MESSAGING],
        text=query.get("q", ""),
        before=query.get("before"),
        limit=query.get("limit", 50),
    )
    return {"users": users}


@api.get(
    "/api/v1/admin/users/{user_id}",
    summary="A user, with their active sessions (admins)",
    response=obj({"user": ADMIN_USER}),
    errors=("user_not_found",),
    admin=True,
)
async def admin_get_user(request: web.Request) -> dict:
    return {"user": await admin.get_user(request.app[MESSAGING], request.match_info["user_id"])}


@api.post(
    "/api/v1/admin/users/{user_id}/suspend",
    summary="Suspend a user: sign-in refused, every session revoked and disconnected (admins)",
    body=REASON_BODY,
    response=obj({"user": ADMIN_USER}),
    errors=("user_not_found", "cannot_suspend_self", "already_suspended"),
    admin=True,
)
async def admin_suspend(request: web.Request) -> dict:
    user = await admin.do_suspend(
        request.app[MESSAGING],
        _admin_id(request),
        request.match_info["user_id"],
        request[BODY].get("reason", ""),
    )
    return {"user": user}


@api.post(
    "/api/v1/admin/users/{user_id}/unsuspend",
    summary="Let a suspended user sign in again (admins)",
    body=REASON_BODY,
    response=obj({"user": ADMIN_USER}),
    errors=("user_not_found", "not_suspended"),
    admin=True,
)
async def admin_unsuspend(request: web.Request) -> dict:
    user = await admin.do_unsuspend(
        request.app[MESSAGING],
        _admin_id(request),
        request.match_info["user_id"],
        request[BODY].get("reason", ""),
    )
    return {"user": user}


@api.delete(
    "/api/v1/admin/users/{user_id}/sessions/{session_id}",
    status=204,
    summary="Sign out one of a user's devices (admins)",
    errors=("user_not_found", "session_not_found"),
    admin=True,
)
async def admin_revoke_session(request: web.Request) -> None:
    await admin.do_revoke_user_session(
        request.app[MESSAGING],
        _admin_id(request),
        request.match_info["user_id"],
        request.match_info["session_id"],
    )


# --- conversations, reports, moderation -----------------------------------------------------


@api.get(
    "/api/v1/admin/conversations",
    summary="Every conversation, most recently active first; q matches group titles (admins)",
    query={"q": string(64), "before": BEFORE, "limit": LIMIT},
    response=obj({"conversations": {"type": "array", "items": ADMIN_CONVERSATION}}),
    admin=True,
)
async def admin_list_conversations(request: web.Request) -> dict:
    query = request[QUERY]
    found = await admin.get_conversations(
        request.app[MESSAGING],
        text=query.get("q", ""),
        before=query.get("before"),
        limit=query.get("limit", 50),
    )
    return {"conversations": found}


@api.get(
    "/api/v1/admin/conversations/{conversation_id}/messages",
    summary="Read a conversation's history for moderation; recorded in the audit (admins)",
    query={
        "before": {"type": "integer", "minimum": 1},
        "around": {"type": "integer", "minimum": 1, "description": "a seq to centre the page on"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 100},
    },
    response=obj({"conversation": ADMIN_CONVERSATION, "messages": {"type": "array"}}),
    errors=("conversation_not_found",),
    admin=True,
)
async def admin_conversation_messages(request: web.Request) -> dict:
    query = request[QUERY]
    return await admin.get_conversation_messages(
        request.app[MESSAGING],
        _admin_id(request),
        request.match_info["conversation_id"],
        before=query.get("before"),
        around=query.get("around"),
        limit=query.get("limit", 50),
    )


@api.post(
    "/api/v1/conversations/{conversation_id}/messages/{message_id}/report",
    status=201,
    summary="Report a message to the moderators (members; once per message)",
    body=obj({"reason": string(admin.REASON_MAX, 1)}, ["reason"]),
    response=obj({"report": REPORT}),
    errors=(
        "not_a_member",
        "message_not_found",
        "not_allowed",
        "already_reported",
        "missing_reason",
    ),
)
async def report_message(request: web.Request) -> dict:
    report = await admin.do_report(
        request.app[MESSAGING],
        request[AUTH].user_id,
        request.match_info["conversation_id"],
        request.match_info["message_id"],
        request[BODY]["reason"],
    )
    return {"report": report}


@api.get(
    "/api/v1/admin/reports",
    summary="Reported messages, newest first, with the message (admins)",
    query={"status": {"enum": list(admin.REPORT_STATUSES)}, "before": BEFORE, "limit": LIMIT},
    response=obj({"reports": {"type": "array", "items": REPORT}}),
    admin=True,
)
async def admin_list_reports(request: web.Request) -> dict:
    query = request[QUERY]
    reports = await admin.get_reports(
        request.app[MESSAGING],
        status=query.get("status"),
        before=query.get("before"),
        limit=query.get("limit", 50),
    )
    return {"reports": reports}


@api.post(
    "/api/v1/admin/reports/{report_id}/dismiss",
    summary="Close a report without acting on the message (admins)",
    body=REASON_BODY,
    response=obj({"report": REPORT}),
    errors=("report_not_found", "report_closed"),
    admin=True,
)
async def admin_dismiss_report(request: web.Request) -> dict:
    report = await admin.do_dismiss_report(
        request.app[MESSAGING],
        _admin_id(request),
        request.match_info["report_id"],
        request[BODY].get("reason", ""),
    )
    return {"report": report}


@api.post(
    "/api/v1/admin/messages/{conversation_id}/{message_id}/hide",
    summary="Hide a message for everyone (blanked, moderated: true); its reports resolved (admins)",
    body=obj({"reason": string(admin.REASON_MAX, 1)}, ["reason"]),
    response=obj({"message": {"type": "object"}, "reports_resolved": {"type": "integer"}}),
    errors=(
        "conversation_not_found",
        "message_not_found",
        "not_allowed",
        "already_hidden",
        "missing_reason",
    ),
    admin=True,
)
async def admin_hide_message(request: web.Request) -> dict:
    return await admin.do_hide_message(
        request.app[MESSAGING],
        _admin_id(request),
        request.match_info["conversation_id"],
        request.match_info["message_id"],
        request[BODY]["reason"],
    )


# --- mini-programs --------------------------------------------------------------------------


@api.get(
    "/api/v1/admin/miniapps",
    summary="The catalogue with each app's enabled flag and sandbox/process status (admins)",
    response=obj({"miniapps": {"type": "array"}, "sandbox": {"enum": ["isolated", "degraded"]}}),
    admin=True,
)
async def admin_list_miniapps(request: web.Request) -> dict:
    return miniapps_admin.get_miniapps(request.app[MINIAPPS])


async def _switch(request: web.Request, enabled: bool) -> dict:
    app = await miniapps_admin.do_set_app_enabled(
        request.app[MINIAPPS],
        request.app[MESSAGING],
        _admin_id(request),
        request.match_info["app_id"],
        enabled,
        request[BODY].get("reason", ""),
    )
    return {"miniapp": app}


@api.post(
    "/api/v1/admin/miniapps/{app_id}/disable",
    summary="Switch a mini-program off: no installs, commands or button presses (admins)",
    body=REASON_BODY,
    response=obj({"miniapp": {"type": "object"}}),
    errors=("app_not_found", "already_disabled"),
    admin=True,
)
async def admin_disable_miniapp(request: web.Request) -> dict:
    return await _switch(request, False)


@api.post(
    "/api/v1/admin/miniapps/{app_id}/enable",
    summary="Switch a mini-program back on (admins)",
    body=REASON_BODY,
    response=obj({"miniapp": {"type": "object"}}),
    errors=("app_not_found", "already_enabled"),
    admin=True,
)
async def admin_enable_miniapp(request: web.Request) -> dict:
    return await _switch(request, True)


# --- stats and audit ------------------------------------------------------------------------


@api.get(
    "/api/v1/admin/stats",
    summary="Per UTC day: active users, messages, new users; oldest first (admins)",
    query={"days": {"type": "integer", "minimum": 1, "maximum": admin.STATS_DAYS_MAX}},
    response=obj({"days": {"type": "array"}}),
    admin=True,
)
async def admin_stats(request: web.Request) -> dict:
    return await admin.get_stats(request.app[MESSAGING], request[QUERY].get("days", 14))


@api.get(
    "/api/v1/admin/audit",
    summary="What administrators did, newest first (admins)",
    query={"action": string(64, 1), "before": BEFORE, "limit": LIMIT},
    response=obj({"entries": {"type": "array"}}),
    admin=True,
)
async def admin_audit(request: web.Request) -> dict:
    query = request[QUERY]
    entries = await admin.get_audit(
        request.app[MESSAGING],
        action=query.get("action"),
        before=query.get("before"),
        limit=query.get("limit", 100),
    )
    return {"entries": entries}


# --- the platform's fee on an app's captures and payouts (wallet) ----------------------------

FEE = obj(
    {
        "app_id": {"type": "string"},
        "currency": {"type": "string"},
        "basis_points": {"type": "integer"},
        "fixed": {"type": "integer"},
        "updated_by": {"type": "string"},
        "updated_at": {"type": "string"},
    }
)


@api.post(
    "/api/v1/admin/miniapps/{app_id}/fees",
    summary="Set the platform's fee on a mini-program's captures and payouts in one currency: "
    "fixed + amount * basis_points / 10000 minor units, booked to fee:<CUR> (admins; audited)",
    body=obj(
        {
            "currency": string(3, 3, description="ISO 4217 code, e.g. USD"),
            "basis_points": {"type": "integer", "description": "1/100 of a percent, 0-5000"},
            "fixed": {"type": "integer", "description": "minor units per capture or payout"},
            "reason": REASON,
        },
        ["currency"],
    ),
    response=obj({"fee": FEE}),
    errors=("app_not_found", "unknown_currency", "invalid_field"),
    admin=True,
)
async def admin_set_fee(request: web.Request) -> dict:
    app_id = request.match_info["app_id"]
    fee = await fees.do_set_fee(
        request.app[WALLET],
        _admin_id(request),
        app_id,
        request[BODY],
        app_known=app_id in request.app[MINIAPPS].apps,
    )
    return {"fee": fee}


@api.get(
    "/api/v1/admin/miniapps/{app_id}/fees",
    summary="The platform's fees on a mini-program, per currency (admins)",
    response=obj({"fees": {"type": "array", "items": FEE}}),
    admin=True,
)
async def admin_get_fees(request: web.Request) -> dict:
    return {"fees": await fees.get_fees(request.app[WALLET], request.match_info["app_id"])}


# --- the platform's model (ai.chat): tokens used --------------------------------------------

AI_USAGE_ROW = obj(
    {
        "app_id": {"type": "string"},
        "conversation_id": {"type": "string"},
        "user_id": {"type": "string"},
        "prompt_tokens": {"type": "integer"},
        "completion_tokens": {"type": "integer"},
        "total_tokens": {"type": "integer"},
        "requests": {"type": "integer"},
    }
)


@api.get(
    "/api/v1/admin/ai/usage",
    summary="Model tokens used on a UTC day (default today) per mini-program, conversation and "
    "person, biggest first, beside the AI budgets in force (admins)",
    query={
        # YYYY-MM-DD, checked by the action (invalid_field): a pattern here would only repeat it
        "day": string(10, 10, description="a UTC day, YYYY-MM-DD")
    },
    response=obj(
        {
            "day": {"type": "string"},
            "configured": {"type": "boolean"},
            "model": {"type": ["string", "null"]},
            "budgets": {"type": "object"},
            "totals": {"type": "object"},
            "apps": {"type": "array", "items": AI_USAGE_ROW},
            "conversations": {"type": "array", "items": AI_USAGE_ROW},
            "users": {"type": "array", "items": AI_USAGE_ROW},
        }
    ),
    errors=("invalid_field",),
    admin=True,
)
async def admin_ai_usage(request: web.Request) -> dict:
    return await ai_usage.get_usage(request.app[MINIAPPS].ai, request[QUERY].get("day"))
