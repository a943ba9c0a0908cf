"""Remote mini-programs (PROTOCOL.md "Remote mini-programs") and web-view launch tokens.

A remote app runs on its own server: the host POSTs each JSON-RPC request to its endpoint, signed
with the app's secret (``sdk.signing.sign_request``), and the app calls capabilities back through
``POST /api/v1/miniapps/rpc``, signed the same way. ``RemoteApp`` has the same ``call`` interface
as a sandboxed ``AppProcess``, so the host invokes both alike.

Replayed callbacks are refused by a replay guard shared by every node when Redis is configured
(``storage.replay``: one ``SET NX EX`` per callback), in-process otherwise.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from messaging.actions.conversations import check_member
from messaging.context import Messaging
from miniapps.host.catalogue import Catalogue
from miniapps.host.identity import Identity
from miniapps.host.installs import InstallDesk
from miniapps.host.invoker import Serve
from miniapps.host.registry import AppEntry
from miniapps.host.sandbox import AppCallError, CallTimeout, SandboxError
from miniapps.host.store.remote_apps import RemoteApps
from sdk.errors import ManifestError, SignatureError
from sdk.manifest import validate_manifest, webview_page
from sdk.protocol import Peer, RpcError, request_message, result_of
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
            request_message(request_id, method, params), separators=(",", ":")
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
        try:
            return result_of(message)
        except RpcError as exc:
            raise AppCallError(exc.message, exc.code, exc.data) from None


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


class Remote:
    """The host's remote apps: their secrets and transports, registration, the signed callback
    endpoint, and launch tokens for every app's web view."""

    def __init__(
        self,
        messaging: Messaging,
        catalogue: Catalogue,
        installs: InstallDesk,
        identity: Identity,
        serve: Serve,
    ) -> None:
        self.messaging = messaging
        self.catalogue = catalogue
        self.installs = installs
        self.identity = identity
        self.store = RemoteApps(messaging.db)
        # Shared by every node when Redis is configured (see storage.replay).
        self.replays = make_replay_guard(messaging.config.redis_url)
        self._serve = serve
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
        self.catalogue.apps[entry.app_id] = entry
        self._secrets[entry.app_id] = doc["secret"]
        self._endpoints[entry.app_id] = doc["endpoint"]
        self._clients.pop(entry.app_id, None)
        return entry

    async def load(self) -> None:
        """Put every registered remote app in the catalogue (start-up). A stored app whose id is
        now taken by a hosted app is skipped."""
        for doc in await self.store.get_all():
            current = self.catalogue.apps.get(doc["_id"])
            if current is None or current.kind == "remote":
                self._add(doc)

    async def _find(self, app_id: str) -> str | None:
        """The secret of a remote app, from the database when another node registered it."""
        if app_id not in self._secrets:
            doc = await self.store.get_app(app_id)
            current = self.catalogue.apps.get(app_id)
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
        if app_id in self.catalogue.apps or not await self.store.add_app(
            app_id, manifest, endpoint, secret, now_ms()
        ):
            raise AppError("app_exists", f"a mini-program {app_id!r} exists", status=409)
        entry = self._add(
            {"_id": app_id, "manifest": manifest, "endpoint": endpoint, "secret": secret}
        )
        return {"app": {**entry.view(), "endpoint": endpoint}, "secret": secret}

    async def do_rpc(self, headers: Any, body: bytes) -> dict:
        """A capability call from a remote app: verify its signature, then answer it as the
        sandbox answers a hosted app's request (the same ``Peer``)."""
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
        if not isinstance(message, dict) or not isinstance(message.get("method"), str):
            return {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": -32600, "message": "not a JSON-RPC request"},
            }

        async def serve(method: str, params: dict) -> Any:
            return await self._serve(app_id, method, params)

        peer = Peer(_no_send, serve, name=f"remote app {app_id}")
        return await peer.response_to(message.get("id"), message["method"], message.get("params"))

    # --- web views ------------------------------------------------------------------------

    async def launch_secret(self, app_id: str) -> str:
        """An app's own secret: a remote app's registered one; for a hosted app, one derived
        from the host's id key (and given to its process in ``initialize``). It signs launch
        tokens and the host's events to the app (``payment.succeeded`` …)."""
        secret = await self._find(app_id)
        if secret is not None:
            return secret
        return self.identity.hosted_secret(app_id)

    async def do_launch(self, user_id: str, conversation_id: str, app_id: str) -> dict:
        await check_member(self.messaging, conversation_id, user_id)
        entry = await self.catalogue.check_active(app_id, conversation_id)
        webview = entry.manifest.get("webview")
        if not isinstance(webview, dict) or not webview.get("entry"):
            raise AppError("no_webview", "this mini-program has no web view")
        address = webview["entry"]
        if webview_page(entry.manifest) is not None:
            if entry.folder is None:  # a page of its own folder needs a folder: hosted apps
                raise AppError("no_webview", "this mini-program has no web view")
            # A page the gateway serves (``/miniapps/<id>/web/…``): a URL relative to the
            # gateway, which the chat client resolves against its own origin.
            address = f"/miniapps/{app_id}/{address}"
        app_user_id = await self.identity.app_user(app_id, user_id)
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
        separator = "&" if "?" in address else "?"
        return {
            "url": f"{address}{separator}token={token}",
            "token": token,
            "expires_at": iso(exp * 1000),
        }


async def _no_send(message: dict[str, Any]) -> None:
    """Over HTTP each response travels back with its own request (``Peer.response_to``)."""
    raise RuntimeError("a remote app's callbacks are answered in their HTTP responses")
