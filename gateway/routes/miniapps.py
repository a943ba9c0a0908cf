"""Mini-programs: the catalogue, a conversation's apps, consents, the audit log."""

from __future__ import annotations

from aiohttp import web

from gateway.api import AUTH, BODY, QUERY, Api
from gateway.keys import CONFIG, MESSAGING, MINIAPPS
from gateway.schemas import obj, string
from miniapps.host import app_config, roles, webviews
from storage.errors import AppError
from storage.mongo import iso

api = Api("miniapps", "Mini-programs in conversations")

APP = obj(
    {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "version": {"type": "string"},
        "description": {"type": "string"},
        "commands": {"type": "array"},
        "permissions": {"type": "array"},
        "kind": {"enum": ["hosted", "remote"]},
        "sandbox": {"enum": ["isolated", "degraded"]},
        "webview": {"type": "boolean"},
        # A hosted app's icon on this server (/miniapps/<id>/web/icon.png), a remote app's
        # https:// URL, or null: clients then show the name's initial.
        "icon_url": {"type": ["string", "null"]},
        "takes_messages": {
            "type": "boolean",
            "description": "it takes people's messages: POST /api/v1/miniapps/{id}/chat opens "
            "a service chat one can write in",
        },
        "wants_history": {
            "type": "boolean",
            "description": "it reads a chat's history once the chat granted it "
            "messages.read_history (PUT …/apps/{app_id}/grants/messages.read_history)",
        },
    },
    extra=True,
)


@api.get(
    "/api/v1/miniapps",
    summary="The catalogue of mini-programs",
    response=obj(
        {"miniapps": {"type": "array", "items": APP}, "sandbox": {"enum": ["isolated", "degraded"]}}
    ),
)
async def catalogue(request: web.Request) -> dict:
    """``sandbox: degraded`` means bubblewrap is missing on the server: apps run without
    namespaces (still with resource limits and a scrubbed environment)."""
    host = request.app[MINIAPPS]
    return {"miniapps": host.catalogue(), "sandbox": "degraded" if host.degraded else "isolated"}


@api.get(
    "/api/v1/conversations/{conversation_id}/apps",
    summary="The apps this chat has",
    response=obj({"miniapps": {"type": "array", "items": APP}}),
    errors=("not_a_member",),
)
async def installed(request: web.Request) -> dict:
    host = request.app[MINIAPPS]
    apps = await host.get_installed(request[AUTH].user_id, request.match_info["conversation_id"])
    apps = [{**app, **host.apps_catalogue.flags(app["id"])} for app in apps]
    return {"miniapps": apps}


@api.post(
    "/api/v1/conversations/{conversation_id}/apps",
    status=201,
    summary="Add an app to a chat (group owner/admins; either member of a direct chat)",
    body=obj({"app_id": string(64, 1)}, ["app_id"]),
    response=obj({"miniapp": APP}),
    errors=("not_a_member", "not_allowed", "app_not_found"),
)
async def install(request: web.Request) -> dict:
    host = request.app[MINIAPPS]
    app = await host.do_install(
        request[AUTH].user_id, request.match_info["conversation_id"], request[BODY]["app_id"]
    )
    return {"miniapp": app}


@api.delete(
    "/api/v1/conversations/{conversation_id}/apps/{app_id}",
    status=204,
    summary="Remove an app from a chat",
    errors=("not_a_member", "not_allowed", "app_not_found", "app_not_installed"),
)
async def uninstall(request: web.Request) -> None:
    await request.app[MINIAPPS].do_uninstall(
        request[AUTH].user_id, request.match_info["conversation_id"], request.match_info["app_id"]
    )


@api.get(
    "/api/v1/me/consents",
    summary="What I allowed or refused mini-programs",
    response=obj({"consents": {"type": "array"}}),
)
async def my_consents(request: web.Request) -> dict:
    found = await request.app[MINIAPPS].consents.get_user_consents(request[AUTH].user_id)
    return {
        "consents": [
            {
                "app_id": c["app_id"],
                "scope": c["scope"],
                "granted": bool(c["granted"]),
                "at": iso(c["at"]),
            }
            for c in found
        ]
    }


@api.delete(
    "/api/v1/me/consents/{app_id}/{scope}",
    status=204,
    summary="Revoke a consent (the app is asked again next time)",
    errors=("consent_not_found",),
)
async def revoke_consent(request: web.Request) -> None:
    revoked = await request.app[MINIAPPS].consents.revoke(
        request[AUTH].user_id, request.match_info["app_id"], request.match_info["scope"]
    )
    if not revoked:
        raise AppError("consent_not_found", "no such consent", status=404)


@api.get(
    "/api/v1/admin/miniapps/audit",
    summary="Capability calls of mini-programs (admins)",
    query={
        "app_id": string(64, 1),
        "before": {"type": "integer", "minimum": 0},
        "limit": {"type": "integer", "minimum": 1, "maximum": 500},
    },
    response=obj({"entries": {"type": "array"}}),
    admin=True,
)
async def audit(request: web.Request) -> dict:
    query = request[QUERY]
    entries = await request.app[MINIAPPS].audit.get_entries(
        query.get("app_id"), before=query.get("before"), limit=query.get("limit", 100)
    )
    return {
        "entries": [
            {**{k: v for k, v in e.items() if k != "_id"}, "id": e["_id"], "at": iso(e["at"])}
            for e in entries
        ]
    }


@api.post(
    "/api/v1/admin/miniapps/remote",
    status=201,
    summary="Register a remote mini-program (admins); its secret is shown only this once",
    body=obj(
        {"manifest": {"type": "object"}, "endpoint": string(2048, 1)}, ["manifest", "endpoint"]
    ),
    response=obj({"app": APP, "secret": {"type": "string"}}),
    errors=("invalid_manifest", "invalid_field", "app_exists"),
    admin=True,
)
async def register_remote(request: web.Request) -> dict:
    body = request[BODY]
    return await request.app[MINIAPPS].remote.do_register(
        body["manifest"],
        body["endpoint"],
        production=not request.app[CONFIG].development,
    )


@api.post(
    "/api/v1/miniapps/rpc",
    auth=False,
    summary="A remote mini-program calls a capability (signed JSON-RPC, see sdk/PROTOCOL.md)",
    response=obj({"jsonrpc": {"type": "string"}}, extra=True),
    errors=("bad_signature", "expired", "replayed"),
)
async def remote_rpc(request: web.Request) -> dict:
    """Authenticated by the ``X-Aetherial-*`` signature headers, not a bearer token."""
    raw = await request.read()
    return await request.app[MINIAPPS].remote.do_rpc(request.headers, raw)


@api.post(
    "/api/v1/conversations/{conversation_id}/apps/{app_id}/launch",
    summary="Open an app's web view: its URL with a signed launch token (valid 5 minutes)",
    response=obj(
        {"url": {"type": "string"}, "token": {"type": "string"}, "expires_at": {"type": "string"}}
    ),
    errors=("not_a_member", "app_not_installed", "no_webview"),
)
async def launch(request: web.Request) -> dict:
    return await request.app[MINIAPPS].remote.do_launch(
        request[AUTH].user_id, request.match_info["conversation_id"], request.match_info["app_id"]
    )


# --- web-view bridge (sdk/js/bridge.js): the chat client asks on the page's behalf -------------
# Authenticated twice: the user's bearer token and the launch token the web view was opened
# with (which app asks, for whom); see miniapps/host/webviews.py.

LAUNCH_TOKEN = string(4096, 1)
WEBVIEW_ERRORS = ("bad_launch_token", "launch_expired", "app_disabled")


@api.post(
    "/api/v1/webviews/cards",
    status=201,
    summary="Share a web view's card into a chat the user picked and confirmed",
    body=obj(
        {"token": LAUNCH_TOKEN, "conversation_id": string(64, 1), "card": {"type": "object"}},
        ["token", "conversation_id", "card"],
    ),
    response=obj({"message_id": {"type": "string"}, "conversation_id": {"type": "string"}}),
    errors=(*WEBVIEW_ERRORS, "not_a_member", "app_not_installed", "permission_denied"),
)
async def webview_share_card(request: web.Request) -> dict:
    body = request[BODY]
    return await webviews.do_share_card(
        request.app[MINIAPPS], request[AUTH].user_id, body["token"], body["conversation_id"],
        body["card"],
    )  # fmt: skip


@api.post(
    "/api/v1/webviews/contacts",
    summary="The per-app id of a contact the user picked for a web view",
    body=obj({"token": LAUNCH_TOKEN, "user_id": string(64, 1)}, ["token", "user_id"]),
    response=obj({"user_id": {"type": "string"}}),
    errors=(*WEBVIEW_ERRORS, "not_a_contact"),
)
async def webview_pick_contact(request: web.Request) -> dict:
    body = request[BODY]
    return await webviews.do_pick_contact(
        request.app[MINIAPPS], request[AUTH].user_id, body["token"], body["user_id"]
    )


@api.post(
    "/api/v1/webviews/payments",
    status=201,
    summary="A web view asks the user to pay (the client then shows its payment sheet)",
    body=obj(
        {
            "token": LAUNCH_TOKEN,
            "params": {"type": "object"},
            "capture": {"type": "boolean"},
        },
        ["token", "params"],
    ),
    response=obj({"payment_id": {"type": "string"}, "status": {"type": "string"}}),
    errors=(
        *WEBVIEW_ERRORS,
        "not_a_member",
        "app_not_installed",
        "permission_denied",
        "invalid_params",
        "order_ref_reused",
        "holds_unavailable",
    ),
)
async def webview_request_payment(request: web.Request) -> dict:
    """``capture: false`` asks for a hold (``requestHold``): refused with ``holds_unavailable``
    until the wallet can authorise now and capture later."""
    body = request[BODY]
    return await webviews.do_request_payment(
        request.app[MINIAPPS],
        request[AUTH].user_id,
        body["token"],
        body["params"],
        capture=body.get("capture", True),
    )


@api.post(
    "/api/v1/webviews/call",
    summary="A web view's page calls its own app (`Aetherial.call`): the app's `@app.view` "
    "handler answers for this user, in the chat the view was opened from",
    body=obj(
        {
            "token": LAUNCH_TOKEN,
            "name": string(64, 1),
            "params": {"type": "object"},
        },
        ["token", "name"],
    ),
    response=obj({"result": {"type": "object"}}),
    errors=(
        *WEBVIEW_ERRORS,
        "not_a_member",
        "app_not_installed",
        "invalid_params",
        "unknown_view",
        "rate_limited",
        "app_error",
        "timeout",
    ),
)
async def webview_call(request: web.Request) -> dict:
    """A handler refusing with ``ViewError(code, message)`` answers 400 with that code (any
    code the app chose); ``unknown_view`` (404) when the app has no such view; 502/503/504 when
    the app failed, is busy or did not answer in time."""
    body = request[BODY]
    return await webviews.do_call_view(
        request.app[MINIAPPS], request[AUTH].user_id, body["token"], body["name"],
        body.get("params") or {},
    )  # fmt: skip


@api.get(
    "/miniapps/{app_id}/web/{name}",
    auth=False,
    summary="A file of a hosted app's web/ folder: its web view's page, scripts, styles, images",
    # The launch token the page was opened with (~250 characters); bounded well below the
    # request line's limit, so even a percent-encoded one is answered in JSON.
    query={"token": string(512, 1)},
    response_content={"*/*": {"schema": {"type": "string", "format": "binary"}}},
    errors=("not_found",),
)
async def webview_page(request: web.Request) -> web.StreamResponse:
    """Public like the app's code; the page is sent with a strict Content-Security-Policy
    (its own files only, no network, framed only by the chat, sandboxed). ``token`` is the
    launch token the chat opened the page with: the page hands it to nobody, the chat client
    keeps its own copy."""
    path = webviews.get_page_file(
        request.app[MINIAPPS], request.match_info["app_id"], request.match_info["name"]
    )
    return web.FileResponse(path, headers=webviews.PAGE_HEADERS)


# --- app setup: settings and roles (admins) -------------------------------------------------

SETTING = obj(
    {
        "name": {"type": "string"},
        "secret": {"type": "boolean"},
        "description": {"type": "string"},
        "set": {"type": "boolean"},
        "value": {"type": ["string", "null"]},
    }
)
APP_CONFIG = obj({"app_id": {"type": "string"}, "config": {"type": "array", "items": SETTING}})
APP_ROLES = obj({"app_id": {"type": "string"}, "roles": {"type": "array"}})


@api.get(
    "/api/v1/admin/miniapps/{app_id}/config",
    summary="An app's settings (admins): each declared one, whether it is set, and its value "
    "unless it is a secret",
    response=APP_CONFIG,
    errors=("app_not_found",),
    admin=True,
)
async def admin_get_config(request: web.Request) -> dict:
    return await app_config.get_app_config(
        request.app[MINIAPPS].apps_catalogue, request.match_info["app_id"]
    )


@api.route(
    "PUT",
    "/api/v1/admin/miniapps/{app_id}/config",
    summary="Set or clear (null) some of an app's settings (admins; audited without values); "
    "the app sees them from its next invocation",
    body=obj({"values": {"type": "object", "maxProperties": 32}}, ["values"]),
    response=APP_CONFIG,
    errors=("app_not_found", "unknown_setting", "invalid_field"),
    admin=True,
)
async def admin_set_config(request: web.Request) -> dict:
    return await app_config.do_set_config(
        request.app[MINIAPPS].apps_catalogue,
        request.app[MESSAGING],
        request[AUTH].user_id,
        request.match_info["app_id"],
        request[BODY]["values"],
    )


@api.get(
    "/api/v1/admin/miniapps/{app_id}/roles",
    summary="An app's declared roles, each with the people who have it (admins)",
    response=APP_ROLES,
    errors=("app_not_found",),
    admin=True,
)
async def admin_get_roles(request: web.Request) -> dict:
    return await roles.get_roles(
        request.app[MINIAPPS].apps_catalogue, request.app[MESSAGING], request.match_info["app_id"]
    )


@api.post(
    "/api/v1/admin/miniapps/{app_id}/roles/{role}/users/{user_id}",
    summary="Grant a person a role in an app (admins; audited); granting it again is a no-op",
    response=APP_ROLES,
    errors=("app_not_found", "unknown_role", "user_not_found"),
    admin=True,
)
async def admin_grant_role(request: web.Request) -> dict:
    catalogue, messaging = request.app[MINIAPPS].apps_catalogue, request.app[MESSAGING]
    app_id, info = request.match_info["app_id"], request.match_info
    await roles.do_grant_role(
        catalogue, messaging, request[AUTH].user_id, app_id, info["role"], info["user_id"]
    )
    return await roles.get_roles(catalogue, messaging, app_id)


@api.delete(
    "/api/v1/admin/miniapps/{app_id}/roles/{role}/users/{user_id}",
    status=204,
    summary="Take a role in an app back from a person (admins; audited)",
    errors=("app_not_found", "unknown_role", "role_not_granted"),
    admin=True,
)
async def admin_revoke_role(request: web.Request) -> None:
    info = request.match_info
    await roles.do_revoke_role(
        request.app[MINIAPPS].apps_catalogue,
        request.app[MESSAGING],
        request[AUTH].user_id,
        info["app_id"],
        info["role"],
        info["user_id"],
    )
