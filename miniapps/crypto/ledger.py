"""Paper-money accounting over the matching engine's events: pure functions, no I/O, no sdk.

An account is one stored document (``accounts/<user>``), Decimals as strings::

    {"free": {asset: "1.5"}, "reserved": {asset: "0.2"},
     "reservations": {order_id: {"asset": "USDT", "amount": "601.2"}},
     "applied": {"BTC/USDT": 42},      # the last event seq applied, per pair
     "finished": [order_id, …]}        # recent orders whose reservation was released

* ``reserve`` moves funds from free to reserved for one order before it is submitted (refused
  with ``insufficient_funds``); idempotent per order id: reserving an order that holds a
  reservation, or whose reservation was already released (the last ``FINISHED_KEEP`` ones),
  changes nothing — a retried placement cannot reserve twice.
* ``apply`` settles a pair's events (``engine.Event``) for one user, in seq order, skipping
  those already applied (``applied[symbol]``): on a trade the buyer pays price * amount + fee
  out of the order's reservation and receives the base; the seller's base leaves its
  reservation and it receives price * amount - fee in quote; ``FEES_USER`` receives both fees;
  ``HOUSE_USER`` (the outside market of a house fill) pays and receives on its free balance,
  which may go negative. A ``done`` event releases what is left of the order's reservation.
* Nobody else ever goes negative: ``apply`` raises ``LedgerError`` (a bug, e.g. a trade bigger
  than its reservation) rather than write such an account.

``reserve`` and ``apply`` return a new account and never change the one given (so an error
leaves nothing half-written). Conservation: every trade moves each asset from one account to
another, so ``totals`` over all accounts (users, fees, house) is constant per asset.
"""

from __future__ import annotations

from decimal import (
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)

FEES_USER = "fees"
HOUSE_USER = "house"
FINISHED_KEEP = 200  # how many released order ids an account remembers (idempotent reserve)

_EXACT = Context(prec=60, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow])


class LedgerError(Exception):
    """``code``: insufficient_funds, invalid_amount, reservation_conflict, missing_reservation,
    negative_balance; ``message`` can be shown as is."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _text(value: Decimal) -> str:
    return format(value, "f")


def new_account(free: dict[str, Decimal | str] | None = None) -> dict:
    """A fresh account holding ``free`` (asset → amount), e.g. the starting paper balance."""
    return {
        "free": {asset: _text(Decimal(amount)) for asset, amount in (free or {}).items()},
        "reserved": {},
        "reservations": {},
        "applied": {},
        "finished": [],
    }


def _copy(account: dict) -> dict:
    """A copy deep enough that changing it leaves ``account`` as it was (other keys the
    exchange may keep in the document are carried over as they are)."""
    result = dict(account)
    for key in ("free", "reserved", "applied"):
        result[key] = dict(account.get(key, {}))
    result["reservations"] = {k: dict(v) for k, v in account.get("reservations", {}).items()}
    result["finished"] = list(account.get("finished", []))
    return result


def _get(bucket: dict, asset: str) -> Decimal:
    return Decimal(bucket.get(asset, "0"))


def _add(bucket: dict, asset: str, delta: Decimal) -> Decimal:
    value = _get(bucket, asset) + delta
    bucket[asset] = _text(value)
    return value


def free(account: dict, asset: str) -> Decimal:
    """The account's free (spendable) amount of ``asset``."""
    return _get(account.get("free", {}), asset)


def reserved(account: dict, asset: str) -> Decimal:
    """The account's amount of ``asset`` held for open orders."""
    return _get(account.get("reserved", {}), asset)


def reserve(account: dict, order_id: str, asset: str, amount: Decimal) -> dict:
    """The account with ``amount`` of ``asset`` moved from free to reserved for ``order_id``.

    ``LedgerError("insufficient_funds")`` when free is less than ``amount``; an order that
    already holds a reservation of ``asset``, or whose reservation was released, changes
    nothing; the same order id with another asset is ``reservation_conflict``.
    """
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise LedgerError("invalid_amount", "A reservation must be a positive amount.")
    result = _copy(account)
    held = result["reservations"].get(order_id)
    if held is not None:
        if held["asset"] != asset:
            raise LedgerError(
                "reservation_conflict", f"Order {order_id} already holds another reservation."
            )
        return result
    if order_id in result["finished"]:
        return result
    with localcontext(_EXACT):
        available = _get(result["free"], asset)
        if available < amount:
            raise LedgerError(
                "insufficient_funds",
                f"Not enough {asset}: {_text(amount)} needed, {_text(available)} available.",
            )
        _add(result["free"], asset, -amount)
        _add(result["reserved"], asset, amount)
    result["reservations"][order_id] = {"asset": asset, "amount": _text(amount)}
    return result


def release(account: dict, order_id: str) -> dict:
    """The account with what is left of ``order_id``'s reservation back in free — for an order
    reserved but then refused by the engine (its ``submit`` raised). A finished order's
    ``done`` event does the same through ``apply``."""
    result = _copy(account)
    with localcontext(_EXACT):
        _release(result, order_id)
    return result


def _spend(account: dict, order_id: str, asset: str, amount: Decimal) -> None:
    held = account["reservations"].get(order_id)
    if held is None or held["asset"] != asset:
        raise LedgerError(
            "missing_reservation", f"Order {order_id} holds no {asset} reservation to settle."
        )
    left = Decimal(held["amount"]) - amount
    if left < 0 or _add(account["reserved"], asset, -amount) < 0:
        raise LedgerError(
            "negative_balance", f"Order {order_id} would spend more {asset} than it reserved."
        )
    held["amount"] = _text(left)


def _release(account: dict, order_id: str) -> None:
    held = account["reservations"].pop(order_id, None)
    if held is not None:
        left = Decimal(held["amount"])
        if _add(account["reserved"], held["asset"], -left) < 0:
            raise LedgerError("negative_balance", f"Reserved {held['asset']} below zero.")
        _add(account["free"], held["asset"], left)
    finished = account["finished"]
    if order_id not in finished:
        finished.append(order_id)
        del finished[:-FINISHED_KEEP]


def _settle_trade(account: dict, user: str, spec, trade) -> None:
    notional = trade.price * trade.amount
    if trade.taker_side == "buy":
        buyer, buy_order, buy_fee = trade.taker_user, trade.taker_order, trade.taker_fee
        seller, sell_order, sell_fee = trade.maker_user, trade.maker_order, trade.maker_fee
    else:
        buyer, buy_order, buy_fee = trade.maker_user, trade.maker_order, trade.maker_fee
        seller, sell_order, sell_fee = trade.taker_user, trade.taker_order, trade.taker_fee
    if user == FEES_USER:
        _add(account["free"], spec.quote, trade.maker_fee + trade.taker_fee)
        return
    if user == buyer:
        if user == HOUSE_USER:  # the outside market: no reservation, no fee
            _add(account["free"], spec.quote, -notional)
        else:
            _spend(account, buy_order, spec.quote, notional + buy_fee)
        _add(account["free"], spec.base, trade.amount)
    if user == seller:
        if user == HOUSE_USER:
            _add(account["free"], spec.base, -trade.amount)
            _add(account["free"], spec.quote, notional)
        else:
            _spend(account, sell_order, spec.base, trade.amount)
            _add(account["free"], spec.quote, notional - sell_fee)


def apply(account: dict, user: str, spec, events: list) -> dict:
    """The account of ``user`` after the events of ``spec``'s pair (``engine.Event``) that it
    has not applied yet (seq above ``applied[spec.symbol]``), in seq order; ``applied`` then
    holds the last seq given. Raises ``LedgerError`` rather than let a balance go negative
    (except the house's) — that would be a bug upstream."""
    result = _copy(account)
    last = int(result["applied"].get(spec.symbol, 0))
    pending = sorted((e for e in events if e.seq > last), key=lambda e: e.seq)
    if not pending:
        return result
    with localcontext(_EXACT):
        for event in pending:
            if event.kind == "trade":
                trade = event.trade
                if user in (FEES_USER, trade.maker_user, trade.taker_user):
                    _settle_trade(result, user, spec, trade)
            elif event.kind == "done" and event.user == user:
                _release(result, event.order_id)
        if user != HOUSE_USER:
            for bucket in ("free", "reserved"):
                for asset, amount in result[bucket].items():
                    if Decimal(amount) < 0:
                        raise LedgerError(
                            "negative_balance", f"{user}'s {bucket} {asset} would go below zero."
                        )
    result["applied"][spec.symbol] = pending[-1].seq
    return result


def totals(accounts: dict[str, dict]) -> dict[str, Decimal]:
    """Free + reserved per asset over ``accounts`` (user → account): with the fees and house
    accounts included, constant under trading."""
    result: dict[str, Decimal] = {}
    with localcontext(_EXACT):
        for account in accounts.values():
            for bucket in ("free", "reserved"):
                for asset, amount in account.get(bucket, {}).items():
                    result[asset] = result.get(asset, Decimal(0)) + Decimal(amount)
    return result
