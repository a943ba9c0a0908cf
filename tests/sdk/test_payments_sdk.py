"""Payments in the SDK: event signatures, the manifest's rules for payment.* events, the
Context's payment methods, and the simulator playing the host's payment service."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from sdk import (
    App,
    InvalidParams,
    InvalidSignature,
    ManifestError,
    NotFound,
    NotPaid,
    OrderRefReused,
    PermissionDenied,
    RefundExceedsPayment,
    Reply,
    SDKError,
    SignatureError,
    validate_manifest,
)
from sdk.errors import host_error
from sdk.signing import APP_SECRET_ENV, canonical_event, sign_event, verify_event
from sdk.simulator import TEST_SECRET, AppCallError, HostRefused, Simulator

SECRET = "s3cret-of-the-shop"
PAYLOAD = {
    "payment_id": "pay-1",
    "order_ref": "order-42",
    "amount": 1250,
    "currency": "USD",
    "user_id": "u-abc",
    "status": "succeeded",
    "at": 1_700_000_000_000,
}
SHOP = {
    "id": "shop",
    "name": "Shop",
    "version": "1.0.0",
    "permissions": [
        "messages.send_card",
        "messages.reply_ephemeral",
        "payments.request",
        "payments.refund",
    ],
    "commands": [
        {"name": "buy", "description": "buy an item"},
        {"name": "probe", "description": "run a probe"},
    ],
}
PRICES = {"mug": 1250, "hat": 1000}


def signed(payload=PAYLOAD, secret=SECRET):
    return {**payload, "signature": sign_event(secret, payload)}


# --- signatures -------------------------------------------------------------------------------


def test_sign_event_follows_the_protocol_byte_for_byte():
    canonical = json.dumps(PAYLOAD, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hmac.new(SECRET.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    assert sign_event(SECRET, PAYLOAD) == "v1=" + digest
    assert canonical_event(signed()) == canonical.encode()  # the signature is left out
    assert sign_event(SECRET, signed()) == sign_event(SECRET, PAYLOAD)
    non_ascii = {**PAYLOAD, "order_ref": "café"}
    assert b"caf\xc3\xa9" in canonical_event(non_ascii)  # UTF-8, not \\u escapes


def test_verify_event_round_trip():
    assert verify_event(SECRET, signed())
    assert verify_event(SECRET.encode(), signed())  # bytes secrets work too
    reordered = dict(reversed(list(signed().items())))
    assert verify_event(SECRET, reordered)  # key order does not matter


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p: p.update(amount=1),
        lambda p: p.update(status="failed"),
        lambda p: p.update(extra="field"),
        lambda p: p.pop("user_id"),
        lambda p: p.pop("signature"),
        lambda p: p.update(signature=None),
        lambda p: p.update(signature=123),
        lambda p: p.update(signature=""),
        lambda p: p.update(signature="v1=" + "0" * 64),
        lambda p: p.update(signature=p["signature"].upper()),
        lambda p: p.update(signature=p["signature"][3:]),
        lambda p: p.update(signature="v1=\ud800"),
    ],
)
def test_verify_event_detects_tampering(tamper):
    payload = signed()
    tamper(payload)
    assert verify_event(SECRET, payload) is False


def test_verify_event_refuses_other_secrets_and_non_objects():
    assert not verify_event("another-secret", signed())
    assert not verify_event(SECRET, signed(secret="another-secret"))
    assert not verify_event(SECRET, [signed()])  # type: ignore[arg-type]
    assert not verify_event(SECRET, {**signed(), "odd": {1: object()}})
    with pytest.raises(ValueError):
        verify_event("", signed())


# --- the manifest -----------------------------------------------------------------------------


def manifest(**events):
    return {"id": "shop", "name": "Shop", "version": "1.0.0", "events": events}


@pytest.mark.parametrize(
    ("events", "field"),
    [
        ({"emits": ["payment.succeeded"]}, "events.emits[0]"),
        ({"accepts": ["shop.x", "payment.failed"]}, "events.accepts[1]"),
        ({"accepts": ["payment.refunded"]}, "events.accepts[0]"),
    ],
)
def test_the_manifest_refuses_payment_events(events, field):
    with pytest.raises(ManifestError) as failure:
        validate_manifest(manifest(**events))
    assert str(failure.value).startswith(f"{field}: ")
    assert "payment.* events come only from the host" in str(failure.value)


def test_an_app_named_payment_cannot_emit_payment_events_either():
    data = {**manifest(emits=["payment.succeeded"]), "id": "payment"}
    with pytest.raises(ManifestError, match="come only from the host"):
        validate_manifest(data)
    validate_manifest({**manifest(emits=["payments.done"]), "id": "payments"})  # not reserved


def test_the_payment_permissions_are_known():
    validate_manifest({**manifest(), "permissions": ["payments.request", "payments.refund"]})


def test_payment_handlers_need_the_permission_not_a_declaration():
    app = App("shop")

    @app.event("payment.succeeded")
    async def paid(ctx):
        pass

    @app.event("payment.failed")
    async def failed(ctx):
        pass

    with_permission = validate_manifest({**manifest(), "permissions": ["payments.request"]})
    assert app.check_against_manifest(with_permission) == []
    problems = app.check_against_manifest(validate_manifest(manifest()))
    assert problems == [
        "event 'payment.failed' has a handler but the manifest lacks the payments.request"
        " permission",
        "event 'payment.succeeded' has a handler but the manifest lacks the payments.request"
        " permission",
    ]

    @app.event("payment.refunded")  # not a payment event the host sends
    async def other(ctx):
        pass

    assert app.check_against_manifest(with_permission) == [
        "event 'payment.refunded' has a handler but is not in events.accepts"
    ]


def test_payment_error_codes_have_their_exceptions():
    assert isinstance(host_error("order_ref_reused", "m"), OrderRefReused)
    assert isinstance(host_error("not_paid", "m"), NotPaid)
    assert isinstance(host_error("refund_exceeds_payment", "m"), RefundExceedsPayment)
    assert issubclass(InvalidSignature, SignatureError) and issubclass(InvalidSignature, SDKError)
    assert InvalidSignature("x").code == "bad_signature"


# --- the Context on the wire ------------------------------------------------------------------


class RecordingLink:
    def __init__(self, result=None):
        self.calls = []
        self.result = result or {}

    async def call(self, method, params):
        self.calls.append((method, params))
        return self.result


def event_params(name, payload):
    return {
        "context": {"call_id": "c-1", "user": {"id": "u-abc"}},
        "name": name,
        "payload": payload,
    }


async def run_handler(app, method, params, link):
    return await app.handle(method, params, link)


async def test_request_and_refund_send_the_protocol_params():
    app, link = App("shop"), RecordingLink({"payment_id": "pay-1", "status": "pending"})
    seen = []

    @app.command("buy")
    async def buy(ctx):
        seen.append(await ctx.request_payment(1250, "USD", "A mug", "order-42"))
        seen.append(await ctx.refund_payment("pay-1", 250))
        seen.append(await ctx.refund_payment("pay-1", 250, refund_ref="r-1"))

    params = {"context": {"call_id": "c-9"}, "command": "buy", "args": []}
    await app.handle("command", params, link)
    assert link.calls == [
        (
            "payments.request",
            {
                "call_id": "c-9",
                "amount": 1250,
                "currency": "USD",
                "description": "A mug",
                "order_ref": "order-42",
            },
        ),
        ("payments.refund", {"call_id": "c-9", "payment_id": "pay-1", "amount": 250}),
        (
            "payments.refund",
            {"call_id": "c-9", "payment_id": "pay-1", "amount": 250, "refund_ref": "r-1"},
        ),
    ]
    assert seen[0] == {"payment_id": "pay-1", "status": "pending"}


def verifying_app(secret=None):
    app, outcomes = App("shop"), []

    async def check(ctx):
        try:
            outcomes.append(ctx.verify_payment_event(secret))
        except SDKError as exc:
            outcomes.append(exc)

    app.event("payment.succeeded")(check)
    app.event("payment.failed")(check)
    app.event("shop.other")(check)
    return app, outcomes


async def test_verify_payment_event_secret_from_argument_then_environment(monkeypatch):
    monkeypatch.delenv(APP_SECRET_ENV, raising=False)
    app, outcomes = verifying_app(SECRET)
    await app.handle("event", event_params("payment.succeeded", signed()), RecordingLink())
    assert outcomes[-1] == signed()

    app, outcomes = verifying_app()
    monkeypatch.setenv(APP_SECRET_ENV, SECRET)
    await app.handle("event", event_params("payment.succeeded", signed()), RecordingLink())
    assert outcomes[-1] == signed()
    monkeypatch.setenv(APP_SECRET_ENV, "another-secret")
    await app.handle("event", event_params("payment.succeeded", signed()), RecordingLink())
    assert isinstance(outcomes[-1], InvalidSignature)


async def test_verify_payment_event_uses_the_links_secret(monkeypatch):
    """The runtime keeps the secret the host sent in ``initialize`` as ``app_secret``."""
    monkeypatch.setenv(APP_SECRET_ENV, "not-this-one")
    link = RecordingLink()
    link.app_secret = SECRET
    app, outcomes = verifying_app()
    await app.handle("event", event_params("payment.succeeded", signed()), link)
    assert outcomes[-1] == signed()
    link.app_secret = None  # a runtime that was sent none: the environment, then
    await app.handle("event", event_params("payment.succeeded", signed()), link)
    assert isinstance(outcomes[-1], InvalidSignature)


async def test_verify_payment_event_without_any_secret_is_a_configuration_error(monkeypatch):
    monkeypatch.delenv(APP_SECRET_ENV, raising=False)
    app, outcomes = verifying_app()
    await app.handle("event", event_params("payment.succeeded", signed()), RecordingLink())
    assert type(outcomes[-1]) is SDKError and APP_SECRET_ENV in str(outcomes[-1])


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("payment.succeeded", {**signed(), "amount": 1}),  # altered
        ("payment.succeeded", PAYLOAD),  # unsigned
        ("payment.succeeded", "not an object"),
        ("payment.failed", signed()),  # a succeeded payload under the other name
        ("shop.other", signed()),  # not a payment event at all
    ],
)
async def test_verify_payment_event_refuses(name, payload):
    app, outcomes = verifying_app(SECRET)
    await app.handle("event", event_params(name, payload), RecordingLink())
    assert isinstance(outcomes[-1], InvalidSignature)


# --- the simulator ----------------------------------------------------------------------------


def shop(manifest=None, **kwargs):
    """A shop whose /buy asks for a payment, whose payment handlers verify the event (and post
    a receipt card), and whose /probe runs ``sim.probe(ctx)``; ``outcomes`` records results."""
    app, outcomes = App("shop"), []

    @app.command("buy")
    async def buy(ctx):
        item = ctx.args[0]
        order_ref = ctx.args[1] if len(ctx.args) > 1 else f"{item}-{ctx.user_id[-6:]}"
        result = await ctx.request_payment(PRICES[item], "USD", f"A {item}", order_ref)
        outcomes.append(result)
        return Reply(ephemeral=f"Confirm the payment {result['payment_id']} in your wallet")

    @app.command("probe")
    async def probe(ctx):
        try:
            outcomes.append(await sim.probe(ctx))
        except Exception as exc:
            outcomes.append(exc)

    @app.event("payment.succeeded")
    async def paid(ctx):
        try:
            payment = ctx.verify_payment_event()
        except InvalidSignature as exc:
            outcomes.append(exc)
            return
        outcomes.append(("paid", ctx.user_id, ctx.conversation_id, payment))
        await ctx.send_card({"title": "Paid", "text": f"Order {payment['order_ref']} is yours"})

    @app.event("payment.failed")
    async def failed(ctx):
        outcomes.append(("failed", ctx.verify_payment_event()))

    sim = Simulator(app, manifest=manifest or SHOP, **kwargs)
    ann, ben = sim.user("ann"), sim.user("ben")
    chat = sim.conversation(members=[ann, ben])
    return sim, ann, ben, chat, outcomes


async def buy(sim, user, chat, outcomes, text="/buy mug"):
    await sim.command(user, chat, text)
    return outcomes[-1]["payment_id"]


async def probe(sim, user, chat, outcomes, steps):
    sim.probe = steps
    await sim.command(user, chat, "/probe")
    return outcomes[-1]


async def test_request_then_confirm_delivers_a_verifiable_event():
    sim, ann, _ben, chat, outcomes = shop()
    payment_id = await buy(sim, ann, chat, outcomes)
    assert outcomes[-1] == {"payment_id": payment_id, "status": "pending"}
    record = sim.payments[payment_id]
    assert {k: record[k] for k in ("user", "user_id", "amount", "currency", "status")} == {
        "user": "ann",
        "user_id": ann.id,
        "amount": 1250,
        "currency": "USD",
        "status": "requested",
    }
    assert record["description"] == "A mug" and record["refunded"] == 0
    assert sim.messages(chat) == []  # nothing happens before the user confirms

    payload = await sim.confirm_payment(ann, payment_id)
    assert sim.payments[payment_id]["status"] == "paid"
    kind, user_id, conversation_id, seen = outcomes[-1]
    assert (kind, user_id, conversation_id) == ("paid", ann.id, chat.id)
    assert seen == payload and verify_event(sim.app_secret, seen)
    assert {k: v for k, v in seen.items() if k not in ("at", "signature")} == {
        "payment_id": payment_id,
        "order_ref": record["order_ref"],
        "amount": 1250,
        "currency": "USD",
        "user_id": ann.id,
        "status": "succeeded",
    }
    assert isinstance(seen["at"], int) and seen["signature"].startswith("v1=")
    assert sim.messages(chat)[-1]["card"]["title"] == "Paid"
    assert sim.payment_events == [{"name": "payment.succeeded", "payload": payload}]
    assert sim.app_secret == TEST_SECRET


async def test_the_simulator_secret_is_the_apps_secret(monkeypatch):
    monkeypatch.setenv(APP_SECRET_ENV, "what-a-shell-may-have-set")
    sim, ann, _ben, chat, outcomes = shop(secret="per-test-secret")
    payment_id = await buy(sim, ann, chat, outcomes)
    payload = await sim.confirm_payment(ann, payment_id)
    assert verify_event("per-test-secret", payload) and outcomes[-1][0] == "paid"


async def test_cancel_and_expiry_deliver_payment_failed():
    sim, ann, _ben, chat, outcomes = shop()
    first = await buy(sim, ann, chat, outcomes)
    second = await buy(sim, ann, chat, outcomes, "/buy hat")
    payload = await sim.cancel_payment(ann, first)
    assert outcomes[-1] == ("failed", payload)
    assert payload["status"] == "failed" and payload["reason"] == "cancelled"
    assert sim.payments[first]["status"] == "cancelled"
    payload = await sim.expire_payment(second)
    assert outcomes[-1] == ("failed", payload) and payload["reason"] == "expired"
    assert sim.payments[second]["status"] == "expired"
    assert sim.messages(chat) == []


async def test_only_the_payer_confirms_once_and_only_what_is_pending():
    sim, ann, ben, chat, outcomes = shop()
    payment_id = await buy(sim, ann, chat, outcomes)
    for user, pid in [(ben, payment_id), (ann, "pay-404")]:  # another's is as unknown
        for action in (sim.confirm_payment, sim.cancel_payment):
            with pytest.raises(HostRefused) as refused:
                await action(user, pid)
            assert refused.value.code == "payment_not_found"
    payload = await sim.confirm_payment(ann, payment_id)
    assert await sim.confirm_payment(ann, payment_id) == payload  # again: nothing happens
    with pytest.raises(HostRefused) as refused:
        await sim.cancel_payment(ann, payment_id)
    assert refused.value.code == "payment_closed"
    assert len(sim.payment_events) == 1 and len(sim.messages(chat)) == 1

    cancelled = await buy(sim, ann, chat, outcomes, "/buy hat")
    await sim.cancel_payment(ann, cancelled)
    for action in (sim.confirm_payment, sim.cancel_payment):
        with pytest.raises(HostRefused) as refused:
            await action(ann, cancelled)
        assert refused.value.code == "payment_closed"
    with pytest.raises(HostRefused):
        await sim.expire_payment(cancelled)


async def test_insufficient_funds_leaves_the_payment_pending():
    sim, ann, _ben, chat, outcomes = shop()
    payment_id = await buy(sim, ann, chat, outcomes)
    assert sim.balance(ann, "USD") is None  # unlimited unless set
    sim.set_balance(ann, "USD", 1000)
    with pytest.raises(HostRefused) as refused:
        await sim.confirm_payment(ann, payment_id)
    assert refused.value.code == "insufficient_funds"
    assert sim.payments[payment_id]["status"] == "requested" and sim.payment_events == []
    sim.set_balance(ann, "USD", 5000)
    await sim.confirm_payment(ann, payment_id)
    assert sim.balance(ann, "USD") == 3750

    async def refund(ctx):
        return await ctx.refund_payment(payment_id, 250)

    await probe(sim, ann, chat, outcomes, refund)
    assert sim.balance(ann, "USD") == 4000


async def test_order_ref_makes_requests_idempotent():
    sim, ann, ben, chat, outcomes = shop()
    payment_id = await buy(sim, ann, chat, outcomes, "/buy mug order-1")
    assert await buy(sim, ann, chat, outcomes, "/buy mug order-1") == payment_id
    assert outcomes[-1]["status"] == "pending" and len(sim.payments) == 1
    await sim.confirm_payment(ann, payment_id)
    await buy(sim, ann, chat, outcomes, "/buy mug order-1")
    assert outcomes[-1] == {"payment_id": payment_id, "status": "paid"}
    assert len(sim.payment_events) == 1  # no second charge, no second event

    for user, text in [(ann, "/buy hat order-1"), (ben, "/buy mug order-1")]:
        with pytest.raises(AppCallError) as failure:  # uncaught by the app: its error answer
            await sim.command(user, chat, text)
        assert failure.value.code == "order_ref_reused"
    assert sim.calls[-1] == {"method": "payments.request", "ok": False, "error": "order_ref_reused"}


async def test_order_ref_reused_is_an_exception_the_app_can_catch():
    sim, ann, _ben, chat, outcomes = shop()
    await buy(sim, ann, chat, outcomes, "/buy mug order-1")

    async def reuse(ctx):
        return await ctx.request_payment(999, "USD", "Something else", "order-1")

    outcome = await probe(sim, ann, chat, outcomes, reuse)
    assert isinstance(outcome, OrderRefReused) and outcome.code == "order_ref_reused"


@pytest.mark.parametrize(
    "params",
    [
        {"amount": 0},
        {"amount": -5},
        {"amount": True},
        {"amount": 12.5},
        {"amount": "1250"},
        {"currency": "usd"},
        {"currency": "US"},
        {"currency": None},
        {"description": ""},
        {"description": "   "},
        {"description": "x" * 201},
        {"order_ref": ""},
        {"order_ref": "order 1"},
        {"order_ref": "o" * 65},
        {"order_ref": "order/1"},
    ],
)
async def test_payment_requests_are_validated(params):
    sim, ann, _ben, chat, outcomes = shop()
    good = {"amount": 1250, "currency": "USD", "description": "A mug", "order_ref": "o-1"}

    async def request(ctx):
        return await ctx.call("payments.request", **{**good, **params})

    outcome = await probe(sim, ann, chat, outcomes, request)
    assert isinstance(outcome, InvalidParams)
    assert sim.payments == {}


async def test_limits_of_the_accepted_values():
    sim, ann, _ben, chat, outcomes = shop()

    async def request(ctx):
        ref = "A-z_0.9:" + "x" * 56
        return await ctx.request_payment(1, "JPY", "  " + "d" * 200 + " ", ref)

    outcome = await probe(sim, ann, chat, outcomes, request)
    assert outcome["status"] == "pending"
    assert sim.payments[outcome["payment_id"]]["description"] == "d" * 200  # trimmed


async def test_refunds_add_up_to_the_amount_paid_at_most():
    sim, ann, _ben, chat, outcomes = shop()
    payment_id = await buy(sim, ann, chat, outcomes, "/buy hat")  # 1000

    async def refund(amount, ref=None):
        async def steps(ctx):
            return await ctx.refund_payment(payment_id, amount, ref)

        return await probe(sim, ann, chat, outcomes, steps)

    assert isinstance(await refund(100), NotPaid)
    assert isinstance(await refund(0), NotPaid)  # the status is checked first, as the host does
    await sim.confirm_payment(ann, payment_id)
    first = await refund(300)
    assert first["refunded_total"] == 300 and first["refund_id"]
    assert (await refund(600))["refunded_total"] == 900
    over = await refund(101)
    assert isinstance(over, RefundExceedsPayment) and over.code == "refund_exceeds_payment"
    assert (await refund(100))["refunded_total"] == 1000
    assert isinstance(await refund(1), RefundExceedsPayment)
    assert isinstance(await refund(0), InvalidParams)
    record = sim.payments[payment_id]
    assert record["refunded"] == 1000 and [r["amount"] for r in record["refunds"]] == [
        300,
        600,
        100,
    ]
    assert record["status"] == "paid"


async def test_refund_ref_makes_refunds_idempotent():
    sim, ann, _ben, chat, outcomes = shop()
    payment_id = await buy(sim, ann, chat, outcomes)
    await sim.confirm_payment(ann, payment_id)

    async def refund(amount, ref, pid=payment_id):
        async def steps(ctx):
            return await ctx.refund_payment(pid, amount, refund_ref=ref)

        return await probe(sim, ann, chat, outcomes, steps)

    first = await refund(500, "r-1")
    again = await refund(500, "r-1")
    assert again == first == {"refund_id": first["refund_id"], "refunded_total": 500}
    assert isinstance(await refund(400, "r-1"), InvalidParams)  # same ref, another amount
    assert isinstance(await refund(500, "bad ref"), InvalidParams)
    assert (await refund(500, "r-2"))["refunded_total"] == 1000
    assert (await refund(500, "r-2"))["refunded_total"] == 1000  # a retry, even when full
    assert len(sim.payments[payment_id]["refunds"]) == 2

    other = await buy(sim, ann, chat, outcomes, "/buy hat")  # refund_refs are per payment
    await sim.confirm_payment(ann, other)
    assert (await refund(100, "r-1", other))["refunded_total"] == 100


async def test_refunds_of_unknown_payments():
    sim, ann, _ben, chat, outcomes = shop()
    for pid in ("pay-404", None, 7):

        async def steps(ctx, pid=pid):
            return await ctx.call("payments.refund", payment_id=pid, amount=100)

        assert isinstance(await probe(sim, ann, chat, outcomes, steps), NotFound)


async def test_permissions_are_checked():
    request_only = {
        **SHOP,
        "permissions": ["messages.send_card", "messages.reply_ephemeral", "payments.request"],
    }
    sim, ann, _ben, chat, outcomes = shop(request_only)
    payment_id = await buy(sim, ann, chat, outcomes)
    await sim.confirm_payment(ann, payment_id)

    async def refund(ctx):
        return await ctx.refund_payment(payment_id, 100)

    assert isinstance(await probe(sim, ann, chat, outcomes, refund), PermissionDenied)

    no_payments = {**SHOP, "permissions": ["messages.reply_ephemeral"]}
    with pytest.warns(UserWarning, match="payments.request"):
        sim, ann, _ben, chat, outcomes = shop(no_payments)

    async def request(ctx):
        return await ctx.request_payment(100, "USD", "A mug", "o-1")

    outcome = await probe(sim, ann, chat, outcomes, request)
    assert isinstance(outcome, PermissionDenied) and outcome.code == "permission_denied"
    assert sim.payments == {}
    with pytest.raises(HostRefused) as refused:  # no payments.request: no payment events
        await sim.deliver_event("payment.succeeded", signed(), user=ann, conversation=chat)
    assert refused.value.code == "event_not_accepted"


async def test_forged_payment_events_are_refused():
    sim, ann, _ben, chat, outcomes = shop()
    payment_id = await buy(sim, ann, chat, outcomes)
    forged = {
        "payment_id": payment_id,
        "order_ref": "mug-x",
        "amount": 1250,
        "currency": "USD",
        "user_id": ann.id,
        "status": "succeeded",
        "at": 1,
    }
    attempts = [
        forged,  # no signature
        {**forged, "signature": "v1=" + "ab" * 32},  # a made-up one
        {**forged, "signature": sign_event("a-guessed-secret", forged)},  # the wrong secret
    ]
    for payload in attempts:
        await sim.deliver_event("payment.succeeded", payload, user=ann, conversation=chat)
        assert isinstance(outcomes[-1], InvalidSignature)
    assert sim.messages(chat) == []

    # a genuine event, altered on its way: a cheaper amount, or failure replayed as success
    genuine = await sim.cancel_payment(ann, payment_id)
    replayed = {**genuine, "status": "succeeded"}
    await sim.deliver_event("payment.succeeded", replayed, user=ann, conversation=chat)
    assert isinstance(outcomes[-1], InvalidSignature)
    await sim.deliver_event("payment.succeeded", genuine, user=ann, conversation=chat)
    assert isinstance(outcomes[-1], InvalidSignature)  # status "failed" under the wrong name
    assert sim.messages(chat) == []
    paid = await sim.confirm_payment(ann, await buy(sim, ann, chat, outcomes, "/buy hat"))
    await sim.deliver_event("payment.succeeded", {**paid, "amount": 1}, user=ann, conversation=chat)
    assert isinstance(outcomes[-1], InvalidSignature)
    assert len(sim.messages(chat)) == 1  # the receipt of the genuine event only

    # a correctly signed event verifies whatever its route: fulfil each payment_id once
    await sim.deliver_event(
        "payment.succeeded",
        {**forged, "signature": sign_event(TEST_SECRET, forged)},
        user=ann,
        conversation=chat,
    )
    assert outcomes[-1][0] == "paid"
