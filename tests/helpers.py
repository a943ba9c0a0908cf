"""Test clients that talk to a running gateway the way a real client does."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
from typing import Any

import aiohttp
import socketio

_counter = itertools.count(1)
PASSWORD = "Correct-horse-9"


class ApiClient:
    """A thin HTTP client for the REST API (one per simulated person or device)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = aiohttp.ClientSession()
        self.token: str | None = None

    async def close(self) -> None:
        await self.session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        headers = dict(headers or {})
        bearer = token if token is not None else self.token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        async with self.session.request(
            method, self.base_url + path, json=json, data=data, headers=headers
        ) as resp:
            body = await resp.json() if resp.content_type == "application/json" else None
            return resp.status, body

    async def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.request("POST", path, **kw)

    async def patch(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.request("PATCH", path, **kw)

    async def delete(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.request("DELETE", path, **kw)

    async def register(self, username: str | None = None, password: str = PASSWORD) -> dict:
        username = username or f"user{next(_counter)}"
        status, body = await self.post(
            "/api/v1/auth/register",
            json={"username": username, "email": f"{username}@example.com", "password": password},
        )
        assert status == 201, body
        return body["user"]

    async def login(self, login: str, password: str = PASSWORD) -> dict:
        status, body = await self.post(
            "/api/v1/auth/login", json={"login": login, "password": password}
        )
        assert status == 200, body
        self.token = body["access_token"]
        return body

    async def signup(self, username: str | None = None) -> dict:
        """Register and log in; returns the login reply (tokens + user)."""
        user = await self.register(username)
        return await self.login(user["username"])


class SocketClient:
    """A Socket.IO client that records every event it receives."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self.connect_error: Any = None
        self._arrived = asyncio.Event()

        @self.sio.on("*")
        async def catch_all(event: str, data: Any = None) -> None:
            self.events.append((event, data))
            self._arrived.set()

        @self.sio.event
        async def connect_error(data: Any) -> None:
            self.connect_error = data

    async def connect(self, base_url: str, token: str | None) -> None:
        auth = {"token": token} if token is not None else None
        await self.sio.connect(base_url, auth=auth, transports=["websocket"], wait_timeout=5)

    async def wait_for(self, event: str, timeout: float = 5.0, count: int = 1) -> list[Any]:
        """Wait until ``count`` events named ``event`` have arrived; return their data."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = [data for name, data in self.events if name == event]
            if len(found) >= count:
                return found
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"no {event!r} within {timeout}s; got {self.events}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def call(self, event: str, data: Any = None, timeout: float = 5.0) -> Any:
        return await self.sio.call(event, data, timeout=timeout)

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


async def eventually(predicate, timeout: float = 10.0, what: str = "condition"):
    """Poll ``predicate`` (a function, or a coroutine function) until it returns something
    truthy; return that, or fail after ``timeout`` seconds (events arrive asynchronously)."""
    for _ in range(int(timeout / 0.02)):
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what} not reached within {timeout}s")
