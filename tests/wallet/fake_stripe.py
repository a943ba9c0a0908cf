"""A local stand-in for Stripe's API and its webhook deliveries, so tests run offline while the
real ``stripe`` library speaks real HTTP.

``FakeStripe().app`` serves the PaymentIntents subset the server uses, the way Stripe does:
form-encoded bodies (``metadata[user_id]=…``), ``Authorization: Bearer sk_test_…``, the
``Idempotency-Key`` header (a replay returns the first response; the same key with other
parameters is an ``idempotency_error``), and Stripe's error JSON ``{"error": {type, message}}``.
``signed_delivery`` builds what Stripe POSTs to a webhook endpoint, signed like Stripe signs it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from typing import Any

from aiohttp import web

_BRACKETS = re.compile(r"\[([^\]]*)\]")


def parse_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding back into nested values: ``a[b]=1`` → ``{"a": {"b": "1"}}``,
    ``a[0]=x`` → ``{"a": ["x"]}`` (values stay strings, as on the wire)."""
    parsed: dict[str, Any] = {}
    for raw_key, value in pairs:
        head = raw_key.split("[", 1)[0]
        path = [head, *_BRACKETS.findall(raw_key[len(head) :])]
        node = parsed
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return _lists(parsed)


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        if value and all(k.isdigit() for k in value):
            return [_lists(value[k]) for k in sorted(value, key=int)]
        return {k: _lists(v) for k, v in value.items()}
    return value


def stripe_error(status: int, kind: str, message: str, **extra: Any) -> web.Response:
    return web.json_response(
        {"error": {"type": kind, "message": message, **extra}},
        status=status,
        headers={"Request-Id": "req_" + secrets.token_hex(7)},
    )


class FakeStripe:
    """The PaymentIntents API subset, in memory. Inspect ``payment_intents`` and ``requests``."""

    def __init__(self, api_key_prefix: str = "sk_test_") -> None:
        self.api_key_prefix = api_key_prefix
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}  # the charge of each succeeded intent
        self.disputes: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []  # every request: method, path, headers, params
        self._replays: dict[str, tuple[dict[str, Any], int, dict[str, Any]]] = {}
        self.app = web.Application()
        self.app.router.add_post("/v1/payment_intents", self._create)
        self.app.router.add_get("/v1/payment_intents/{intent}", self._retrieve)

    @property
    def created(self) -> list[dict[str, Any]]:
        """Every PaymentIntent created (a replayed request creates none)."""
        return list(self.payment_intents.values())

    def _authorized(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if not header:
            return stripe_error(
                401,
                "invalid_request_error",
                "You did not provide an API key. Provide it in the Authorization header "
                "(i.e. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        if scheme != "Bearer" or not key.startswith(self.api_key_prefix):
            masked = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:]
            return stripe_error(401, "invalid_request_error", f"Invalid API Key provided: {masked}")
        return None

    async def _create(self, request: web.Request) -> web.Response:
        params = parse_form(list((await request.post()).items()))
        key = request.headers.get("Idempotency-Key")
        self.requests.append(
            {"method": "POST", "path": request.path, "headers": dict(request.headers),
             "params": params}
        )  # fmt: skip
        refused = self._authorized(request)
        if refused is not None:
            return refused
        if request.content_type != "application/x-www-form-urlencoded":
            return stripe_error(400, "invalid_request_error", "Invalid request body encoding.")
        if key:
            # No await between this check and the store below: concurrent requests with one
            # key get one PaymentIntent, as Stripe guarantees.
            replay = self._replays.get(key)
            if replay is not None:
                first_params, status, body = replay
                if first_params != params:
                    return stripe_error(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with.",
                    )
                return web.json_response(
                    body, status=status, headers={"Idempotent-Replayed": "true"}
                )
        status, body = self._create_intent(params)
        if key:
            self._replays[key] = (params, status, body)
        return web.json_response(body, status=status)

    def _create_intent(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        for name in ("amount", "currency"):
            if name not in params:
                return 400, {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "parameter_missing",
                        "param": name,
                        "message": f"Missing required param: {name}.",
                    }
                }
        amount, currency = params["amount"], params["currency"]
        if not amount.isdigit() or int(amount) < 1:
            return 400, {
                "error": {
                    "type": "invalid_request_error",
                    "code": "parameter_invalid_integer",
                    "param": "amount",
                    "message": "Invalid integer: " + amount,
                }
            }
        if int(amount) > 99_999_999:
            return 400, {
                "error": {
                    "type": "invalid_request_error",
                    "code": "amount_too_large",
                    "param": "amount",
                    "message": "Amount must be no more than 999,999.99",
                }
            }
        if not re.fullmatch(r"[a-z]{3}", currency):
            return 400, {
                "error": {
                    "type": "invalid_request_error",
                    "code": "parameter_invalid_string",
                    "param": "currency",
                    "message": f"Invalid currency: {currency}.",
                }
            }
        intent_id = "pi_" + secrets.token_hex(12)
        methods = params.get("payment_method_types") or ["card"]
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": int(amount),
            "amount_received": 0,
            "currency": currency,
            "status": "requires_payment_method",
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(12)}",
            "metadata": params.get("metadata", {}),
            "description": params.get("description"),
            "automatic_payment_methods": (
                {"enabled": params["automatic_payment_methods"].get("enabled") == "true"}
                if "automatic_payment_methods" in params
                else None
            ),
            "payment_method_types": methods,
            "last_payment_error": None,
            "livemode": False,
            "created": int(time.time()),
        }
        self.payment_intents[intent_id] = intent
        return 200, intent

    async def _retrieve(self, request: web.Request) -> web.Response:
        self.requests.append(
            {"method": "GET", "path": request.path, "headers": dict(request.headers),
             "params": dict(request.query)}
        )  # fmt: skip
        refused = self._authorized(request)
        if refused is not None:
            return refused
        intent = self.payment_intents.get(request.match_info["intent"])
        if intent is None:
            return stripe_error(
                404,
                "invalid_request_error",
                f"No such payment_intent: '{request.match_info['intent']}'",
                code="resource_missing",
                param="intent",
            )
        return web.json_response(intent)

    # --- what the customer and Stripe do next ---------------------------------------------------

    def succeed(self, intent_id: str, amount_received: int | None = None) -> dict[str, Any]:
        """The customer paid: the PaymentIntent succeeds; returns its
        ``payment_intent.succeeded`` event."""
        intent = self.payment_intents[intent_id]
        intent["status"] = "succeeded"
        intent["amount_received"] = intent["amount"] if amount_received is None else amount_received
        charge_id = "ch_" + secrets.token_hex(12)
        intent["latest_charge"] = charge_id
        self.charges[charge_id] = {
            "id": charge_id,
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": intent["amount_received"],
            "amount_refunded": 0,
            "currency": intent["currency"],
            "payment_intent": intent_id,
            "paid": True,
            "refunded": False,
            "disputed": False,
            "status": "succeeded",
            "livemode": False,
        }
        return event("payment_intent.succeeded", intent)

    def refund(self, intent_id: str, amount: int | None = None) -> dict[str, Any]:
        """Refund (part of) the intent's charge, as from the Dashboard; returns the
        ``charge.refunded`` event (``amount_refunded`` is the cumulative total)."""
        charge = self.charges[self.payment_intents[intent_id]["latest_charge"]]
        left = charge["amount_captured"] - charge["amount_refunded"]
        charge["amount_refunded"] += left if amount is None else amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
        return event("charge.refunded", charge)

    def dispute(
        self, intent_id: str, amount: int | None = None, *, status: str = "needs_response"
    ) -> dict[str, Any]:
        """The cardholder disputes the charge: returns ``charge.dispute.created``."""
        charge = self.charges[self.payment_intents[intent_id]["latest_charge"]]
        charge["disputed"] = True
        dispute_id = "dp_" + secrets.token_hex(12)
        self.disputes[dispute_id] = {
            "id": dispute_id,
            "object": "dispute",
            "amount": charge["amount_captured"] if amount is None else amount,
            "currency": charge["currency"],
            "charge": charge["id"],
            "payment_intent": intent_id,
            "reason": "fraudulent",
            "status": status,
            "is_charge_refundable": False,
            "livemode": False,
        }
        return event("charge.dispute.created", self.disputes[dispute_id])

    def close_dispute(self, dispute_id: str, status: str) -> dict[str, Any]:
        """The issuer decided (``won``, ``lost``; ``warning_closed`` for an inquiry): returns
        ``charge.dispute.closed``."""
        self.disputes[dispute_id]["status"] = status
        return event("charge.dispute.closed", self.disputes[dispute_id])

    def fail(self, intent_id: str, message: str = "Your card was declined.") -> dict[str, Any]:
        """The card was declined: returns the ``payment_intent.payment_failed`` event."""
        intent = self.payment_intents[intent_id]
        intent["status"] = "requires_payment_method"
        intent["last_payment_error"] = {"type": "card_error", "code": "card_declined",
                                        "message": message}  # fmt: skip
        return event("payment_intent.payment_failed", intent)


def event(kind: str, data_object: dict[str, Any]) -> dict[str, Any]:
    """A Stripe event (snapshot payload) around a copy of ``data_object``."""
    return {
        "id": "evt_" + secrets.token_hex(12),
        "object": "event",
        "api_version": "2025-01-27.acacia",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
        "data": {"object": json.loads(json.dumps(data_object))},
    }


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header: ``t=<ts>,v1=<hex HMAC-SHA256(secret, "<ts>.<body>")>``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def signed_delivery(
    event_body: dict[str, Any], secret: str, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of Stripe's POST delivering ``event_body`` to a webhook endpoint."""
    payload = json.dumps(event_body, indent=2).encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": sign(payload, secret, timestamp),
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }
    return payload, headers
