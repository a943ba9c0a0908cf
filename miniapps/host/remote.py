"""Remote mini-programs (PROTOCOL.md "Remote mini-programs") and web-view launch tokens.

A remote app runs on its own server: the host POSTs each JSON-RPC request to its endpoint, signed
with the app's secret (``sdk.signing.sign_request``), and the app calls capabilities back through
``POST /api/v1/miniapps/rpc``, signed the same way. ``RemoteApp`` has the same ``call`` interface
as a sandboxed ``AppProcess``, so the host invokes both alike.

Replayed callbacks are refused by a replay guard shared by every node when Redis is configured
(``storage.replay``: one ``SET NX EX`` per callback), in-process otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp

from messaging.actions.conversations import check_member
from miniapps.host.registry import AppEntry
from miniapps.host.sandbox import AppCallError, CallTimeout, SandboxError
from miniapps.host.store.remote_apps import RemoteApps
from sdk.errors import ManifestError, SignatureError
from sdk.manifest import validate_manifest
from sdk.signing import (
    HEADER_APP,
    HEADER_NONCE,
    WINDOW_SECONDS,
    NonceCache,
    make_launch_token,
    sign_request,
    verify_request,
)
from storage.errors import AppError
from storage.mongo import iso, now_ms
from storage.replay import make_replay_guard

if TYPE_CHECKING:
    from miniapps.host.host import MiniappHost

CALL_TIMEOUT = 3.0  # seconds for one host -> app request
RESPONSE_MAX_BYTES = 1024 * 1024
LAUNCH_TTL = 300  # seconds a web-view launch token is valid
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


class RemoteUnreachable(SandboxError):
    """The endpoint could not be reached (connection refused, DNS, TLS …)."""

    code = "remote_unreachable"


class RemoteBadResponse(SandboxError):
    """The endpoint answered, but not with a 200 JSON-RPC response to our request."""

    code = "remote_bad_response"


class RemoteApp:
    """One remote app's transport: ``call`` POSTs a signed JSON-RPC request and returns its
    result (``AppCallError`` for a JSON-RPC error, ``CallTimeout`` after 3 s)."""

    def __init__(
        self,
        app_id: str,
        endpoint: str,
        secret: str,
        session: aiohttp.ClientSession,
        *,
        timeout: float = CALL_TIMEOUT,
    ) -> None:
        self.app_id = app_id
        self.endpoint = endpoint
        self._secret = secret
        self._session = session
        self._timeout = timeout
        self._ids = itertools.count(1)

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        request_id = next(self._ids)
        body = json.dumps(
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params},
            separators=(",", ":"),
        ).encode()
        headers = {
            **sign_request(self._secret, body, app_id=self.app_id),
            "Content-Type": "application/json",
        }
        try:
            async with self._session.post(
                self.endpoint,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            ) as response:
                raw = await response.content.read(RESPONSE_MAX_BYTES + 1)
                status = response.status
        except TimeoutError:
            raise CallTimeout(
                f"{self.app_id} did not answer {method} in {self._timeout} s"
            ) from None
        except aiohttp.ClientError as exc:
            raise RemoteUnreachable(f"{self.app_id}: {exc.__class__.__name__}: {exc}") from None
        if status != 200:
            raise RemoteBadResponse(f"{self.app_id} answered HTTP {status}", status=status)
        if len(raw) > RESPONSE_MAX_BYTES:
            raise RemoteBadResponse(f"{self.app_id}: response larger than 1 MiB")
        try:
            message = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise RemoteBadResponse(f"{self.app_id}: the response is not JSON") from None
        if not isinstance(message, dict) or message.get("id") != request_id:
            raise RemoteBadResponse(f"{self.app_id}: not a JSON-RPC response to our request")
        if "error" in message:
            error = message["error"] if isinstance(message["error"], dict) else {}
            data = error.get("data")
            app_code = data.get("code") if isinstance(data, dict) else None
            raise AppCallError(
                str(error.get("message", "app error"))[:1000],
                str(app_code or "internal_error"),
                data,
            )
        return message.get("result")


def check_endpoint(endpoint: str, *, production: bool) -> str:
    """``https://…``; ``http://127.0.0.1…`` / ``http://localhost…`` too outside production."""
    parts = urlsplit(endpoint)
    local = parts.scheme == "http" and parts.hostname in LOCAL_HOSTS and not production
    if not parts.hostname or not (parts.scheme == "https" or local):
        raise AppError(
            "invalid_field",
            "endpoint must be an https:// URL",
            details={"field": "endpoint"},
        )
    return endpoint


def _rpc_error(code: str, message: str) -> dict[str, Any]:
    number = {"unknown_method": -32601, "invalid_params": -32602}.get(code, -32000)
    return {"code": number, "message": message, "data": {"code": code}}


class Remote:
    """The host's remote apps: their secrets and transports, registration, the signed callback
    endpoint, and launch tokens for every app's web view."""

    def __init__(self, host: MiniappHost, id_key: bytes) -> None:
        self.host = host
        self.store = RemoteApps(host.messaging.db)
        # Shared by every node when Redis is configured (see storage.replay).
        self.replays = make_replay_guard(host.messaging.config.redis_url)
        self._id_key = id_key
        self._secrets: dict[str, str] = {}
        self._endpoints: dict[str, str] = {}
        self._clients: dict[str, RemoteApp] = {}
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        await self.replays.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _add(self, doc: dict[str, Any]) -> AppEntry:
        entry = AppEntry(doc["_id"], None, doc["manifest"], kind="remote")
        self.host.apps[entry.app_id] = entry
        self._secrets[entry.app_id] = doc["secret"]
        self._endpoints[entry.app_id] = doc["endpoint"]
        self._clients.pop(entry.app_id, None)
        return entry

    async def load(self) -> None:
        """Put every registered remote app in the catalogue (start-up). A stored app whose id is
        now taken by a hosted app is skipped."""
        for doc in await self.store.get_all():
            current = self.host.apps.get(doc["_id"])
            if current is None or current.kind == "remote":
                self._add(doc)

    async def _find(self, app_id: str) -> str | None:
        """The secret of a remote app, from the database when another node registered it."""
        if app_id not in self._secrets:
            doc = await self.store.get_app(app_id)
            current = self.host.apps.get(app_id)
            if doc is None or (current is not None and current.kind != "remote"):
                return None
            self._add(doc)
        return self._secrets[app_id]

    def client(self, app_id: str) -> RemoteApp:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        client = self._clients.get(app_id)
        if client is None:
            client = RemoteApp(
                app_id, self._endpoints[app_id], self._secrets[app_id], self._session
            )
            self._clients[app_id] = client
        return client

    async def do_register(self, manifest: Any, endpoint: str, *, production: bool) -> dict:
        try:
            manifest = validate_manifest(manifest)
        except ManifestError as exc:
            message = str(exc)
            raise AppError(
                "invalid_manifest",
                message,
                details={"field": message.split(":", 1)[0]},
            ) from None
        check_endpoint(endpoint, production=production)
        app_id = manifest["id"]
        secret = secrets.token_bytes(32).hex()
        if app_id in self.host.apps or not await self.store.add_app(
            app_id, manifest, endpoint, secret, now_ms()
        ):
            raise AppError("app_exists", f"a mini-program {app_id!r} exists", status=409)
        entry = self._add(
            {"_id": app_id, "manifest": manifest, "endpoint": endpoint, "secret": secret}
        )
        return {"app": {**entry.view(), "endpoint": endpoint}, "secret": secret}

    async def do_rpc(self, headers: Any, body: bytes) -> dict:
        """A capability call from a remote app: verify its signature, then answer it as the
        sandbox answers a hosted app's request."""
        app_id = headers.get(HEADER_APP)
        secret = await self._find(app_id) if isinstance(app_id, str) else None
        try:
            if secret is None:  # same answer as a bad signature: no hint of which apps exist
                raise SignatureError("bad_signature", "the signature does not verify")
            # Signature and time window here; the nonce once across all nodes just below (a
            # throwaway cache keeps verify_request from judging replays on its own).
            verify_request(secret, headers, body, nonce_cache=NonceCache())
            if not await self.replays.first_use(
                f"{app_id}:{headers.get(HEADER_NONCE)}", 2 * WINDOW_SECONDS
            ):
                raise SignatureError("replayed", "this nonce was already used")
        except SignatureError as exc:
            raise AppError(exc.code, exc.message, status=401) from None
        try:
            message = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            message = None
        response: dict[str, Any] = {"jsonrpc": "2.0", "id": None}
        if not isinstance(message, dict) or not isinstance(message.get("method"), str):
            response["error"] = {"code": -32600, "message": "not a JSON-RPC request"}
            return response
        response["id"] = message.get("id")
        params = message.get("params")
        if not isinstance(params, dict):
            response["error"] = _rpc_error("invalid_params", "params must be an object")
            return response
        try:
            response["result"] = await self.host.handle_capability(
                app_id, message["method"], params
            )
        except Exception as exc:
            code = getattr(exc, "code", None)
            if not isinstance(code, str):
                raise
            response["error"] = _rpc_error(code, str(getattr(exc, "message", None) or exc))
        return response

    # --- web views ------------------------------------------------------------------------

    async def launch_secret(self, app_id: str) -> str:
        """An app's own secret: a remote app's registered one; for a hosted app, one derived
        from the host's id key (and given to its process in ``initialize``). It signs launch
        tokens and the host's events to the app (``payment.succeeded`` …)."""
        secret = await self._find(app_id)
        if secret is not None:
            return secret
        return self.hosted_secret(app_id)

    def hosted_secret(self, app_id: str) -> str:
        return hmac.new(self._id_key, f"launch:{app_id}".encode(), hashlib.sha256).hexdigest()

    async def do_launch(self, user_id: str, conversation_id: str, app_id: str) -> dict:
        await check_member(self.host.messaging, conversation_id, user_id)
        entry = self.host.apps.get(app_id)
        if entry is None or not await self.host.installs.is_installed(conversation_id, app_id):
            raise AppError(
                "app_not_installed", "this conversation does not have that app", status=404
            )
        webview = entry.manifest.get("webview")
        if not isinstance(webview, dict) or not webview.get("entry"):
            raise AppError("no_webview", "this mini-program has no web view")
        app_user_id = self.host.app_user_id(app_id, user_id)
        await self.host.app_users.remember(app_user_id, app_id, user_id)
        exp = int(time.time()) + LAUNCH_TTL
        token = make_launch_token(
            await self.launch_secret(app_id),
            {
                "app_id": app_id,
                "user_id": app_user_id,
                "conversation_id": conversation_id,
                "exp": exp,
                "nonce": secrets.token_urlsafe(16),
            },
        )
        separator = "&" if "?" in webview["entry"] else "?"
        return {
            "url": f"{webview['entry']}{separator}token={token}",
            "token": token,
            "expires_at": iso(exp * 1000),
        }
