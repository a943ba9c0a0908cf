"""``http.fetch``: an app's outbound HTTP, made by the host on its behalf.

Sandboxed apps have no network at all; this is their only way out, and only to the host names
their manifest lists in ``http.allowed_domains`` (exact names). In production a name that
resolves to a loopback, private, link-local or otherwise internal address is refused, so an app
cannot reach our own services through it; the connection then goes to exactly the addresses that
were checked (a resolver pinned to them), so a DNS answer that changes in between (rebinding)
cannot redirect it, while TLS still verifies the certificate for the name. Redirects are not
followed (each hop would need the same checks); bodies are text, at most 1 MiB each way; the
whole call fits in the app's deadline.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

MAX_BODY = 1 << 20
TIMEOUT = 2.5  # seconds: inside the app's 3 s call deadline
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}
DROPPED_HEADERS = {"host", "connection", "transfer-encoding", "content-length", "upgrade"}


class FetchError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _check_request(manifest: dict, params: dict) -> tuple[str, str, str, dict, str | None]:
    url, method = params.get("url"), str(params.get("method") or "GET").upper()
    if not isinstance(url, str) or len(url) > 2048:
        raise FetchError("invalid_params", "url must be a string of at most 2048 characters")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in {"https", "http"} or not host:
        raise FetchError("invalid_params", "url must be an http(s) URL")
    allowed = manifest.get("http", {}).get("allowed_domains", [])
    if host not in allowed:
        raise FetchError("permission_denied", f"{host} is not in this app's http.allowed_domains")
    if method not in METHODS:
        raise FetchError("invalid_params", f"method must be one of {sorted(METHODS)}")
    headers = params.get("headers") or {}
    if (
        not isinstance(headers, dict)
        or len(headers) > 50
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    ):
        raise FetchError("invalid_params", "headers must be at most 50 string pairs")
    body = params.get("body")
    if body is not None and (not isinstance(body, str) or len(body.encode()) > MAX_BODY):
        raise FetchError("invalid_params", "body must be text of at most 1 MiB")
    clean = {k: v for k, v in headers.items() if k.lower() not in DROPPED_HEADERS}
    return url, method, host, clean, body


class _PinnedResolver(AbstractResolver):
    """Answers only with the addresses that were checked."""

    def __init__(self, results: list[ResolveResult]) -> None:
        self._results = results

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET):
        return [{**r, "port": port} for r in self._results]

    async def close(self) -> None:
        pass


async def _checked_addresses(host: str, port: int, allow_internal: bool) -> list[ResolveResult]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise FetchError("fetch_failed", f"cannot resolve {host}") from None
    results: list[ResolveResult] = []
    for family, _type, proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if not allow_internal and not address.is_global:
            raise FetchError("permission_denied", f"{host} resolves to an internal address")
        results.append(
            {
                "hostname": host,
                "host": str(address),
                "port": port,
                "family": family,
                "proto": proto,
                "flags": socket.AI_NUMERICHOST,
            }
        )
    return results


async def fetch(manifest: dict, params: dict, *, allow_internal: bool) -> dict[str, Any]:
    """Make the request an app asked for; ``{"status", "headers", "body"}``."""
    url, method, host, headers, body = _check_request(manifest, params)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    pinned = _PinnedResolver(await _checked_addresses(host, port, allow_internal))
    try:
        async with (
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=pinned, force_close=True)
            ) as session,
            session.request(
                method,
                url,
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=TIMEOUT),
            ) as response,
        ):
            raw = await response.content.read(MAX_BODY + 1)
            if len(raw) > MAX_BODY:
                raise FetchError("quota_exceeded", "the response is larger than 1 MiB")
            return {
                "status": response.status,
                "headers": {k: v for k, v in response.headers.items()},
                "body": raw.decode("utf-8", errors="replace"),
            }
    except TimeoutError:
        raise FetchError("timeout", f"{host} did not answer within {TIMEOUT} s") from None
    except aiohttp.ClientError as exc:
        raise FetchError(
            "fetch_failed", f"the request to {host} failed: {type(exc).__name__}"
        ) from None
