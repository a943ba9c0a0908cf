"""REST routes: Web Push subscriptions (VAPID)."""

from __future__ import annotations

from gateway.api import Api

api = Api("push", "Web Push subscriptions (VAPID)")
