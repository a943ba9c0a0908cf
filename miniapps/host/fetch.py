"""``http.fetch``: an app's outbound HTTP, made by the host on its behalf.

Sandboxed apps have no network at all; this is their only way out, and only to the host names
their manifest lists in ``http.allowed_domains`` (exact names). In production a name that
resolves to a loopback, private, link-local or otherwise internal address is refused, so an app
cannot reach our own services through it; the connection then goes to exactly the addresses that
were checked (a resolver pinned to them), so a DNS answer that changes in between (rebinding)
cannot redirect it, while TLS still verifies the certificate for the name. Redirects are not
followed (each hop would need the same checks); bodies are text, at most 1 MiB each way; the
whole call fits in the app's deadline.

Names are resolved on a small thread pool of the host's own (``Resolver``), never the event
loop's default executor that password hashing shares, with a deadline, and with a bound on the
lookups in flight: a slow or hostile DNS answer costs an app its own call, nobody else's.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from sdk.capabilities import check_fetch_target
from sdk.errors import HostError

MAX_BODY = 1 << 20
TIMEOUT = 2.5  # seconds: inside the app's 3 s call deadline
DROPPED_HEADERS = {"host", "connection", "transfer-encoding", "content-length", "upgrade"}
RESOLVE_TIMEOUT = 1.0  # seconds for one name lookup
RESOLVER_THREADS = 4
RESOLVER_MAX_IN_FLIGHT = 16  # lookups started and not finished (a timed-out one still counts)

GetAddrInfo = Callable[..., list]


class Resolver:
    """Name lookups for ``http.fetch`` on threads of their own, each with a deadline.

    A lookup that times out keeps its thread until the system resolver gives up; it still counts
    against ``max_in_flight`` until then, so a flood of hanging names is refused quickly
    (``rate_limited``) instead of queueing behind each other for ever."""

    def __init__(
        self,
        *,
        timeout: float = RESOLVE_TIMEOUT,
        threads: int = RESOLVER_THREADS,
        max_in_flight: int = RESOLVER_MAX_IN_FLIGHT,
        getaddrinfo: GetAddrInfo = socket.getaddrinfo,
    ) -> None:
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="fetch-dns")
        self._timeout = timeout
        self._max_in_flight = max_in_flight
        self._getaddrinfo = getaddrinfo
        self._in_flight = 0
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def _done(self, _future: object) -> None:
        with self._lock:
            self._in_flight -= 1

    async def resolve(self, host: str, port: int) -> list:
        with self._lock:
            if self._in_flight >= self._max_in_flight:
                raise FetchError("rate_limited", "too many name lookups in progress; try again")
            self._in_flight += 1
        try:
            work = self._executor.submit(self._getaddrinfo, host, port, type=socket.SOCK_STREAM)
        except RuntimeError:  # the executor is shut down
            self._done(None)
            raise FetchError("fetch_failed", "the resolver is closed") from None
        # Counted until the lookup ends (or is cancelled before it started), not until we stop
        # waiting for it.
        work.add_done_callback(self._done)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(work), self._timeout)
        except TimeoutError:
            raise FetchError("timeout", f"resolving {host} took too long") from None
        except OSError:
            raise FetchError("fetch_failed", f"cannot resolve {host}") from None

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class FetchError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _clean_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in DROPPED_HEADERS}


class _PinnedResolver(AbstractResolver):
    """Answers only with the addresses that were checked."""

    def __init__(self, results: list[ResolveResult]) -> None:
        self._results = results

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET):
        return [{**r, "port": port} for r in self._results]

    async def close(self) -> None:
        pass


async def _checked_addresses(
    resolver: Resolver, host: str, port: int, allow_internal: bool
) -> list[ResolveResult]:
    infos = await resolver.resolve(host, port)
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


async def fetch(
    manifest: dict, params: dict, *, allow_internal: bool, resolver: Resolver
) -> dict[str, Any]:
    """Make the request an app asked for; ``{"status", "headers", "body"}``. ``params`` are
    already checked against the contract (``sdk.capabilities.check_params``); the target is
    checked against the manifest here."""
    try:
        target = check_fetch_target(manifest, params["url"])
    except HostError as exc:
        raise FetchError(exc.code, exc.message) from None
    url, method, host, port = params["url"], params["method"], target.host, target.port
    headers, body = _clean_headers(params["headers"]), params["body"]
    pinned = _PinnedResolver(await _checked_addresses(resolver, host, port, allow_internal))
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
