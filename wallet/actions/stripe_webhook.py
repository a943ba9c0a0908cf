"""Stripe's webhook: verify the signature over the raw body, then hand each event to its action.

Money moves only on events Stripe signed with ``STRIPE_WEBHOOK_SECRET`` within the last 5
minutes. Every handler is idempotent (its ledger keys are derived from the PaymentIntent, the
refund total or the dispute, not from the delivery), so a redelivered, duplicated, concurrent or
out-of-order event never moves money twice. Events for PaymentIntents and charges that are not
ours (another integration on the same Stripe account) are logged and acknowledged with 200, as
are event types we do not handle.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import stripe

from storage.config import Config
from storage.errors import AppError
from wallet.actions import card_reversals, topups
from wallet.context import Wallet

log = logging.getLogger(__name__)

Handler = Callable[[Wallet, dict[str, Any], dict[str, Any]], Awaitable[None]]


async def _failed(wallet: Wallet, event: dict[str, Any], intent: dict[str, Any]) -> None:
    await topups.do_settle_unpaid(wallet, event, intent, "failed")


async def _canceled(wallet: Wallet, event: dict[str, Any], intent: dict[str, Any]) -> None:
    await topups.do_settle_unpaid(wallet, event, intent, "canceled")


HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": topups.do_credit,
    "payment_intent.payment_failed": _failed,
    "payment_intent.canceled": _canceled,
    "charge.refunded": card_reversals.do_charge_refunded,
    "charge.dispute.created": card_reversals.do_dispute_created,
    "charge.dispute.closed": card_reversals.do_dispute_closed,
}


def check_webhook(config: Config, payload: bytes, signature: str | None) -> dict[str, Any]:
    """The event, if Stripe signed this exact body within the last 5 minutes."""
    if not config.stripe_webhook_secret:
        raise AppError(
            "stripe_not_configured",
            "Stripe webhooks are not configured on this server (STRIPE_WEBHOOK_SECRET)",
            status=501,
        )
    try:
        event = stripe.Webhook.construct_event(payload, signature, config.stripe_webhook_secret)
    except stripe.SignatureVerificationError:
        raise AppError(
            "invalid_signature",
            "the Stripe-Signature header does not match this body, or it is too old",
        ) from None
    except (ValueError, TypeError, AttributeError):  # not UTF-8, not JSON, not an object
        raise AppError("invalid_payload", "the body is not a Stripe event") from None
    data = event.to_dict()
    if not isinstance(data.get("type"), str) or not isinstance(data.get("data"), dict):
        raise AppError("invalid_payload", "the body is not a Stripe event")
    return data


async def do_handle_webhook(
    wallet: Wallet, payload: bytes, signature: str | None
) -> dict[str, Any]:
    event = check_webhook(wallet.config, payload, signature)
    kind, obj = event["type"], event["data"].get("object")
    handler = HANDLERS.get(kind)
    if handler is None:
        log.debug("ignored Stripe event %s (%s)", event.get("id"), kind)
        return {"received": True}
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        raise AppError("invalid_payload", f"the {kind} event carries no {kind.split('.')[0]}")
    await handler(wallet, event, obj)
    return {"received": True}
