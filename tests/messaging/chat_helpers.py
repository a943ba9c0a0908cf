"""People with a REST client and a connected socket, and chats between them."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from typing import Any

from tests.helpers import ApiClient, SocketClient

_names = itertools.count(1)


@dataclass
class Person:
    api: ApiClient
    socket: SocketClient
    user_id: str
    username: str
    token: str

    async def send(
        self, conversation_id: str, text: str, client_msg_id: str | None = None, **extra: Any
    ) -> dict:
        ack = await self.socket.call(
            "message.send",
            {
                "conversation_id": conversation_id,
                "client_msg_id": client_msg_id or text,
                "text": text,
                **extra,
            },
        )
        assert ack["ok"], ack
        return ack["message"]

    def received(self, event: str = "message.new") -> list[dict]:
        return [data for name, data in self.socket.events if name == event]

    def texts(self, conversation_id: str) -> list[str]:
        return [
            d["message"]["text"]
            for d in self.received()
            if d["message"]["conversation_id"] == conversation_id and d["message"]["type"] == "text"
        ]

    async def connect_device(self) -> SocketClient:
        """Another device of the same person (a fresh login, its own session)."""
        device_api = ApiClient(self.api.base_url)
        tokens = await device_api.login(self.username)
        socket = SocketClient()
        await socket.connect(self.api.base_url, tokens["access_token"])
        await device_api.close()
        return socket

    async def close(self) -> None:
        await self.socket.close()
        await self.api.close()


async def person(base_url: str, name: str | None = None) -> Person:
    api = ApiClient(base_url)
    tokens = await api.signup(name or f"person{next(_names)}")
    socket = SocketClient()
    await socket.connect(base_url, tokens["access_token"])
    return Person(
        api, socket, tokens["user"]["id"], tokens["user"]["username"], tokens["access_token"]
    )


async def people(base_url: str, count: int) -> list[Person]:
    return list(await asyncio.gather(*[person(base_url) for _ in range(count)]))


async def group(owner: Person, members: list[Person], title: str = "Team") -> str:
    status, body = await owner.api.post(
        "/api/v1/conversations",
        json={"type": "group", "title": title, "member_ids": [m.user_id for m in members]},
    )
    assert status == 201, body
    return body["conversation"]["id"]


async def direct(a: Person, b: Person) -> str:
    status, body = await a.api.post(
        "/api/v1/conversations", json={"type": "direct", "user_id": b.user_id}
    )
    assert status in (200, 201), body
    return body["conversation"]["id"]


async def settle(
    everyone: list[Person], conversation_id: str, count: int, timeout: float = 10.0
) -> None:
    """Wait until each person has received ``count`` text messages of the conversation."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if all(len(p.texts(conversation_id)) >= count for p in everyone):
            return
        if asyncio.get_running_loop().time() > deadline:
            got = {p.username: len(p.texts(conversation_id)) for p in everyone}
            raise AssertionError(f"expected {count} messages each, got {got}")
        await asyncio.sleep(0.02)


async def close_all(everyone: list[Person]) -> None:
    await asyncio.gather(*[p.close() for p in everyone])


def app_cards(someone: Person, cid: str, app_id: str) -> list[dict]:
    """``app_id``'s cards in ``cid`` as ``someone`` received them over Socket.IO, each at its
    latest version, in the order they were first posted."""
    latest: dict[str, dict] = {}
    for event, data in someone.socket.events:
        if event not in ("message.new", "message.updated"):
            continue
        message = data["message"]
        if message["conversation_id"] != cid or message.get("app_id") != app_id:
            continue
        if message.get("type") != "card":
            continue
        seen = latest.get(message["id"])
        if seen is None or message.get("version", 0) >= seen.get("version", 0):
            latest[message["id"]] = message
    return list(latest.values())
