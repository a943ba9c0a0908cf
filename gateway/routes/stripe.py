"""Card top-ups through Stripe: create a PaymentIntent, and the webhook that credits the wallet.

The wallet is credited only by the webhook, after its signature is verified; the client's word
that it paid counts for nothing. The same webhook takes money back when Stripe reports a refund
or a dispute (chargeback) of a top-up.
"""

from __future__ import annotations

from aiohttp import web

from gateway.api import AUTH, BODY, Api
from gateway.keys import WALLET
from gateway.schemas import TIMESTAMP, obj, string
from wallet.actions import stripe_webhook as webhook_actions
from wallet.actions import topups

api = Api("stripe", "Card top-ups through Stripe (STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET)")

TOPUP = obj(
    {
        "id": {"type": "string"},
        "amount": {"type": "integer"},
        "currency": {"type": "string"},
        "exponent": {"type": "integer"},
        "status": {"enum": ["requires_payment", "succeeded", "failed", "canceled"]},
        "payment_intent_id": {"type": "string"},
        "refunded": {
            "type": "integer",
            "description": "how much Stripe refunded to the card (taken back from the wallet)",
        },
        "client_secret": {
            "type": ["string", "null"],
            "description": "for Stripe.js (confirmCardPayment / Payment Element); only in the "
            "reply that creates (or retries) the top-up",
        },
        "created_at": TIMESTAMP,
    }
)


@api.post(
    "/api/v1/wallet/topups",
    status=201,
    summary="Top up by card: creates a Stripe PaymentIntent; the wallet is credited when Stripe "
    "confirms the payment",
    body=obj(
        {
            "amount": {"type": "integer", "description": "minor units (1250 = 12.50 USD)"},
            "currency": string(3, 3, description="ISO 4217 code, e.g. USD"),
            "idempotency_key": string(
                64, 1, description="your unique id for this top-up; a retry returns the same one"
            ),
        },
        ["amount", "currency", "idempotency_key"],
    ),
    response=obj({"topup": TOPUP}),
    errors=(
        "stripe_not_configured",
        "invalid_amount",
        "amount_too_large",
        "unknown_currency",
        "idempotency_key_reused",
        "payment_provider_error",
    ),
)
async def create_topup(request: web.Request) -> dict:
    wallet = request.app[WALLET]
    return {"topup": await topups.do_create_topup(wallet, request[AUTH].user_id, request[BODY])}


@api.get(
    "/api/v1/wallet/topups/{topup_id}",
    summary="A card top-up of yours and its status (poll it after paying)",
    response=obj({"topup": TOPUP}),
    errors=("not_found",),
)
async def get_topup(request: web.Request) -> dict:
    topup = await topups.get_topup(
        request.app[WALLET], request[AUTH].user_id, request.match_info["topup_id"]
    )
    return {"topup": topup}


@api.post(
    "/api/v1/wallet/stripe/webhook",
    auth=False,
    summary="Stripe's webhook (signed with STRIPE_WEBHOOK_SECRET): credits paid top-ups once, "
    "takes refunded and disputed ones back",
    response=obj({"received": {"const": True}}),
    errors=("invalid_signature", "invalid_payload", "amount_mismatch", "stripe_not_configured"),
)
async def stripe_webhook(request: web.Request) -> dict:
    """The raw body is verified against the `Stripe-Signature` header (HMAC-SHA256, 5-minute
    window). Handles `payment_intent.succeeded`, `payment_intent.payment_failed`,
    `payment_intent.canceled`, `charge.refunded` (cumulative `amount_refunded`),
    `charge.dispute.created` and `charge.dispute.closed` (won: credited back; lost: stays
    debited); other events, and charges that are not top-ups, are acknowledged and ignored."""
    # read() enforces the app's client_max_size; the signature covers these exact bytes.
    payload = await request.read()
    return await webhook_actions.do_handle_webhook(
        request.app[WALLET], payload, request.headers.get("Stripe-Signature")
    )
