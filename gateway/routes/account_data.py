"""REST routes: leave with your data — export it (a ZIP, built in the background, downloadable
once) and delete your account."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from gateway.api import AUTH, BODY, QUERY, Api
from gateway.keys import MESSAGING
from gateway.schemas import TIMESTAMP, obj, string
from messaging.actions import account_deletion, data_export

api = Api("account data", "Leave with your data: export it, delete your account")

EXPORT_STATUSES = ["pending", "building", "ready", "downloaded", "expired", "failed"]
EXPORT = obj(
    {
        "id": {"type": "string"},
        "status": {"enum": EXPORT_STATUSES},
        "created_at": TIMESTAMP,
        "ready_at": {"type": ["string", "null"], "format": "date-time"},
        "expires_at": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "while ready: until when it can be downloaded",
        },
        "downloaded_at": {"type": ["string", "null"], "format": "date-time"},
        "size": {"type": ["integer", "null"], "description": "bytes of the ZIP, once built"},
    },
    ["id", "status", "created_at"],
)
PASSWORD = string(256)
CODE = string(64, description="with two-factor sign-in on: an authenticator or recovery code")
# What proving it is you may answer (messaging.actions.reauth, the second factor's own codes).
REAUTH_ERRORS = (
    "wrong_password",
    "mfa_code_required",
    "invalid_code",
    "wrong_code",
    "code_already_used",
    "mfa_not_enabled",
    "rate_limited",
)
ZIP = {"application/zip": {"schema": {"type": "string", "format": "binary"}}}


@api.post(
    "/api/v1/me/export",
    status=202,
    summary="Export my data",
    body=obj({"password": PASSWORD, "code": CODE}, ["password"]),
    response=obj({"export": EXPORT}, ["export"]),
    errors=(*REAUTH_ERRORS, "export_in_progress"),
)
async def request_export(request: web.Request) -> dict:
    """Prepare a ZIP of your data (profile, devices, contacts, your messages with their
    conversations' titles, the media you uploaded, notifications, wallet statement,
    mini-program consents) in the background. Needs your password (and ``code`` with
    two-factor sign-in). When it is ready you get a notification and an email with a link
    that works once, for 24 hours. One export at a time (``export_in_progress``), at most 3 a
    day (``rate_limited``)."""
    body = request[BODY]
    export = await data_export.do_request_export(
        request.app[MESSAGING], request[AUTH].user, body["password"], body.get("code")
    )
    return {"export": export}


@api.get(
    "/api/v1/me/exports",
    summary="My data exports",
    response=obj({"exports": {"type": "array", "items": EXPORT}}, ["exports"]),
)
async def list_exports(request: web.Request) -> dict:
    """Newest first, with their status (pending → building → ready → downloaded | expired |
    failed)."""
    exports = await data_export.get_exports(request.app[MESSAGING], request[AUTH].user_id)
    return {"exports": exports}


@api.post(
    "/api/v1/me/exports/{export_id}/link",
    summary="A download link for my ready export",
    response=obj({"url": {"type": "string"}, "expires_at": TIMESTAMP}, ["url", "expires_at"]),
    errors=("export_not_found", "export_not_ready"),
)
async def new_link(request: web.Request) -> dict:
    """A fresh link (a path on this server) to download your ready export once; the link
    emailed before stops working."""
    return await data_export.do_new_link(
        request.app[MESSAGING], request[AUTH].user_id, request.match_info["export_id"]
    )


@api.get(
    "/api/v1/exports/{export_id}/download",
    auth=False,
    summary="Download an export (the link from the email)",
    query={"token": string(128, 1)},
    response_content=ZIP,
    errors=("export_not_found", "gone"),
)
async def download(request: web.Request) -> web.StreamResponse:
    """The ZIP, once: the token is the permission (no Authorization header). A wrong token is
    ``export_not_found`` (404); a used or expired link is ``gone`` (410)."""
    ctx = request.app[MESSAGING]
    export = await data_export.do_take_download(
        ctx, request.match_info["export_id"], request[QUERY].get("token")
    )
    day = time.strftime("%Y-%m-%d", time.gmtime(export["ready_at"] / 1000))
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/zip",
            "Content-Disposition": f'attachment; filename="aetherial-data-{day}.zip"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    response.content_length = export["size"]
    completed = False
    try:
        await response.prepare(request)
        async for chunk in data_export.read_download(ctx, export):
            await response.write(chunk)
        await response.write_eof()
        completed = True
    finally:
        # Also when the client went away (the handler is cancelled): the export is given back.
        await asyncio.shield(data_export.do_finish_download(ctx, export, completed=completed))
    return response


@api.delete(
    "/api/v1/me",
    status=204,
    summary="Delete my account",
    body=obj(
        {
            "password": PASSWORD,
            "confirm": string(16, description='exactly "DELETE"'),
            "code": CODE,
        },
        ["password", "confirm"],
    ),
    errors=(
        *REAUTH_ERRORS,
        "confirmation_required",
        "wallet_not_empty",
        "deletion_in_progress",
    ),
)
async def delete_me(request: web.Request) -> None:
    """Delete your account for good: your profile shows as "Deleted account" in others' chats
    (your messages stay there), you leave your groups, your friends, requests, blocks,
    notifications, uploaded media, devices and mini-program ids are deleted, and every session
    ends. Needs your password, ``confirm: "DELETE"`` and (two-factor sign-in) ``code``. Money
    must be gone first: ``wallet_not_empty`` lists the balances and what is still pending.
    Nothing changes when it is refused."""
    body = request[BODY]
    await account_deletion.do_delete_account(
        request.app[MESSAGING],
        request[AUTH].user_id,
        password=body["password"],
        confirm=body["confirm"],
        code=body.get("code"),
    )
