"""The wallet: balances, statements, transfers and red packets in chats, dev top-ups, and the
reconciliation report for admins. Amounts are integers in the currency's minor unit."""

from __future__ import annotations

from aiohttp import web

from gateway.api import AUTH, BODY, QUERY, Api
from gateway.keys import WALLET
from gateway.schemas import TIMESTAMP, obj, string
from wallet.actions import balances, payments, red_packets, transfers

api = Api("wallet", "Money: balances, transfers, red packets, top-ups")

ID = string(64, 1)
KEY = string(64, 1, description="your unique id for this request; a retry with it moves money once")
AMOUNT = {"type": "integer", "description": "minor units of the currency (1250 = 12.50 USD)"}
CURRENCY = string(3, 3, description="ISO 4217 code, e.g. USD")
MONEY = {
    "amount": {"type": "integer"},
    "currency": {"type": "string"},
    "exponent": {"type": "integer"},
}
BALANCE = obj(
    {
        **MONEY,
        "flag": {
            "type": ["string", "null"],
            "description": '"negative_balance" while a card refund or chargeback has taken it '
            "below zero: paying and sending are refused (negative_balance) until it is topped up",
        },
    }
)
TRANSFER = obj(
    {
        "id": {"type": "string"},
        "sender_id": {"type": "string"},
        "recipient_id": {"type": "string"},
        "conversation_id": {"type": "string"},
        **MONEY,
        "note": {"type": "string"},
        "status": {"enum": ["pending", "accepted", "returned"]},
        "message_id": {"type": ["string", "null"]},
        "created_at": TIMESTAMP,
        "expires_at": TIMESTAMP,
        "settled_at": {"type": ["string", "null"]},
    }
)
RED_PACKET = obj(
    {
        "id": {"type": "string"},
        "sender_id": {"type": "string"},
        "conversation_id": {"type": "string"},
        **MONEY,
        "count": {"type": "integer"},
        "mode": {"enum": ["random", "equal"]},
        "greeting": {"type": "string"},
        "status": {"enum": ["open", "finished", "expired"]},
        "claimed_count": {"type": "integer"},
        "claimed_amount": {"type": "integer"},
        "claims": {"type": "array"},
        "refunded": {"type": ["integer", "null"]},
        "message_id": {"type": ["string", "null"]},
        "created_at": TIMESTAMP,
        "expires_at": TIMESTAMP,
    }
)
MONEY_ERRORS = (
    "invalid_amount",
    "amount_too_large",
    "unknown_currency",
    "insufficient_funds",
    "negative_balance",
)


@api.get(
    "/api/v1/wallet",
    summary="Your balances, and which ways of topping up this server offers",
    response=obj(
        {
            "balances": {"type": "array", "items": BALANCE},
            "dev_topup": {"type": "boolean"},
            "card_topup": {"type": "boolean"},
        }
    ),
)
async def get_wallet(request: web.Request) -> dict:
    return await balances.get_balances(request.app[WALLET], request[AUTH].user_id)


@api.get(
    "/api/v1/wallet/transactions",
    summary="Your statement, newest first (page with next_before)",
    query={
        "currency": CURRENCY,
        "before": string(80, 1),
        "limit": {"type": "integer", "minimum": 1, "maximum": balances.HISTORY_LIMIT_MAX},
    },
    response=obj({"transactions": {"type": "array"}, "next_before": {"type": ["string", "null"]}}),
    errors=("unknown_currency", "invalid_field"),
)
async def get_transactions(request: web.Request) -> dict:
    query = request[QUERY]
    return await balances.get_history(
        request.app[WALLET],
        request[AUTH].user_id,
        currency=query.get("currency"),
        before=query.get("before"),
        limit=query.get("limit", 50),
    )


@api.post(
    "/api/v1/wallet/dev-topup",
    summary="Development only (AETHERIAL_DEV_TOPUP): add money from nowhere, labelled as such",
    body=obj(
        {"amount": AMOUNT, "currency": CURRENCY, "idempotency_key": KEY}, ["amount", "currency"]
    ),
    response=obj({"transaction_id": {"type": "string"}, "balance": BALANCE}),
    errors=("dev_topup_disabled", "invalid_amount", "amount_too_large", "unknown_currency"),
)
async def dev_topup(request: web.Request) -> dict:
    body = request[BODY]
    return await balances.do_dev_topup(
        request.app[WALLET],
        request[AUTH].user_id,
        body["amount"],
        body["currency"],
        body.get("idempotency_key"),
    )


@api.post(
    "/api/v1/wallet/transfers",
    status=201,
    summary="Send money to a member of a chat; it appears there as a card they accept",
    body=obj(
        {
            "to_user_id": ID,
            "amount": AMOUNT,
            "currency": CURRENCY,
            "conversation_id": ID,
            "note": string(200),
            "idempotency_key": KEY,
        },
        ["to_user_id", "amount", "currency", "conversation_id", "idempotency_key"],
    ),
    response=obj({"transfer": TRANSFER}),
    errors=(
        *MONEY_ERRORS,
        "not_a_member",
        "invalid_recipient",
        "blocked",
        "idempotency_key_reused",
    ),
)
async def create_transfer(request: web.Request) -> dict:
    wallet = request.app[WALLET]
    return {
        "transfer": await transfers.do_create_transfer(wallet, request[AUTH].user_id, request[BODY])
    }


@api.get(
    "/api/v1/wallet/transfers/{transfer_id}",
    summary="A transfer you sent or received",
    response=obj({"transfer": TRANSFER}),
    errors=("not_found",),
)
async def get_transfer(request: web.Request) -> dict:
    transfer = await transfers.get_transfer(
        request.app[WALLET], request[AUTH].user_id, request.match_info["transfer_id"]
    )
    return {"transfer": transfer}


@api.post(
    "/api/v1/wallet/transfers/{transfer_id}/accept",
    summary="Accept a transfer sent to you",
    response=obj({"transfer": TRANSFER}),
    errors=("not_found", "transfer_settled", "transfer_expired"),
)
async def accept_transfer(request: web.Request) -> dict:
    transfer = await transfers.do_accept(
        request.app[WALLET], request[AUTH].user_id, request.match_info["transfer_id"]
    )
    return {"transfer": transfer}


@api.post(
    "/api/v1/wallet/transfers/{transfer_id}/return",
    summary="Send a transfer back to its sender",
    response=obj({"transfer": TRANSFER}),
    errors=("not_found", "transfer_settled"),
)
async def return_transfer(request: web.Request) -> dict:
    transfer = await transfers.do_return(
        request.app[WALLET], request[AUTH].user_id, request.match_info["transfer_id"]
    )
    return {"transfer": transfer}


@api.post(
    "/api/v1/wallet/red-packets",
    status=201,
    summary="Drop a red packet in a chat: the total is split into shares members grab",
    body=obj(
        {
            "conversation_id": ID,
            "total": AMOUNT,
            "count": {"type": "integer"},
            "currency": CURRENCY,
            "mode": {"enum": list(red_packets.MODES)},
            "greeting": string(red_packets.GREETING_MAX),
            "idempotency_key": KEY,
        },
        ["conversation_id", "total", "count", "currency", "idempotency_key"],
    ),
    response=obj({"red_packet": RED_PACKET}),
    errors=(*MONEY_ERRORS, "not_a_member", "invalid_field", "idempotency_key_reused"),
)
async def create_red_packet(request: web.Request) -> dict:
    packet = await red_packets.do_create(request.app[WALLET], request[AUTH].user_id, request[BODY])
    return {"red_packet": packet}


@api.get(
    "/api/v1/wallet/red-packets/{packet_id}",
    summary="A red packet of a chat you are in, with who grabbed what",
    response=obj({"red_packet": RED_PACKET}),
    errors=("not_found", "not_a_member"),
)
async def get_red_packet(request: web.Request) -> dict:
    packet = await red_packets.get_red_packet(
        request.app[WALLET], request[AUTH].user_id, request.match_info["packet_id"]
    )
    return {"red_packet": packet}


@api.post(
    "/api/v1/wallet/red-packets/{packet_id}/claim",
    summary="Grab a share of a red packet (once per member)",
    response=obj({**MONEY, "packet": RED_PACKET}),
    errors=(
        "not_found",
        "not_a_member",
        "already_claimed",
        "claim_in_progress",
        "red_packet_empty",
        "red_packet_closed",
    ),
)
async def claim_red_packet(request: web.Request) -> dict:
    result = await red_packets.do_claim(
        request.app[WALLET], request[AUTH].user_id, request.match_info["packet_id"]
    )
    return {**result, "exponent": result["packet"]["exponent"]}


@api.get(
    "/api/v1/admin/wallet/reconciliation",
    summary="Per currency: balances against the external accounts (must sum to zero), card "
    "refunds and chargebacks, and users below zero (admins)",
    response=obj(
        {
            "currencies": {"type": "array"},
            "balanced": {"type": "boolean"},
            "mismatched_accounts": {"type": "array"},
            "negative_accounts": {"type": "array"},
            "transactions_in_flight": {"type": "integer"},
        }
    ),
    admin=True,
)
async def reconciliation(request: web.Request) -> dict:
    return await balances.get_reconciliation(request.app[WALLET])


PAYMENT = obj(
    {
        "id": {"type": "string"},
        "app_id": {"type": "string"},
        "app_name": {"type": "string"},
        "conversation_id": {"type": "string"},
        **MONEY,
        "description": {"type": "string"},
        "order_ref": {"type": "string"},
        "status": {"enum": ["pending", "paid", "cancelled", "expired", "authorized", "voided"]},
        "refunded": {"type": "integer"},
        "created_at": TIMESTAMP,
        "expires_at": TIMESTAMP,
        "capture": {
            "type": "boolean",
            "description": "false: a hold — confirming authorizes it (status authorized); the "
            "app then captures it (paid) or voids it (voided), or it is voided at its expiry",
        },
        "captured": {"type": ["integer", "null"], "description": "what a capture took"},
        "hold_expires_at": {"type": ["string", "null"]},
        "kind": {
            "enum": ["payment", "transfer_request"],
            "description": "transfer_request: the app asks you to pay another person "
            "(to_user_id), not the app",
        },
        "to_user_id": {"type": ["string", "null"]},
        "note": {"type": ["string", "null"]},
    }
)


@api.get(
    "/api/v1/wallet/payments/{payment_id}",
    summary="A mini-program's payment request to you",
    response=obj({"payment": PAYMENT}),
    errors=("payment_not_found",),
)
async def get_payment(request: web.Request) -> dict:
    payment = await payments.get_payment(
        request.app[WALLET], request[AUTH].user_id, request.match_info["payment_id"]
    )
    return {"payment": payment}


@api.post(
    "/api/v1/wallet/payments/{payment_id}/confirm",
    summary="Confirm a payment request, hold or transfer request (same as the payment.confirm "
    "socket event)",
    response=obj({"payment": PAYMENT}),
    errors=(
        "payment_not_found",
        "payment_closed",
        "payment_in_progress",
        "insufficient_funds",
        "negative_balance",
    ),
)
async def confirm_payment(request: web.Request) -> dict:
    payment = await payments.do_confirm(
        request.app[WALLET], request[AUTH].user_id, request.match_info["payment_id"]
    )
    return {"payment": payment}


@api.post(
    "/api/v1/wallet/payments/{payment_id}/cancel",
    summary="Refuse a payment request (same as the payment.cancel socket event)",
    response=obj({"payment": PAYMENT}),
    errors=("payment_not_found", "payment_closed"),
)
async def cancel_payment(request: web.Request) -> dict:
    payment = await payments.do_cancel(
        request.app[WALLET], request[AUTH].user_id, request.match_info["payment_id"]
    )
    return {"payment": payment}
