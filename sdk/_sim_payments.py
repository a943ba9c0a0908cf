"""The simulator's payment service: ``payments.request``/``payments.refund`` with the host's
rules, the user's confirmation or cancellation, and signed ``payment.*`` events.

Mixed into ``sdk.simulator.Simulator``; use it from there::

    result = await sim.command(ann, chat, "/buy mug")        # the app calls request_payment
    payment_id = next(iter(sim.payments))
    await sim.confirm_payment(ann, payment_id)                # ann pays: payment.succeeded
    assert sim.payments[payment_id]["status"] == "paid"
"""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any

from sdk import signing
from sdk._sim_world import SimCall, SimConversation, SimUser
from sdk.app import PAYMENT_EVENTS
from sdk.capabilities import check_refund_terms
from sdk.errors import (
    HostRefused,
    InvalidParams,
    NotFound,
    NotPaid,
    OrderRefReused,
    RefundExceedsPayment,
)

if TYPE_CHECKING:
    from sdk.app import App

# A payment's status (in ``sim.payments``) -> the ``status`` ``payments.request`` answers.
REQUEST_STATUS = {
    "requested": "pending",
    "paid": "paid",
    "cancelled": "cancelled",
    "expired": "expired",
}


class PaymentsMixin:
    """The payment part of the ``Simulator`` (see ``sdk.simulator``)."""

    # provided by the Simulator
    app: App
    app_id: str
    manifest: dict[str, Any]
    secret: str
    _ids: Any
    _users: dict[str, SimUser]
    _conversations: dict[str, SimConversation]

    if TYPE_CHECKING:

        async def _invoke(
            self,
            method: str,
            user: SimUser | None,
            conversation: SimConversation | None,
            params: dict[str, Any],
        ) -> dict: ...

    def _init_payments(self) -> None:
        self._payments: dict[str, dict[str, Any]] = {}
        self._order_refs: dict[str, str] = {}  # order_ref -> payment id (per app)
        self._refund_refs: dict[tuple[str, str], dict[str, Any]] = {}  # (payment, ref) -> refund
        self._balances: dict[tuple[str, str], int] = {}  # (user id, currency) -> minor units
        self.payment_events: list[dict[str, Any]] = []  # every payment.* event sent: name, payload

    @property
    def app_secret(self) -> str:
        """The app's own secret (``secret=`` of the Simulator): it signs payment events, and
        ``ctx.verify_payment_event()`` uses it in the simulator without being given one."""
        return self.secret

    @property
    def payments(self) -> dict[str, dict[str, Any]]:
        """Every payment the app requested, by id: ``{"id", "user" (the user's name),
        "user_id" (per-app), "conversation_id", "amount", "currency", "description",
        "order_ref", "status" (requested | paid | cancelled | expired), "refunded" (total),
        "refunds": [{"id", "amount", "refund_ref"}]}`` (copies)."""
        return copy.deepcopy(self._payments)

    def set_balance(self, user: SimUser, currency: str, amount: int | None) -> None:
        """Give ``user`` a balance of ``amount`` minor units of ``currency`` (None: unlimited,
        the default): ``confirm_payment`` then refuses payments above it
        (``insufficient_funds``), a payment takes from it and a refund gives back."""
        if amount is None:
            self._balances.pop((user.id, currency), None)
        else:
            self._balances[(user.id, currency)] = amount

    def balance(self, user: SimUser, currency: str) -> int | None:
        """``user``'s balance in ``currency`` (None when unlimited: no ``set_balance``)."""
        return self._balances.get((user.id, currency))

    # --- capabilities ---------------------------------------------------------------------

    def _payments_request(self, call: SimCall, params: dict) -> dict:
        # params: checked by sdk.capabilities (amount, currency, trimmed description, order_ref)
        assert call.user is not None  # the capability needs_user
        amount, currency = params["amount"], params["currency"]
        description, order_ref = params["description"], params["order_ref"]
        existing_id = self._order_refs.get(order_ref)
        if existing_id is not None:
            existing = self._payments[existing_id]
            if (existing["user_id"], existing["amount"], existing["currency"]) != (
                call.user.id,
                amount,
                currency,
            ):
                raise OrderRefReused(
                    f"order_ref {order_ref!r} was used for another amount, currency or user"
                )
            return {"payment_id": existing_id, "status": REQUEST_STATUS[existing["status"]]}
        payment_id = f"pay-{next(self._ids)}"
        self._payments[payment_id] = {
            "id": payment_id,
            "user": call.user.name,
            "user_id": call.user.id,
            "conversation_id": call.conversation.id if call.conversation else None,
            "amount": amount,
            "currency": currency,
            "description": description,
            "order_ref": order_ref,
            "status": "requested",
            "refunded": 0,
            "refunds": [],
        }
        self._order_refs[order_ref] = payment_id
        return {"payment_id": payment_id, "status": "pending"}

    def _payments_refund(self, call: SimCall, params: dict) -> dict:
        # The host's order of checks: the payment, its status, the amount, the refund_ref.
        payment_id = params.get("payment_id")
        payment = self._payments.get(payment_id) if isinstance(payment_id, str) else None
        if payment is None:
            raise NotFound("no such payment of this app")
        if payment["status"] != "paid":
            raise NotPaid(f"payment {payment_id} is {payment['status']}, not paid")
        terms = check_refund_terms(params)
        amount, refund_ref = terms["amount"], terms["refund_ref"]
        if refund_ref is not None:  # an idempotency key per payment (none: a new refund)
            previous = self._refund_refs.get((payment["id"], refund_ref))
            if previous is not None:
                if previous["amount"] != amount:
                    raise InvalidParams(f"refund_ref {refund_ref!r} was used for another refund")
                return {"refund_id": previous["id"], "refunded_total": payment["refunded"]}
        if payment["refunded"] + amount > payment["amount"]:
            left = payment["amount"] - payment["refunded"]
            raise RefundExceedsPayment(f"at most {left} more can be refunded on {payment_id}")
        refund = {"id": f"rf-{next(self._ids)}", "amount": amount, "refund_ref": refund_ref}
        payment["refunds"].append(refund)
        payment["refunded"] += amount
        if refund_ref is not None:
            self._refund_refs[(payment["id"], refund_ref)] = refund
        key = (payment["user_id"], payment["currency"])
        if key in self._balances:
            self._balances[key] += amount
        return {"refund_id": refund["id"], "refunded_total": payment["refunded"]}

    # --- what the user (or the clock) does ------------------------------------------------

    def _own_payment(self, user: SimUser | None, payment_id: str) -> dict[str, Any]:
        payment = self._payments.get(payment_id)
        # Like the host: another user's payment is as unknown as a missing one.
        if payment is None or (user is not None and payment["user_id"] != user.id):
            raise HostRefused("payment_not_found", f"no payment {payment_id} for this user")
        return payment

    def _pending_payment(self, user: SimUser | None, payment_id: str) -> dict[str, Any]:
        payment = self._own_payment(user, payment_id)
        if payment["status"] != "requested":
            status = REQUEST_STATUS[payment["status"]]
            raise HostRefused("payment_closed", f"{payment_id} is {status}")
        return payment

    async def confirm_payment(self, user: SimUser, payment_id: str) -> dict[str, Any]:
        """``user`` confirms the payment the app asked of them: it is marked ``paid`` (taken
        from their balance, if ``set_balance`` gave one) and the app gets a signed
        ``payment.succeeded`` event (when it has a handler for it) on behalf of ``user`` in
        the conversation of the request. Returns the event's payload. Confirming a paid payment
        again changes nothing (no second event) and returns the first event's payload. Raises
        ``HostRefused`` (``payment_not_found`` — also for another user's payment,
        ``payment_closed`` — cancelled or expired, ``insufficient_funds`` — the payment then
        stays pending) or ``AppCallError`` when the app's handler fails (the payment stays
        paid)."""
        if self._own_payment(user, payment_id)["status"] == "paid":
            sent = [e for e in self.payment_events if e["payload"]["payment_id"] == payment_id]
            return copy.deepcopy(sent[-1]["payload"])
        payment = self._pending_payment(user, payment_id)
        key = (user.id, payment["currency"])
        if key in self._balances:
            if self._balances[key] < payment["amount"]:
                raise HostRefused("insufficient_funds", f"{user.name} cannot pay {payment_id}")
            self._balances[key] -= payment["amount"]
        payment["status"] = "paid"
        return await self._send_payment_event(payment, "payment.succeeded")

    async def cancel_payment(self, user: SimUser, payment_id: str) -> dict[str, Any]:
        """``user`` declines the payment: it is marked ``cancelled`` and the app gets a signed
        ``payment.failed`` event with ``reason: "cancelled"``. Returns the event's payload;
        raises ``HostRefused`` (``payment_not_found``, ``payment_closed`` — not pending)."""
        payment = self._pending_payment(user, payment_id)
        payment["status"] = "cancelled"
        return await self._send_payment_event(payment, "payment.failed", reason="cancelled")

    async def expire_payment(self, payment_id: str) -> dict[str, Any]:
        """The user let the payment time out: it is marked ``expired`` and the app gets a
        signed ``payment.failed`` event with ``reason: "expired"``. Returns the payload."""
        payment = self._pending_payment(None, payment_id)
        payment["status"] = "expired"
        return await self._send_payment_event(payment, "payment.failed", reason="expired")

    async def _send_payment_event(
        self, payment: dict[str, Any], name: str, *, reason: str | None = None
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "payment_id": payment["id"],
            "order_ref": payment["order_ref"],
            "amount": payment["amount"],
            "currency": payment["currency"],
            "user_id": payment["user_id"],
            "status": PAYMENT_EVENTS[name],
            "at": int(time.time() * 1000),
        }
        if reason is not None:
            payload["reason"] = reason
        payload["signature"] = signing.sign_event(self.secret, payload)
        self.payment_events.append({"name": name, "payload": copy.deepcopy(payload)})
        if name in self.app.events:
            user = self._users.get(payment["user"])
            conversation = self._conversations.get(payment["conversation_id"] or "")
            await self._invoke("event", user, conversation, {"name": name, "payload": payload})
        return copy.deepcopy(payload)
