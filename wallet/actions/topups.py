"""Card top-ups through Stripe: a PaymentIntent per top-up, money only from the verified webhook.

``do_create_topup`` asks Stripe for a PaymentIntent (the client confirms it with Stripe.js and the
returned ``client_secret``); nothing is credited then. Stripe tells us the payment went through by
a signed ``payment_intent.succeeded`` webhook (``wallet.actions.stripe_webhook`` verifies and
dispatches it), and only that credits the wallet: one ledger posting keyed
``stripe:<payment intent id>``, so a delivery repeated or sent concurrently credits once. Money
Stripe later takes back (refunds, disputes) is ``wallet.actions.card_reversals``.

Idempotency on both sides: the top-up id is derived from the user and their idempotency key, and
the PaymentIntent is created with Stripe's ``Idempotency-Key`` derived from it, so a retried
request (even one that died between Stripe and our database) names the same PaymentIntent.

The Stripe library's default HTTP client is synchronous and would block the event loop; we give it
its aiohttp client and call the ``*_async`` methods.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import stripe

from storage.config import Config
from storage.errors import AppError
from storage.mongo import iso, now_ms
from wallet.actions.common import check_key, derived_id
from wallet.context import Wallet
from wallet.currencies import EXPONENTS, check_amount, check_currency
from wallet.ledger import Leg
from wallet.store.accounts import external_account, user_account
from wallet.views import money

log = logging.getLogger(__name__)

LEDGER_KIND = "stripe_topup"
LABEL = "card top-up (Stripe)"
STRIPE_TIMEOUT = 30.0  # seconds per HTTP attempt to Stripe
STRIPE_RETRIES = 2  # the library retries connection errors and 409/5xx with the same key
# Where Stripe's amount unit differs from ISO 4217's minor unit
# (https://docs.stripe.com/currencies#special-cases): ISK is zero-decimal in ISO 4217 but
# stays two-decimal in Stripe's API (100 = 1 króna), so its amounts carry two extra digits.
STRIPE_EXTRA_DIGITS = {"ISK": 2}
# Stripe errors that are the request's fault (amount outside what Stripe accepts), told as ours.
AMOUNT_ERRORS = {"amount_too_small", "amount_too_large", "invalid_charge_amount"}


def register_hooks(wallet: Wallet) -> None:
    """Mark the top-up succeeded when its posting is finished — also when recovery finishes a
    posting whose node died before the webhook could answer."""

    async def posted(txn: dict) -> None:
        await _mark_succeeded(wallet, txn["memo"]["topup_id"], txn["_id"])

    wallet.ledger.on_posted(LEDGER_KIND, posted)


def stripe_amount(amount: int, currency: str) -> int:
    """Our minor units in the unit Stripe's API counts for this currency."""
    return amount * 10 ** STRIPE_EXTRA_DIGITS.get(currency, 0)


def topup_view(topup: dict[str, Any], client_secret: str | None = None) -> dict[str, Any]:
    return {
        "id": topup["_id"],
        **money(topup["amount"], topup["currency"]),
        "status": topup["status"],
        "payment_intent_id": topup["payment_intent_id"],
        "refunded": topup.get("refunded", 0),
        "client_secret": client_secret,
        "created_at": iso(topup["created_at"]),
    }


# --- creating a top-up --------------------------------------------------------------------------


def check_stripe_enabled(config: Config) -> None:
    # Without the webhook secret nothing could ever credit a paid top-up: refuse to take money.
    if not config.stripe_enabled:
        raise AppError(
            "stripe_not_configured",
            "card top-ups are not configured on this server "
            "(STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET)",
            status=501,
        )


def check_topup(wallet: Wallet, body: dict[str, Any]) -> dict[str, Any]:
    check_stripe_enabled(wallet.config)
    key = check_key(body.get("idempotency_key"))
    currency = check_currency(body.get("currency"))
    amount = check_amount(body.get("amount"), wallet.max_amount)
    if EXPONENTS[currency] == 3 and amount % 10:
        # Card networks settle three-decimal currencies in hundredths; Stripe refuses the rest.
        raise AppError(
            "invalid_amount",
            f"card payments in {currency} must be a multiple of 10 minor units",
            details={"field": "amount"},
        )
    return {"key": key, "currency": currency, "amount": amount}


async def do_create_topup(wallet: Wallet, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Create (or, for a retried idempotency key, find) the top-up and its PaymentIntent."""
    checked = check_topup(wallet, body)
    amount, currency = checked["amount"], checked["currency"]
    topup_id = derived_id("topup", user_id, checked["key"])
    topups = wallet.topups
    existing = await topups.get_topup(topup_id)
    if existing is not None:
        if (existing["amount"], existing["currency"]) != (amount, currency):
            raise _key_reused()
        async with _stripe(wallet.config) as client:
            intent = await _call(
                client.v1.payment_intents.retrieve_async(existing["payment_intent_id"])
            )
        return topup_view(existing, intent.client_secret)

    async with _stripe(wallet.config) as client:
        intent = await _call(
            client.v1.payment_intents.create_async(
                {
                    "amount": stripe_amount(amount, currency),
                    "currency": currency.lower(),
                    "automatic_payment_methods": {"enabled": True},
                    "metadata": {"user_id": user_id, "topup_id": topup_id},
                    "description": LABEL,
                },
                # The same top-up always asks with the same key, so Stripe answers a retry (or a
                # concurrent duplicate) with the PaymentIntent it already made.
                options={"idempotency_key": f"aetherial-topup-{topup_id}"},
            )
        )
    topup = await topups.add_topup(
        {
            "_id": topup_id,
            "user_id": user_id,
            "amount": amount,
            "currency": currency,
            "stripe_amount": stripe_amount(amount, currency),
            "payment_intent_id": intent.id,
            "status": "requires_payment",
            "created_at": now_ms(),
        }
    )
    if topup["payment_intent_id"] != intent.id:  # cannot happen: one key, one PaymentIntent
        log.error("top-up %s has PaymentIntent %s, Stripe answered %s", topup_id,
                  topup["payment_intent_id"], intent.id)  # fmt: skip
        raise AppError("internal_error", "this top-up is in an inconsistent state", status=500)
    return topup_view(topup, intent.client_secret)


async def get_topup(wallet: Wallet, user_id: str, topup_id: str) -> dict[str, Any]:
    topup = await wallet.topups.get_topup(topup_id)
    if topup is None or topup["user_id"] != user_id:
        raise AppError("not_found", "no such top-up", status=404)
    return topup_view(topup)


@contextlib.asynccontextmanager
async def _stripe(config: Config) -> AsyncIterator[stripe.StripeClient]:
    """A Stripe client on the aiohttp HTTP client, closed after use (top-ups are rare enough
    that a connection per request costs nothing, and no session outlives its event loop)."""
    http_client = stripe.AIOHTTPClient(timeout=STRIPE_TIMEOUT)
    base = config.stripe_api_base
    client = stripe.StripeClient(
        config.stripe_secret_key or "",
        base_addresses={"api": base.rstrip("/")} if base else None,
        http_client=http_client,
        max_network_retries=STRIPE_RETRIES,
    )
    try:
        yield client
    finally:
        await http_client.close_async()


async def _call(request: Any) -> Any:
    """Await a Stripe call; its failures become errors that are safe to show the user (Stripe
    masks keys in its messages, but we do not repeat its words for credential errors at all)."""
    try:
        return await request
    except stripe.IdempotencyError:
        raise _key_reused() from None
    except stripe.StripeError as exc:
        log.warning("Stripe call failed: %s %s (request %s)",
                    type(exc).__name__, exc.code or "", exc.request_id)  # fmt: skip
        details = {"provider_code": exc.code} if exc.code else None
        if isinstance(exc, stripe.InvalidRequestError) and exc.code in AMOUNT_ERRORS:
            raise AppError(
                "invalid_amount",
                f"the card payment provider refused this amount: {exc.user_message or exc.code}",
                details={"field": "amount", "provider_code": exc.code},
            ) from None
        if isinstance(exc, stripe.APIConnectionError):
            message = "could not reach the card payment provider; try again"
        elif isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
            message = "the card payment provider refused this server's credentials"
        elif isinstance(exc, stripe.RateLimitError):
            message = "the card payment provider is busy; try again shortly"
        else:
            message = "the card payment provider could not process this request"
        raise AppError("payment_provider_error", message, status=502, details=details) from None


def _key_reused() -> AppError:
    return AppError(
        "idempotency_key_reused",
        "this idempotency_key was used for a different top-up",
        status=409,
    )


# --- what Stripe's webhook reports about a PaymentIntent (see wallet.actions.stripe_webhook) ---


async def find_topup(
    wallet: Wallet, event: dict[str, Any], intent_id: str | None, charge_id: str | None = None
) -> dict | None:
    """The top-up a Stripe object belongs to, by its PaymentIntent (or, failing that, its
    charge); None (logged) when it is not one of ours."""
    topup = await wallet.topups.get_by_payment_intent(intent_id) if intent_id else None
    if topup is None and charge_id:
        topup = await wallet.topups.get_by_charge(charge_id)
    if topup is None:
        # Another integration on the same Stripe account, or a top-up we never stored (its
        # creation failed before the client could pay): nothing of ours to update.
        log.warning("Stripe event %s (%s) names unknown PaymentIntent %s (charge %s)",
                    event.get("id"), event["type"], intent_id, charge_id)  # fmt: skip
    return topup


async def do_credit(wallet: Wallet, event: dict[str, Any], intent: dict[str, Any]) -> None:
    """``payment_intent.succeeded``: credit the top-up once."""
    topup = await find_topup(wallet, event, intent["id"], _latest_charge(intent))
    if topup is None:
        return
    received, currency = intent.get("amount_received"), intent.get("currency")
    if (
        isinstance(received, bool)
        or received != topup["stripe_amount"]
        or not isinstance(currency, str)
        or currency.upper() != topup["currency"]
    ):
        log.error("Stripe event %s: PaymentIntent %s received %r %r, top-up %s expects %d %s; "
                  "nothing credited", event.get("id"), intent["id"], received, currency,
                  topup["_id"], topup["stripe_amount"], topup["currency"])  # fmt: skip
        raise AppError(
            "amount_mismatch", "the payment does not match its top-up; nothing was credited"
        )
    currency = topup["currency"]
    # The amount comes from our document, never from the event; the ledger key makes every
    # further delivery of this payment (sequential or concurrent) return the first posting.
    txn = await wallet.ledger.post(
        f"stripe:{intent['id']}",
        LEDGER_KIND,
        currency,
        [
            Leg(external_account("stripe", currency), -topup["amount"]),
            Leg(user_account(topup["user_id"], currency), topup["amount"]),
        ],
        {"topup_id": topup["_id"], "payment_intent_id": intent["id"], "label": LABEL},
    )
    await _mark_succeeded(wallet, topup["_id"], txn["_id"])
    charge_id = _latest_charge(intent)
    if charge_id and topup.get("charge_id") != charge_id:
        await wallet.topups.set_charge(topup["_id"], charge_id)


def _latest_charge(intent: dict[str, Any]) -> str | None:
    charge = intent.get("latest_charge")
    if isinstance(charge, dict):  # expanded
        charge = charge.get("id")
    return charge if isinstance(charge, str) else None


async def _mark_succeeded(wallet: Wallet, topup_id: str, txn_id: str) -> None:
    await wallet.topups.update_status(
        topup_id,
        ("requires_payment", "failed", "canceled"),
        "succeeded",
        {"transaction_id": txn_id, "succeeded_at": now_ms()},
    )


async def do_settle_unpaid(
    wallet: Wallet, event: dict[str, Any], intent: dict[str, Any], status: str
) -> None:
    """``payment_intent.payment_failed`` / ``canceled``: record it (never after success)."""
    topup = await find_topup(wallet, event, intent["id"])
    if topup is None:
        return
    fields: dict[str, Any] = {f"{status}_at": now_ms()}
    error = intent.get("last_payment_error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        fields["failure_message"] = error["message"][:200]
    # Never after success: events can arrive out of order, and the money has moved.
    await wallet.topups.update_status(topup["_id"], ("requires_payment", "failed"), status, fields)
