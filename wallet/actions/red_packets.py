"""Red packets: a total split into shares that members of the chat grab, once each.

The whole total moves into the packet's hold account at creation, and the shares are drawn then
(stored in the ledger transaction's memo, so a retry or a recovering node sees the same ones).
A grab takes the next share with one conditional ``$inc`` and is paid from the hold under the key
``rp-claim:<packet>:<user>``; the claim document's unique id stops a second grab. At expiry the
job loop refunds whatever the hold still has to the sender.
"""

from __future__ import annotations

import secrets
from typing import Any

from messaging.actions import cards
from messaging.actions.conversations import check_member
from storage.errors import AppError
from storage.mongo import now_ms
from wallet.actions.common import check_key, check_note, derived_id
from wallet.context import Wallet
from wallet.currencies import check_amount, check_currency, format_amount
from wallet.ledger import LEASE_MS, Leg
from wallet.store.accounts import hold_account, user_account
from wallet.store.red_packet_claims import claim_id
from wallet.views import red_packet_view

CLAIM_ACTION = "wallet.red_packet.claim"
GREETING_MAX = 100
DEFAULT_GREETING = "Best wishes!"
MODES = ("random", "equal")
_random = secrets.SystemRandom()


def register_hooks(wallet: Wallet) -> None:
    async def created(txn: dict) -> None:
        await _on_created(wallet, txn)

    async def claimed(txn: dict) -> None:
        await _on_claimed(wallet, txn)

    async def refunded(txn: dict) -> None:
        await _redraw(wallet, txn["memo"]["packet_id"])

    wallet.ledger.on_posted("red_packet", created)
    wallet.ledger.on_posted("red_packet_claim", claimed)
    wallet.ledger.on_posted("red_packet_refund", refunded)


def split(total: int, count: int, mode: str) -> list[int]:
    """``count`` shares of at least 1 that sum to exactly ``total``.

    ``equal``: as equal as minor units allow (the first ``total % count`` get one more).
    ``random``: WeChat's "double mean" — each share is uniform in [1, 2 x the mean of what is
    left], so every position has the same expected share, and the last takes the rest.
    """
    if count < 1 or total < count:
        raise ValueError("need total >= count >= 1")
    if mode == "equal":
        base, extra = divmod(total, count)
        return [base + 1] * extra + [base] * (count - extra)
    shares, left = [], total
    for remaining in range(count, 1, -1):
        # Leave at least 1 for each of the others; the mean of what is left, doubled, as cap.
        cap = min(2 * left // remaining, left - (remaining - 1))
        share = _random.randint(1, max(1, cap))
        shares.append(share)
        left -= share
    shares.append(left)
    _random.shuffle(shares)
    return shares


async def check_red_packet(wallet: Wallet, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
    key = check_key(body.get("idempotency_key"))
    currency = check_currency(body.get("currency"))
    total = check_amount(body.get("total"), wallet.max_amount, "total")
    count = body.get("count")
    limit = wallet.config.red_packet_max_count
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= limit:
        raise AppError(
            "invalid_field", f"count must be a whole number from 1 to {limit}",
            details={"field": "count"},
        )  # fmt: skip
    if total < count:
        raise AppError(
            "invalid_amount",
            "every share needs at least one minor unit: total must be at least count",
            details={"field": "total"},
        )
    mode = body.get("mode", "random")
    if mode not in MODES:
        raise AppError("invalid_field", "mode is random or equal", details={"field": "mode"})
    greeting = check_note(body.get("greeting"), "greeting", GREETING_MAX) or DEFAULT_GREETING
    membership = await check_member(wallet.messaging, body.get("conversation_id"), user_id)
    return {
        "key": key,
        "currency": currency,
        "total": total,
        "count": count,
        "mode": mode,
        "greeting": greeting,
        "conversation_id": membership.conversation_id,
    }


async def do_create(wallet: Wallet, user_id: str, body: dict[str, Any]) -> dict:
    checked = await check_red_packet(wallet, user_id, body)
    packet_id = derived_id("red_packet", user_id, checked["key"])
    total, currency = checked["total"], checked["currency"]
    await wallet.ledger.post(
        f"red-packet:{user_id}:{checked['key']}",
        "red_packet",
        currency,
        [Leg(user_account(user_id, currency), -total), Leg(hold_account(f"rp:{packet_id}"), total)],
        {
            "packet_id": packet_id,
            "sender_id": user_id,
            "conversation_id": checked["conversation_id"],
            "count": checked["count"],
            "mode": checked["mode"],
            "greeting": checked["greeting"],
            "shares": split(total, checked["count"], checked["mode"]),
        },
    )
    return await _view(wallet, packet_id)


async def _on_created(wallet: Wallet, txn: dict) -> None:
    memo = txn["memo"]
    created = txn["created_at"]
    packet = await wallet.red_packets.add_packet(
        {
            "_id": memo["packet_id"],
            "sender_id": memo["sender_id"],
            "conversation_id": memo["conversation_id"],
            "currency": txn["currency"],
            "total": sum(memo["shares"]),
            "count": memo["count"],
            "mode": memo["mode"],
            "greeting": memo["greeting"],
            "shares": memo["shares"],
            "claimed": 0,
            "remaining": memo["count"],
            "status": "open",
            "created_at": created,
            "expires_at": created + wallet.config.red_packet_expiry * 1000,
        }
    )
    if packet.get("message_id") is None:
        message = await cards.do_post_wallet_message(
            wallet.messaging,
            packet["conversation_id"],
            packet["sender_id"],
            "red_packet",
            packet["_id"],
            _card(packet, []),
        )
        await wallet.red_packets.set_message(packet["_id"], message["id"])


def _card(packet: dict, claims: list[dict]) -> dict:
    grabbed = sum(c["amount"] for c in claims)
    if packet["status"] == "open":
        state = f"{len(claims)}/{packet['count']} grabbed"
    elif packet["status"] == "finished":
        state = f"All {packet['count']} grabbed"
    else:
        state = f"Expired: {len(claims)}/{packet['count']} grabbed"
        if packet.get("refunded"):
            state += f", {format_amount(packet['refunded'], packet['currency'])} refunded"
    card: dict[str, Any] = {
        "title": packet["greeting"],
        "text": f"Red packet: {format_amount(packet['total'], packet['currency'])}, "
        f"{packet['count']} {'share' if packet['count'] == 1 else 'shares'} ({packet['mode']})",
        "fields": [
            {"label": "Grabbed", "value": state},
            {"label": "Amount grabbed", "value": format_amount(grabbed, packet["currency"])},
        ],
    }
    if packet["status"] == "open":
        card["buttons"] = [{"action_id": CLAIM_ACTION, "label": "Open", "style": "primary"}]
    return card


async def _view(wallet: Wallet, packet_id: str) -> dict:
    packet = await wallet.red_packets.get_packet(packet_id)
    assert packet is not None
    return red_packet_view(packet, await wallet.claims.get_paid(packet_id))


async def get_red_packet(wallet: Wallet, user_id: str, packet_id: str) -> dict:
    packet = await wallet.red_packets.get_packet(packet_id)
    if packet is None:
        raise AppError("not_found", "no such red packet", status=404)
    await check_member(wallet.messaging, packet["conversation_id"], user_id)
    return red_packet_view(packet, await wallet.claims.get_paid(packet_id))


async def do_claim(wallet: Wallet, user_id: str, packet_id: str) -> dict:
    """Grab a share; returns ``{"amount", "currency", "packet"}``. Once per member."""
    packet = await wallet.red_packets.get_packet(packet_id)
    if packet is None:
        raise AppError("not_found", "no such red packet", status=404)
    await check_member(wallet.messaging, packet["conversation_id"], user_id)
    now = now_ms()
    claim = {
        "_id": claim_id(packet_id, user_id),
        "packet_id": packet_id,
        "user_id": user_id,
        "status": "claiming",
        "created_at": now,
        "lease_until": now + LEASE_MS,
    }
    if not await wallet.claims.add_claim(claim):
        existing = await wallet.claims.get_claim(packet_id, user_id)
        if existing is None:  # its claimer found no share and let go: try again
            return await do_claim(wallet, user_id, packet_id)
        if existing["status"] == "paid":
            raise AppError(
                "already_claimed",
                "you grabbed this red packet already",
                status=409,
                details={"amount": existing["amount"], "currency": packet["currency"]},
            )
        if existing["status"] == "void":
            raise AppError("red_packet_closed", "this red packet has expired", status=409)
        if existing["lease_until"] > now:
            raise AppError(
                "claim_in_progress", "your grab is being processed; look again soon", status=409
            )
        claim = await wallet.claims.take_over(existing, now + LEASE_MS)
        if claim is None:
            raise AppError("claim_in_progress", "your grab is being processed", status=409)
    claim, seen = await _finish_claim(wallet, packet, claim)
    if seen is not None:  # what the posting hook just read and redrew (saves two reads)
        view = red_packet_view(*seen)
    else:
        view = await _view(wallet, packet_id)
    return {"amount": claim["amount"], "currency": packet["currency"], "packet": view}


async def _finish_claim(
    wallet: Wallet, packet: dict, claim: dict
) -> tuple[dict, tuple[dict, list[dict]] | None]:
    """Pay the claim's share; returns the claim (with its amount) and, when this call posted
    it, the packet and its paid claims as the posting hook saw them."""
    if "index" not in claim:
        index = await wallet.red_packets.take_share(packet["_id"], now_ms())
        if index is None:
            await wallet.claims.delete_unshared(claim["_id"])
            packet = await wallet.red_packets.get_packet(packet["_id"]) or packet
            if packet["status"] == "expired" or packet["expires_at"] <= now_ms():
                raise AppError("red_packet_closed", "this red packet has expired", status=409)
            raise AppError("red_packet_empty", "every share was grabbed", status=409)
        recorded = await wallet.claims.set_share(claim["_id"], index, packet["shares"][index])
        # None: a takeover recorded a share first; that one counts (this one goes back at expiry).
        claim = recorded or await wallet.claims.get_claim(packet["_id"], claim["user_id"]) or claim
    try:
        txn = await wallet.ledger.post(
            f"rp-claim:{packet['_id']}:{claim['user_id']}",
            "red_packet_claim",
            packet["currency"],
            [
                Leg(hold_account(f"rp:{packet['_id']}"), -claim["amount"]),
                Leg(user_account(claim["user_id"], packet["currency"]), claim["amount"]),
            ],
            {
                "packet_id": packet["_id"],
                "claim_id": claim["_id"],
                "sender_id": packet["sender_id"],
                "conversation_id": packet["conversation_id"],
            },
        )
    except AppError as exc:
        if exc.code != "insufficient_funds":
            raise
        # The packet expired and its hold was refunded while this grab was on its way.
        await wallet.claims.set_void(claim["_id"])
        raise AppError("red_packet_closed", "this red packet has expired", status=409) from None
    # The share's amount is on the claim since set_share; its status is "paid" now.
    return {**claim, "status": "paid"}, txn.get("red_packet")


async def _on_claimed(wallet: Wallet, txn: dict) -> None:
    memo = txn["memo"]
    await wallet.claims.set_paid(memo["claim_id"], txn.get("applied_at") or now_ms())
    packet = await wallet.red_packets.get_packet(memo["packet_id"])
    if packet is None:
        return
    paid = await wallet.claims.get_paid(packet["_id"])
    if len(paid) >= packet["count"] and packet["status"] == "open":
        if await wallet.red_packets.close(packet["_id"], "finished", now_ms()):
            packet = {**packet, "status": "finished"}
        else:  # expired meanwhile: draw what is stored
            packet = await wallet.red_packets.get_packet(packet["_id"]) or packet
    await _draw(wallet, packet, paid)
    txn["red_packet"] = (packet, paid)  # for do_claim's answer (not stored)


async def _redraw(wallet: Wallet, packet_id: str) -> None:
    packet = await wallet.red_packets.get_packet(packet_id)
    if packet is not None:
        await _draw(wallet, packet, await wallet.claims.get_paid(packet_id))


async def _draw(wallet: Wallet, packet: dict, claims: list[dict]) -> None:
    if packet.get("message_id"):
        await cards.do_update_wallet_message(
            wallet.messaging, packet["conversation_id"], packet["message_id"], _card(packet, claims)
        )


async def do_expire_due(wallet: Wallet) -> int:
    """Refund what is left in every expired packet's hold to its sender (job loop)."""
    refunded = 0
    for packet in await wallet.red_packets.get_due(now_ms()):
        await wallet.red_packets.close(packet["_id"], "expired", now_ms())
        hold = hold_account(f"rp:{packet['_id']}")
        left = await wallet.accounts.get_balance(hold)
        if left > 0:
            # Keyed by the amount seen: a grab that lands in between makes this attempt fail
            # (the hold cannot go negative) and the next scan refunds the new, smaller rest.
            try:
                await wallet.ledger.post(
                    f"rp-refund:{packet['_id']}:{left}",
                    "red_packet_refund",
                    packet["currency"],
                    [
                        Leg(hold, -left),
                        Leg(user_account(packet["sender_id"], packet["currency"]), left),
                    ],
                    {"packet_id": packet["_id"], "conversation_id": packet["conversation_id"]},
                )
            except AppError as exc:
                if exc.code in ("insufficient_funds", "in_progress"):
                    continue
                raise
            refunded += 1
        paid = await wallet.claims.get_paid(packet["_id"])
        left_over = packet["total"] - sum(c["amount"] for c in paid)
        await wallet.red_packets.set_refunded(packet["_id"], max(0, left_over), now_ms())
        await _redraw(wallet, packet["_id"])
    return refunded


async def do_recover_claims(wallet: Wallet) -> int:
    """Finish grabs whose node died after taking a share; let go of those that took none."""
    finished = 0
    for stuck in await wallet.claims.get_stuck(now_ms()):
        claim = await wallet.claims.take_over(stuck, now_ms() + LEASE_MS)
        packet = await wallet.red_packets.get_packet(stuck["packet_id"]) if claim else None
        if claim is None or packet is None:
            continue
        if "index" not in claim:
            await wallet.claims.delete_unshared(claim["_id"])
            continue
        try:
            await _finish_claim(wallet, packet, claim)
            finished += 1
        except AppError:
            pass  # expired meanwhile: its share was refunded with the rest
    return finished
