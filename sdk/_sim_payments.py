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
from datetime import UTC, datetime, timedelta
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
    host_error,
)

if TYPE_CHECKING:
    from sdk.app import App

# A payment's status (in ``sim.payments``) -> the ``status`` ``payments.request`` answers.
REQUEST_STATUS = {
    "requested": "pending",
    "paid": "paid",
    "cancelled": "cancelled",
    "expired": "expired",
    "authorized": "authorized",
    "voided": "voided",
}
HOLD_EXPIRY_S = 7 * 86400  # the host's default HOLD_EXPIRY


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
        self._merchant: dict[str, int] = {}  # currency -> the app's merchant balance
        self._fees: dict[str, tuple[int, int]] = {}  # currency -> (basis points, fixed)
        self._payouts: dict[str, dict[str, Any]] = {}  # payout_ref -> payout
        self._queued_events: list[tuple[dict[str, Any], str, dict[str, Any]]] = []
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
        "order_ref", "status" (requested | paid | cancelled | expired | authorized | voided),
        "kind" (payment | transfer_request; a transfer request's payee: "to_user_id"),
        "capture" (False: a hold), "captured" (what a capture took, else None), "refunded"
        (total), "refunds": [{"id", "amount", "refund_ref"}]}`` (copies)."""
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
            if (
                existing["user_id"],
                existing["amount"],
                existing["currency"],
                existing["capture"],
                existing["kind"],
            ) != (call.user.id, amount, currency, params.get("capture", True), "payment"):
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
            "kind": "payment",
            "to_user_id": None,
            "capture": params.get("capture", True),
            "captured": None,
            "refunded": 0,
            "refunds": [],
        }
        self._order_refs[order_ref] = payment_id
        return {"payment_id": payment_id, "status": "pending"}

    def _payments_refund(self, call: SimCall, params: dict) -> dict:
        # The host's order of checks: the payment, its status, the amount, the refund_ref.
        payment_id = params.get("payment_id")
        payment = self._payments.get(payment_id) if isinstance(payment_id, str) else None
        if payment is None or payment["kind"] == "transfer_request":
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
        paid = payment["captured"] or payment["amount"]  # a captured hold: what was taken
        if payment["refunded"] + amount > paid:
            left = paid - payment["refunded"]
            raise RefundExceedsPayment(f"at most {left} more can be refunded on {payment_id}")
        refund = {"id": f"rf-{next(self._ids)}", "amount": amount, "refund_ref": refund_ref}
        payment["refunds"].append(refund)
        payment["refunded"] += amount
        if refund_ref is not None:
            self._refund_refs[(payment["id"], refund_ref)] = refund
        self._merchant[payment["currency"]] = self.merchant_balance(payment["currency"]) - amount
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
        if self._own_payment(user, payment_id)["status"] in ("paid", "authorized"):
            sent = [e for e in self.payment_events if e["payload"]["payment_id"] == payment_id]
            return copy.deepcopy(sent[0]["payload"])
        payment = self._pending_payment(user, payment_id)
        key = (user.id, payment["currency"])
        if key in self._balances:
            if self._balances[key] < payment["amount"]:
                raise HostRefused("insufficient_funds", f"{user.name} cannot pay {payment_id}")
            self._balances[key] -= payment["amount"]
        if not payment["capture"]:  # a hold: the app captures or voids it later
            payment["status"] = "authorized"
            expires = datetime.now(UTC) + timedelta(seconds=HOLD_EXPIRY_S)
            return await self._send_payment_event(
                payment,
                "payment.authorized",
                extra={"hold_expires_at": expires.isoformat(timespec="milliseconds")},
            )
        payment["status"] = "paid"
        currency = payment["currency"]
        if payment["kind"] == "transfer_request":  # person to person
            payee = (payment["to_user_id"], currency)
            if payee in self._balances:
                self._balances[payee] += payment["amount"]
            return await self._send_payment_event(
                payment, "transfer_request.paid", extra=self._transfer_extra(payment)
            )
        self._merchant[currency] = self.merchant_balance(currency) + payment["amount"]
        return await self._send_payment_event(payment, "payment.succeeded")

    async def cancel_payment(self, user: SimUser, payment_id: str) -> dict[str, Any]:
        """``user`` declines the payment: it is marked ``cancelled`` and the app gets a signed
        ``payment.failed`` event with ``reason: "cancelled"``. Returns the event's payload;
        raises ``HostRefused`` (``payment_not_found``, ``payment_closed`` — not pending)."""
        payment = self._pending_payment(user, payment_id)
        payment["status"] = "cancelled"
        if payment["kind"] == "transfer_request":
            return await self._send_payment_event(
                payment, "transfer_request.declined", extra=self._transfer_extra(payment)
            )
        return await self._send_payment_event(payment, "payment.failed", reason="cancelled")

    async def expire_payment(self, payment_id: str) -> dict[str, Any]:
        """The user let the payment time out: it is marked ``expired`` and the app gets a
        signed ``payment.failed`` event with ``reason: "expired"``. Returns the payload."""
        payment = self._pending_payment(None, payment_id)
        payment["status"] = "expired"
        if payment["kind"] == "transfer_request":
            return await self._send_payment_event(
                payment, "transfer_request.expired", extra=self._transfer_extra(payment)
            )
        return await self._send_payment_event(payment, "payment.failed", reason="expired")

    async def _send_payment_event(
        self,
        payment: dict[str, Any],
        name: str,
        *,
        reason: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        payload = self._record_payment_event(payment, name, reason=reason, extra=extra)
        await self._deliver_payment_event(payment, name, payload)
        return copy.deepcopy(payload)

    def _record_payment_event(
        self,
        payment: dict[str, Any],
        name: str,
        *,
        reason: str | None = None,
        extra: dict[str, Any] | None = None,
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
        payload.update(extra or {})
        payload["signature"] = signing.sign_event(self.secret, payload)
        self.payment_events.append({"name": name, "payload": copy.deepcopy(payload)})
        return payload

    async def _deliver_payment_event(
        self, payment: dict[str, Any], name: str, payload: dict[str, Any]
    ) -> None:
        if name in self.app.events:
            user = self._users.get(payment["user"])
            conversation = self._conversations.get(payment["conversation_id"] or "")
            await self._invoke("event", user, conversation, {"name": name, "payload": payload})

    def _queue_payment_event(self, payment: dict[str, Any], name: str, **kw: Any) -> None:
        # Like the host, which delivers them in the background: an event a capability call
        # causes (payment.captured / .voided) reaches the app after that call, when the test
        # runs ``deliver_payment_events``.
        payload = self._record_payment_event(payment, name, **kw)
        self._queued_events.append((payment, name, payload))

    async def deliver_payment_events(self) -> list[dict[str, Any]]:
        """Deliver the ``payment.captured`` / ``payment.voided`` events the app's own
        ``payments.capture`` / ``payments.void`` calls caused (the host sends them in the
        background, after the call) to its handlers; returns their payloads."""
        queued, self._queued_events = self._queued_events, []
        for payment, name, payload in queued:
            await self._deliver_payment_event(payment, name, payload)
        return [copy.deepcopy(payload) for _, _, payload in queued]

    # --- holds, payouts and fees (service money) -------------------------------------------

    def merchant_balance(self, currency: str) -> int:
        """The app's merchant balance in ``currency``: what its payments and captures brought
        in, less refunds and payouts (and the platform's fees)."""
        return self._merchant.get(currency, 0)

    def set_merchant_balance(self, currency: str, amount: int) -> None:
        """Give the app a merchant balance (e.g. to test ``payout`` without selling first)."""
        self._merchant[currency] = amount

    def set_fee(self, currency: str, basis_points: int = 0, fixed: int = 0) -> None:
        """The platform's fee on the app's captures and payouts in ``currency``, as an admin
        would set it on the host: ``fixed + amount * basis_points // 10000``, at most the
        amount."""
        self._fees[currency] = (basis_points, fixed)

    @property
    def payouts(self) -> dict[str, dict[str, Any]]:
        """Every payout the app made, by ``payout_ref``: ``{"payout_id", "user_id", "amount",
        "fee", "currency"}`` (copies)."""
        return copy.deepcopy(self._payouts)

    def _fee(self, currency: str, amount: int) -> int:
        bps, fixed = self._fees.get(currency, (0, 0))
        return min(amount, fixed + amount * bps // 10_000)

    def _app_payment(self, payment_id: object) -> dict[str, Any]:
        payment = self._payments.get(payment_id) if isinstance(payment_id, str) else None
        if payment is None:
            raise NotFound("no such payment of this app")
        return payment

    def _not_authorized(self, payment: dict[str, Any]) -> Exception:
        status = REQUEST_STATUS[payment["status"]]
        return host_error("not_authorized", f"{payment['id']} is {status}, not an authorized hold")

    def _payments_capture(self, call: SimCall, params: dict) -> dict:
        # The host's order of checks: the payment, its status, the amount.
        payment = self._app_payment(params.get("payment_id"))
        settled = payment.get("settle") or {}
        if payment["status"] != "authorized" and settled.get("kind") != "capture":
            raise self._not_authorized(payment)
        amount = params.get("amount") or payment["amount"]
        if amount > payment["amount"]:
            raise host_error("capture_exceeds_hold", f"at most {payment['amount']} can be captured")
        if payment["status"] != "authorized":  # a retry of the same capture answers again
            if settled["amount"] != amount:
                raise self._not_authorized(payment)
            return self._capture_result(payment)
        currency = payment["currency"]
        fee = self._fee(currency, amount)
        payment.update(status="paid", captured=amount)
        payment["settle"] = {"kind": "capture", "amount": amount, "fee": fee}
        self._merchant[currency] = self.merchant_balance(currency) + amount - fee
        self._give_back(payment, payment["amount"] - amount)
        self._queue_payment_event(
            payment, "payment.captured", extra={"captured": amount, "fee": fee}
        )
        return self._capture_result(payment)

    def _capture_result(self, payment: dict[str, Any]) -> dict[str, Any]:
        settle = payment["settle"]
        return {
            "payment_id": payment["id"],
            "status": "paid",
            "captured": settle["amount"],
            "fee": settle["fee"],
            "released": payment["amount"] - settle["amount"],
        }

    def _give_back(self, payment: dict[str, Any], amount: int) -> None:
        key = (payment["user_id"], payment["currency"])
        if key in self._balances:
            self._balances[key] += amount

    def _payments_void(self, call: SimCall, params: dict) -> dict:
        payment = self._app_payment(params.get("payment_id"))
        if payment["status"] == "authorized":
            self._void(payment)
            self._queue_payment_event(payment, "payment.voided", extra={"reason": "voided"})
        elif payment["status"] != "voided":
            raise self._not_authorized(payment)
        return {"payment_id": payment["id"], "status": "voided", "released": payment["amount"]}

    def _void(self, payment: dict[str, Any]) -> None:
        payment["status"] = "voided"
        payment["settle"] = {"kind": "void"}
        self._give_back(payment, payment["amount"])

    async def expire_hold(self, payment_id: str) -> dict[str, Any]:
        """The hold's time ran out (HOLD_EXPIRY, 7 days on the host) before the app captured
        it: it is voided, the money goes back to the user and the app gets a signed
        ``payment.voided`` with ``reason: "expired"``. Returns the payload; raises
        ``HostRefused`` (``payment_not_found``, ``payment_closed`` — not an authorized hold)."""
        payment = self._own_payment(None, payment_id)
        if payment["status"] != "authorized":
            status = REQUEST_STATUS[payment["status"]]
            raise HostRefused("payment_closed", f"{payment_id} is {status}")
        self._void(payment)
        return await self._send_payment_event(
            payment, "payment.voided", extra={"reason": "expired"}
        )

    def _payments_payout(self, call: SimCall, params: dict) -> dict:
        user = next((u for u in self._users.values() if u.id == params["user_id"]), None)
        if user is None:
            raise NotFound("this app knows no such user")
        amount, currency, ref = params["amount"], params["currency"], params["payout_ref"]
        previous = self._payouts.get(ref)
        if previous is not None:
            if (previous["user_id"], previous["amount"], previous["currency"]) != (
                user.id,
                amount,
                currency,
            ):
                raise host_error("payout_ref_reused", f"payout_ref {ref!r} named another payout")
            return self._payout_result(previous)
        if self.merchant_balance(currency) < amount:
            raise host_error(
                "insufficient_merchant_funds",
                f"the merchant balance ({self.merchant_balance(currency)}) does not cover {amount}",
            )
        fee = self._fee(currency, amount)
        payout = {
            "payout_id": f"po-{next(self._ids)}",
            "user_id": user.id,
            "amount": amount,
            "fee": fee,
            "currency": currency,
        }
        self._payouts[ref] = payout
        self._merchant[currency] = self.merchant_balance(currency) - amount
        key = (user.id, currency)
        if key in self._balances:
            self._balances[key] += amount - fee
        return self._payout_result(payout)

    @staticmethod
    def _payout_result(payout: dict[str, Any]) -> dict[str, Any]:
        return {
            "payout_id": payout["payout_id"],
            "status": "sent",
            "amount": payout["amount"],
            "fee": payout["fee"],
            "currency": payout["currency"],
        }

    # --- transfer requests -----------------------------------------------------------------

    @staticmethod
    def _transfer_extra(payment: dict[str, Any]) -> dict[str, Any]:
        return {"to_user_id": payment["to_user_id"], "transfer_ref": payment["order_ref"]}

    def _payments_request_transfer(self, call: SimCall, params: dict) -> dict:
        by_id = {u.id: u for u in self._users.values()}
        payer, payee = by_id.get(params["from_user_id"]), by_id.get(params["to_user_id"])
        if payer is None or payee is None:
            raise NotFound("this app knows no such user")
        if payer.id == payee.id:
            raise host_error("same_user", "a transfer request needs two different people")
        amount, currency, ref = params["amount"], params["currency"], params["transfer_ref"]
        note = " ".join((params.get("note") or "").split())
        existing_id = self._order_refs.get(ref)
        if existing_id is not None:
            existing = self._payments[existing_id]
            same = (payer.id, payee.id, amount, currency, "transfer_request")
            if (
                existing["user_id"],
                existing["to_user_id"],
                existing["amount"],
                existing["currency"],
                existing["kind"],
            ) != same:
                raise host_error("transfer_ref_reused", f"transfer_ref {ref!r} named another")
            return {"payment_id": existing_id, "status": REQUEST_STATUS[existing["status"]]}
        payment_id = f"pay-{next(self._ids)}"
        self._payments[payment_id] = {
            "id": payment_id,
            "user": payer.name,
            "user_id": payer.id,
            "conversation_id": call.conversation.id if call.conversation else None,
            "amount": amount,
            "currency": currency,
            "description": note or "Transfer request",
            "order_ref": ref,
            "status": "requested",
            "kind": "transfer_request",
            "to_user_id": payee.id,
            "note": note,
            "capture": True,
            "captured": None,
            "refunded": 0,
            "refunds": [],
        }
        self._order_refs[ref] = payment_id
        return {"payment_id": payment_id, "status": "pending"}


# The service-money effects, registered in ``sdk._sim_effects.EFFECTS``.
EFFECTS = {
    "payments.capture": PaymentsMixin._payments_capture,
    "payments.void": PaymentsMixin._payments_void,
    "payments.payout": PaymentsMixin._payments_payout,
    "payments.request_transfer": PaymentsMixin._payments_request_transfer,
}
