"""Mini-programs: the catalogue, a conversation's apps, consents, the audit log."""

from __future__ import annotations

from aiohttp import web

from gateway.api import AUTH, BODY, QUERY, Api
from gateway.keys import CONFIG, MINIAPPS
from gateway.schemas import obj, string
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
