"""Card top-ups through Stripe: the real ``stripe`` library talks HTTP to a local fake Stripe,
and the wallet is credited only by a verified webhook, exactly once."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from gateway.app import create_app
from tests.conftest import make_config
from tests.helpers import ApiClient
from tests.wallet.fake_stripe import FakeStripe, event, sign, signed_delivery
from tests.wallet.wallet_helpers import check_ledger, new_key

SECRET_KEY = "sk_test_aetherial_0123456789"
WEBHOOK_SECRET = "whsec_test_aetherial"
TOPUPS = "/api/v1/wallet/topups"
WEBHOOK = "/api/v1/wallet/stripe/webhook"


@pytest.fixture
async def fake_stripe(aiohttp_server) -> FakeStripe:
    fake = FakeStripe()
    server = await aiohttp_server(fake.app)
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


async def _client(aiohttp_server, config) -> ApiClient:
    server = await aiohttp_server(create_app(config))
    return ApiClient(str(server.make_url("")).rstrip("/"))


@pytest.fixture
async def api(aiohttp_server, mongo_url, mongo_db_name, tmp_path, fake_stripe):
    """A gateway with Stripe configured against the fake, and a client for it."""
    config = make_config(
        mongo_url,
        mongo_db_name,
        tmp_path / "var",
        stripe_secret_key=SECRET_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=fake_stripe.url,
    )
    client = await _client(aiohttp_server, config)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def user(api) -> dict:
    return (await api.signup())["user"]


async def deliver(api: ApiClient, body: dict, *, secret=WEBHOOK_SECRET, timestamp=None):
    payload, headers = signed_delivery(body, secret, timestamp)
    return await api.post(WEBHOOK, data=payload, headers=headers)


async def balance(api: ApiClient, currency: str = "USD") -> int:
    status, body = await api.get("/api/v1/wallet")
    assert status == 200, body
    return next((b["amount"] for b in body["balances"] if b["currency"] == currency), 0)


async def stripe_entries(api: ApiClient) -> list[dict]:
    status, body = await api.get("/api/v1/wallet/transactions")
    assert status == 200, body
    return [t for t in body["transactions"] if t["kind"] == "stripe_topup"]


async def create(api: ApiClient, amount=1250, currency="USD", key=None) -> dict:
    status, body = await api.post(
        TOPUPS, json={"amount": amount, "currency": currency, "idempotency_key": key or new_key()}
    )
    assert status == 201, body
    return body["topup"]


async def test_topup_creates_a_payment_intent_and_credits_only_on_the_webhook(
    api, user, fake_stripe, mongo_db
):
    status, wallet = await api.get("/api/v1/wallet")
    assert status == 200 and wallet["card_topup"] is True
    topup = await create(api, 1250, "USD", key="card-1")
    assert topup["amount"] == 1250 and topup["currency"] == "USD" and topup["exponent"] == 2
    assert topup["status"] == "requires_payment"
    [intent] = fake_stripe.created
    assert topup["payment_intent_id"] == intent["id"]
    assert topup["client_secret"] == intent["client_secret"]
    assert intent["amount"] == 1250 and intent["currency"] == "usd"
    assert intent["metadata"] == {"user_id": user["id"], "topup_id": topup["id"]}
    assert intent["automatic_payment_methods"] == {"enabled": True}
    [sent] = [r for r in fake_stripe.requests if r["method"] == "POST"]
    assert sent["headers"]["Authorization"] == f"Bearer {SECRET_KEY}"
    assert sent["headers"]["Idempotency-Key"]
    assert "card-1" not in sent["headers"]["Idempotency-Key"]  # derived, not the client's own

    # Paying is between the customer and Stripe: nothing is credited until Stripe says so.
    assert await balance(api) == 0
    status, body = await api.get(f"{TOPUPS}/{topup['id']}")
    assert status == 200 and body["topup"]["status"] == "requires_payment"
    assert body["topup"]["client_secret"] is None

    status, body = await deliver(api, fake_stripe.succeed(intent["id"]))
    assert status == 200 and body == {"received": True}
    assert await balance(api) == 1250
    [entry] = await stripe_entries(api)
    assert entry["amount"] == 1250 and entry["currency"] == "USD"
    assert entry["details"]["payment_intent_id"] == intent["id"]
    assert entry["details"]["label"] == "card top-up (Stripe)"
    status, body = await api.get(f"{TOPUPS}/{topup['id']}")
    assert body["topup"]["status"] == "succeeded"
    balances = await check_ledger(mongo_db)
    assert balances["external:stripe:USD"] == -1250


async def test_same_idempotency_key_makes_one_payment_intent(api, user, fake_stripe):
    first = await create(api, 2000, "EUR", key="same")
    again = await create(api, 2000, "EUR", key="same")
    assert again == first
    assert len(fake_stripe.created) == 1
    # Concurrent retries too.
    results = await asyncio.gather(*(
        api.post(TOPUPS, json={"amount": 700, "currency": "EUR", "idempotency_key": "burst"})
        for _ in range(5)
    ))  # fmt: skip
    assert {status for status, _ in results} == {201}
    assert len({body["topup"]["payment_intent_id"] for _, body in results}) == 1
    assert len(fake_stripe.created) == 2
    # The same key for another amount is refused, and makes no PaymentIntent.
    status, body = await api.post(
        TOPUPS, json={"amount": 2001, "currency": "EUR", "idempotency_key": "same"}
    )
    assert status == 409 and body["error"]["code"] == "idempotency_key_reused"
    assert len(fake_stripe.created) == 2
    # Another user's identical key is another top-up.
    other = ApiClient(api.base_url)
    try:
        await other.signup()
        status, body = await other.post(
            TOPUPS, json={"amount": 2000, "currency": "EUR", "idempotency_key": "same"}
        )
        assert status == 201 and body["topup"]["id"] != first["id"], body
        assert len(fake_stripe.created) == 3
        # …and not theirs to read.
        status, body = await other.get(f"{TOPUPS}/{first['id']}")
        assert status == 404 and body["error"]["code"] == "not_found"
    finally:
        await other.close()


async def test_a_redelivered_event_credits_once(api, user, fake_stripe, mongo_db):
    topup = await create(api, 500)
    succeeded = fake_stripe.succeed(topup["payment_intent_id"])
    for _ in range(2):
        status, body = await deliver(api, succeeded)
        assert status == 200 and body == {"received": True}
    # Stripe may also send the same payment as another event (new id, new signature time).
    status, _ = await deliver(api, {**succeeded, "id": "evt_again"})
    assert status == 200
    assert await balance(api) == 500
    assert len(await stripe_entries(api)) == 1
    await check_ledger(mongo_db)


async def test_concurrent_deliveries_credit_once(api, user, fake_stripe, mongo_db):
    topup = await create(api, 900)
    succeeded = fake_stripe.succeed(topup["payment_intent_id"])
    results = await asyncio.gather(*(deliver(api, succeeded) for _ in range(5)))
    assert [status for status, _ in results] == [200] * 5, results
    assert await balance(api) == 900
    assert len(await stripe_entries(api)) == 1
    balances = await check_ledger(mongo_db)
    assert balances["external:stripe:USD"] == -900


async def test_signature_is_checked(api, user, fake_stripe, mongo_db):
    topup = await create(api, 1000)
    succeeded = fake_stripe.succeed(topup["payment_intent_id"])

    # Tampered: signed for 1000, delivered claiming a bigger payment.
    payload, headers = signed_delivery(succeeded, WEBHOOK_SECRET)
    tampered = payload.replace(b'"amount_received": 1000', b'"amount_received": 99000')
    assert tampered != payload
    status, body = await api.post(WEBHOOK, data=tampered, headers=headers)
    assert status == 400 and body["error"]["code"] == "invalid_signature"

    # Signed with another secret.
    status, body = await deliver(api, succeeded, secret="whsec_someone_else")
    assert status == 400 and body["error"]["code"] == "invalid_signature"

    # Too old: a replay from an hour ago.
    status, body = await deliver(api, succeeded, timestamp=int(time.time()) - 3600)
    assert status == 400 and body["error"]["code"] == "invalid_signature"

    # No signature, an empty one, a malformed one.
    for bad in (None, "", "garbage", "t=abc,v1=def", f"t={int(time.time())}"):
        headers = {"Content-Type": "application/json"}
        if bad is not None:
            headers["Stripe-Signature"] = bad
        status, body = await api.post(WEBHOOK, data=payload, headers=headers)
        assert status == 400 and body["error"]["code"] == "invalid_signature", (bad, body)

    assert await balance(api) == 0
    assert await stripe_entries(api) == []
    # The genuine delivery still works afterwards.
    status, _ = await deliver(api, succeeded)
    assert status == 200 and await balance(api) == 1000
    await check_ledger(mongo_db)


async def test_malformed_bodies_are_refused(api, user):
    for payload in (b"not json", b"[1, 2]", b"\xff\xfe", b'{"object": "event"}', b""):
        headers = {"Stripe-Signature": sign(payload, WEBHOOK_SECRET)}
        status, body = await api.post(WEBHOOK, data=payload, headers=headers)
        assert status == 400, (payload, body)
        assert body["error"]["code"] in ("invalid_payload", "invalid_signature"), body
    # A payment_intent event without a payment intent in it.
    status, body = await deliver(api, event("payment_intent.succeeded", {"object": "x"}))
    assert status == 400 and body["error"]["code"] == "invalid_payload"


async def test_amount_mismatch_credits_nothing(api, user, fake_stripe, mongo_db):
    topup = await create(api, 1000)
    short = fake_stripe.succeed(topup["payment_intent_id"], amount_received=10)
    status, body = await deliver(api, short)
    assert status == 400 and body["error"]["code"] == "amount_mismatch"
    other_currency = json.loads(json.dumps(short))
    other_currency["data"]["object"].update(amount_received=1000, currency="eur")
    status, body = await deliver(api, other_currency)
    assert status == 400 and body["error"]["code"] == "amount_mismatch"
    assert await balance(api) == 0 and await balance(api, "EUR") == 0
    assert await stripe_entries(api) == []
    status, body = await api.get(f"{TOPUPS}/{topup['id']}")
    assert body["topup"]["status"] == "requires_payment"
    await check_ledger(mongo_db)


async def test_unknown_events_and_payment_intents_are_acknowledged(api, user, fake_stripe):
    status, body = await deliver(api, event("customer.created", {"id": "cus_1", "object": "x"}))
    assert status == 200 and body == {"received": True}
    foreign = event(
        "payment_intent.succeeded",
        {"id": "pi_not_ours", "object": "payment_intent", "amount": 5, "amount_received": 5,
         "currency": "usd", "status": "succeeded", "metadata": {}},
    )  # fmt: skip
    status, body = await deliver(api, foreign)
    assert status == 200 and body == {"received": True}
    assert await balance(api) == 0


async def test_failed_payment_then_success(api, user, fake_stripe):
    topup = await create(api, 300)
    status, _ = await deliver(api, fake_stripe.fail(topup["payment_intent_id"]))
    assert status == 200
    status, body = await api.get(f"{TOPUPS}/{topup['id']}")
    assert body["topup"]["status"] == "failed"
    assert await balance(api) == 0
    # The customer tries another card.
    status, _ = await deliver(api, fake_stripe.succeed(topup["payment_intent_id"]))
    assert status == 200 and await balance(api) == 300
    # A late failure never undoes a success.
    status, _ = await deliver(api, fake_stripe.fail(topup["payment_intent_id"]))
    status, body = await api.get(f"{TOPUPS}/{topup['id']}")
    assert body["topup"]["status"] == "succeeded" and await balance(api) == 300


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"amount": -100, "currency": "USD"}, "invalid_amount"),
        ({"amount": 0, "currency": "USD"}, "invalid_amount"),
        ({"amount": 12.5, "currency": "USD"}, "wrong_type"),
        ({"amount": "1250", "currency": "USD"}, "wrong_type"),
        ({"amount": True, "currency": "USD"}, "wrong_type"),
        ({"amount": 10**30, "currency": "USD"}, "invalid_field"),
        ({"amount": 10**15, "currency": "USD"}, "amount_too_large"),
        ({"amount": 1250, "currency": "XYZ"}, "unknown_currency"),
        ({"amount": 1250, "currency": "usd"}, "unknown_currency"),
        ({"amount": 1255, "currency": "KWD"}, "invalid_amount"),
        ({"amount": 1250}, "missing_field"),
        ({"amount": 1250, "currency": "USD", "idempotency_key": None}, "wrong_type"),
        ({"amount": 1250, "currency": "USD", "idempotency_key": "has space"}, "invalid_field"),
        ({"amount": 1250, "currency": "USD", "idempotency_key": "k", "x": 1}, "unknown_field"),
    ],
)
async def test_bad_input_makes_no_payment_intent(api, user, fake_stripe, body, code):
    if "idempotency_key" not in body and code != "missing_field":
        body = {**body, "idempotency_key": new_key()}
    status, reply = await api.post(TOPUPS, json=body)
    assert status in (400, 413), reply
    assert reply["error"]["code"] == code, reply
    assert fake_stripe.requests == []


async def test_missing_idempotency_key_is_refused(api, user, fake_stripe):
    status, body = await api.post(TOPUPS, json={"amount": 1250, "currency": "USD"})
    assert status == 400 and body["error"]["code"] == "missing_field"
    assert body["error"]["details"]["field"] == "idempotency_key"
    assert fake_stripe.requests == []


async def test_stripe_amount_limits_become_invalid_amount(api, user, fake_stripe):
    # Within our limit, beyond what Stripe takes in one payment.
    status, body = await api.post(
        TOPUPS, json={"amount": 100_000_000, "currency": "USD", "idempotency_key": new_key()}
    )
    assert status == 400 and body["error"]["code"] == "invalid_amount", body
    assert fake_stripe.created == []


async def test_topup_needs_authentication(api, fake_stripe):
    status, body = await api.post(
        TOPUPS, json={"amount": 100, "currency": "USD", "idempotency_key": "k"}
    )
    assert status == 401 and body["error"]["code"] == "missing_token"
    assert fake_stripe.requests == []


async def test_isk_amounts_are_sent_in_stripes_unit(api, user, fake_stripe):
    # ISK has no minor unit in ISO 4217, but Stripe's API keeps two decimals for it.
    topup = await create(api, 500, "ISK")
    assert topup["amount"] == 500 and topup["exponent"] == 0
    [intent] = fake_stripe.created
    assert intent["amount"] == 50_000 and intent["currency"] == "isk"
    status, _ = await deliver(api, fake_stripe.succeed(intent["id"]))
    assert status == 200 and await balance(api, "ISK") == 500


async def test_stripe_errors_are_502_and_never_leak_the_key(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path, fake_stripe
):
    bad_key = "rk_live_secretvalue123456789"
    config = make_config(
        mongo_url,
        mongo_db_name,
        tmp_path / "var",
        stripe_secret_key=bad_key,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=fake_stripe.url,
    )
    api = await _client(aiohttp_server, config)
    try:
        await api.signup()
        status, body = await api.post(
            TOPUPS, json={"amount": 100, "currency": "USD", "idempotency_key": "k"}
        )
        assert status == 502 and body["error"]["code"] == "payment_provider_error", body
        assert "secretvalue" not in json.dumps(body)
        assert fake_stripe.created == []
        assert await balance(api) == 0
    finally:
        await api.close()


async def test_unreachable_stripe_is_502(aiohttp_server, mongo_url, mongo_db_name, tmp_path):
    config = make_config(
        mongo_url,
        mongo_db_name,
        tmp_path / "var",
        stripe_secret_key=SECRET_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base="http://127.0.0.1:9",  # the discard port: nothing listens
    )
    api = await _client(aiohttp_server, config)
    try:
        await api.signup()
        status, body = await api.post(
            TOPUPS, json={"amount": 100, "currency": "USD", "idempotency_key": "k"}
        )
        assert status == 502 and body["error"]["code"] == "payment_provider_error", body
    finally:
        await api.close()


async def test_without_stripe_configured(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path, fake_stripe
):
    config = make_config(mongo_url, mongo_db_name, tmp_path / "var")
    api = await _client(aiohttp_server, config)
    try:
        await api.signup()
        status, body = await api.get("/api/v1/wallet")
        assert body["card_topup"] is False
        status, body = await api.post(
            TOPUPS, json={"amount": 100, "currency": "USD", "idempotency_key": "k"}
        )
        assert status == 501 and body["error"]["code"] == "stripe_not_configured"
        assert "STRIPE_SECRET_KEY" in body["error"]["message"]
        status, body = await deliver(api, event("payment_intent.succeeded", {"id": "pi_1"}))
        assert status == 501 and body["error"]["code"] == "stripe_not_configured"
        assert fake_stripe.requests == []
        assert await balance(api) == 0
    finally:
        await api.close()


async def test_webhook_is_in_the_openapi_document_without_auth(api):
    status, spec = await api.get("/openapi.json")
    assert status == 200
    webhook = spec["paths"][WEBHOOK]["post"]
    assert "security" not in webhook
    assert "security" in spec["paths"][TOPUPS]["post"]
