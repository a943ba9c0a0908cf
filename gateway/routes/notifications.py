"""REST routes: the notification center (mentions, replies, requests, calls, money, services)."""

from __future__ import annotations

from gateway.api import Api

api = Api("notifications", "The notification center: what concerns you, in one feed")
