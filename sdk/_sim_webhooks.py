"""The simulator's inbound webhooks: ``webhooks.url`` answered like the host (``sdk.webhooks``:
the same signed, stateless token, under a key made from ``sim.secret``) and
``sim.post_webhook(url_or_path, body, headers)``, which delivers like the host's
``POST /api/v1/hooks/{token}`` and returns the HTTP status the provider would get::

    url = (await sim.command(alice, chat, "/trip watch"))["text"]   # the app shows its URL
    status = await sim.post_webhook(url, '{"type": "order.updated"}',
                                    {"Content-Type": "application/json"})
    assert status == 200

404 for a token that is not genuine, 410 once the app no longer declares the name or was
removed from the chat (``sim.remove_app(chat)``), 413 past 256 KiB, 400 for a body that is not
UTF-8, 502 when the handler raised or timed out (``sim.webhook_deliveries`` records each
delivery's status and code). There is no rate limit here. Mixed into
``sdk.simulator.Simulator``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from sdk._sim_world import SimCall, SimConversation
from sdk.errors import AppCallError
from sdk.webhooks import (
    WEBHOOK_EVENT,
    WebhookRefused,
    WebhookTarget,
    app_failed,
    check_body,
    check_webhook_name,
    declared,
    gone,
    make_token,
    not_found,
    pick_headers,
    read_token,
    token_of,
    webhook_path,
    webhook_payload,
)

# The platform's public address in the simulator (the host's is its PUBLIC_URL setting).
SIM_PUBLIC_URL = "https://aetherial.test"


class WebhooksMixin:
    """``webhooks.url`` and the deliveries of ``post_webhook``."""

    # provided by the Simulator
    manifest: dict[str, Any]
    app_id: str
    secret: str
    now: int
    _users: dict[str, Any]
    _conversations: dict[str, SimConversation]

    def _init_webhooks(self) -> None:
        # ``webhooks.url`` answers ``public_url`` + path (the host: its PUBLIC_URL setting).
        self.public_url: str = SIM_PUBLIC_URL
        self._removed_from: set[str] = set()  # conversations the app was removed from
        self._webhook_deliveries: list[dict[str, Any]] = []

    @property
    def _webhook_key(self) -> bytes:
        # The host's key is a random platform key; here one made from the app's test secret.
        return hmac.new(self.secret.encode(), b"webhook_urls", hashlib.sha256).digest()

    def _webhooks_url(self, call: SimCall, params: dict) -> dict:
        assert call.conversation is not None and call.user is not None  # needs both
        check_webhook_name(self.manifest, params["name"])
        target = WebhookTarget(self.app_id, params["name"], call.conversation.id, call.user.id)
        path = webhook_path(make_token(self._webhook_key, target))
        return {"url": self.public_url.rstrip("/") + path, "path": path}

    def remove_app(self, conversation: SimConversation) -> None:
        """The app is removed from ``conversation`` (as a group admin would): its webhook URLs
        for that chat answer 410 from now on. (Only webhooks heed it in the simulator.)"""
        self._removed_from.add(conversation.id)

    @property
    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """Every ``post_webhook``: ``{name, status, code}`` (``name`` None when the token was
        not genuine; ``code`` None on success), oldest first."""
        return [dict(d) for d in self._webhook_deliveries]

    async def post_webhook(
        self,
        url_or_path: str,
        body: str | bytes,
        headers: Mapping[str, str] | None = None,
    ) -> int:
        """A provider POSTs ``body`` (text, sent as UTF-8, or raw bytes) with ``headers`` to a
        webhook URL (or its path) the app got from ``ctx.webhook_url``; returns the HTTP status
        the host would answer — 200 once the app's ``webhook.received`` handler returned, 404
        (a token that is not genuine), 410 (the name no longer declared, or the app removed
        from that chat: ``remove_app``), 413 (a body over 256 KiB), 400 (not UTF-8), 502 (the
        handler raised or timed out). The handler runs as the user, in the chat, the URL was
        made for, with ``ctx.payload`` ``{name, body, headers, received_at (sim.now),
        signature}``."""
        raw = body.encode() if isinstance(body, str) else bytes(body)
        record: dict[str, Any] = {"name": None, "status": 200, "code": None}
        self._webhook_deliveries.append(record)
        try:
            target = read_token(self._webhook_key, token_of(url_or_path))
            record["name"] = target.name
            user = next((u for u in self._users.values() if u.id == target.user_id), None)
            conversation = self._conversations.get(target.conversation_id)
            if target.app_id != self.app_id or user is None or conversation is None:
                raise not_found()  # a genuine token names only this app's people and chats
            if target.name not in declared(self.manifest):
                raise gone(f"the app no longer declares {target.name!r}")
            if conversation.id in self._removed_from:
                raise gone("the app is no longer in that conversation")
            text = check_body(raw)
            payload = webhook_payload(
                self.secret, target.name, text, pick_headers((headers or {}).items()), self.now
            )
            try:
                await self._invoke(  # type: ignore[attr-defined]
                    "event", user, conversation, {"name": WEBHOOK_EVENT, "payload": payload}
                )
            except AppCallError as exc:
                raise app_failed(exc.code) from None
        except WebhookRefused as exc:
            record.update(status=exc.status, code=exc.code)
        return record["status"]

    EFFECTS: dict[str, Any] = {}


WebhooksMixin.EFFECTS = {"webhooks.url": WebhooksMixin._webhooks_url}
