"""Consent: a user's answer per (app, scope), asked by the host, recorded, revocable.

A capability that needs a scope the user has not answered yet asks their devices
(``miniapp.consent_required``) and waits briefly for the first answer; a refused or unanswered
scope gives the app ``scope_denied``, never data.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from messaging.context import Messaging
from messaging.events import event
from miniapps.host.calls import Call
from miniapps.host.catalogue import Catalogue
from miniapps.host.store.consents import Consents
from sdk.capabilities import SCOPES
from sdk.errors import ScopeDenied
from storage.errors import AppError
from storage.mongo import now_ms

log = logging.getLogger(__name__)

# Told of every answer: (user_id, app_id, scope, granted) — the host's subscription events.
AnswerListener = Callable[[str, str, str, bool], Awaitable[None]]

CONSENT_WAIT = 2.0  # seconds a capability waits for the user's first answer to a scope


class ConsentDesk:
    def __init__(self, messaging: Messaging, catalogue: Catalogue, consents: Consents) -> None:
        self.messaging = messaging
        self.catalogue = catalogue
        self.consents = consents
        self._waiters: dict[tuple[str, str, str], asyncio.Event] = {}
        self.listeners: list[AnswerListener] = []

    def check_consent(self, app_id: object, scope: object) -> None:
        self.catalogue.check_app(app_id)
        if scope not in SCOPES:
            raise AppError("invalid_field", "unknown scope", details={"field": "scope"})

    async def do_consent(self, user_id: str, app_id: str, scope: str, granted: bool) -> None:
        self.check_consent(app_id, scope)
        await self.consents.set_answer(user_id, app_id, scope, granted, now_ms())
        waiter = self._waiters.get((user_id, app_id, scope))
        if waiter is not None:
            waiter.set()
        for listener in self.listeners:
            try:
                await listener(user_id, app_id, scope, granted)
            except Exception:  # the answer is recorded; telling the app is best effort
                log.exception("consent listener failed for %s/%s", app_id, scope)

    async def ask(self, user_id: str, app_id: str, scope: str) -> None:
        """Show the user's devices the consent sheet for ``scope`` (``miniapp.consent_required``);
        they answer with ``miniapp.consent``."""
        await self.messaging.events.emit(
            event(
                "miniapp.consent_required",
                {"user": user_id},
                {
                    "app_id": app_id,
                    "app_name": self.catalogue.apps[app_id].manifest["name"],
                    "scope": scope,
                },
            )
        )

    async def check_scope(self, call: Call, scope: str) -> None:
        answer = await self.consents.get_answer(call.user_id, call.app_id, scope)
        if answer is None:
            key = (call.user_id, call.app_id, scope)
            waiter = self._waiters.setdefault(key, asyncio.Event())
            await self.ask(call.user_id, call.app_id, scope)
            try:
                await asyncio.wait_for(waiter.wait(), CONSENT_WAIT)
            except TimeoutError:
                pass
            finally:
                self._waiters.pop(key, None)
            answer = await self.consents.get_answer(call.user_id, call.app_id, scope)
        if not answer:
            raise ScopeDenied(f"the user has not granted {scope}")

    async def check_opted_in(self, user_id: str, app_id: str) -> None:
        """Notifications reach only users who opted in; a send asks nobody (the app asks with
        ``notifications.request_subscription``, from a user's own command or press)."""
        if not await self.consents.get_answer(user_id, app_id, "notifications"):
            raise ScopeDenied("the user has not opted in to this app's notifications")
