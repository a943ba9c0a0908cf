"""Duffel's HTTP API, shared by the flights and stays providers and the webhook registration:
``DuffelAPI.call(method, path, payload)`` through an injected ``fetch`` (the shape of the SDK's
``ctx.fetch``, so the app never opens a socket), with Duffel's headers (``Authorization: Bearer``,
``Duffel-Version: v2``) and its ``{"data": …}`` envelope, and every failure as a
``ProviderError(code, message)`` with a stable ``code``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

Fetch = Callable[..., Awaitable[dict[str, Any]]]

DUFFEL_URL = "https://api.duffel.com"
DUFFEL_VERSION = "v2"


class ProviderError(Exception):
    """A provider refused or failed; ``code`` is stable, ``message`` is for people.
    ``offer`` carries the re-priced offer on ``price_changed``."""

    def __init__(self, code: str, message: str, *, offer: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.offer = offer


class DuffelAPI:
    """Duffel's HTTP API through ``fetch`` (the shape of ``ctx.fetch``): ``call(method, path,
    payload)`` → the answer's JSON, or ``ProviderError`` (``timeout`` for a host timeout or a
    408/504; a Duffel error code mapped by ``codes``, else ``provider_error``)."""

    def __init__(
        self,
        fetch: Fetch,
        api_key: str,
        base_url: str = DUFFEL_URL,
        codes: dict[str, str] | None = None,
    ) -> None:
        self._fetch = fetch
        self._api_key = api_key
        self._base = (base_url or DUFFEL_URL).rstrip("/")
        self._codes = codes or {}

    async def call(self, method: str, path: str, payload: Any = None) -> dict[str, Any]:
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Duffel-Version": DUFFEL_VERSION,
            "Accept": "application/json",
        }
        body = None
        if payload is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps({"data": payload})
        try:
            answer = await self._fetch(self._base + path, method=method, headers=headers, body=body)
        except TimeoutError:
            raise ProviderError("timeout", f"{method} {path} timed out") from None
        except Exception as exc:  # ctx.fetch raises HostError with .code ("timeout", ...)
            code = "timeout" if getattr(exc, "code", "") == "timeout" else "provider_error"
            raise ProviderError(code, f"{method} {path}: {exc}") from None
        status = int(answer.get("status") or 0)
        try:
            data = json.loads(answer.get("body") or "null")
        except ValueError:
            data = None
        if status in (408, 504):
            raise ProviderError("timeout", f"{method} {path} timed out at the provider")
        if status == 204:
            return {}
        if not 200 <= status < 300 or not isinstance(data, dict):
            errors = data.get("errors") if isinstance(data, dict) else None
            first = errors[0] if errors and isinstance(errors[0], dict) else {}
            code = self._codes.get(first.get("code", ""), "provider_error")
            message = first.get("message") or first.get("title") or f"HTTP {status}"
            raise ProviderError(code, message)
        return data
