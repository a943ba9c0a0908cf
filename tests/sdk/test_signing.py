"""Remote-app request signatures and web-view launch tokens."""

from __future__ import annotations

import pytest

from sdk.errors import SignatureError
from sdk.signing import (
    NonceCache,
    make_launch_token,
    sign_request,
    verify_launch_token,
    verify_request,
)

SECRET = "s3cret-for-tests"
BODY = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{}}'
NOW = 1_750_000_000


def code_of(call) -> str:
    with pytest.raises(SignatureError) as caught:
        call()
    return caught.value.code


def test_a_signed_request_verifies():
    headers = sign_request(SECRET, BODY, timestamp=NOW, app_id="poll")
    assert headers["X-Aetherial-App"] == "poll"
    assert headers["X-Aetherial-Signature"].startswith("v1=")
    verify_request(SECRET, headers, BODY, now=NOW + 10, nonce_cache=NonceCache())


def test_header_names_are_case_insensitive():
    headers = {k.lower(): v for k, v in sign_request(SECRET, BODY, timestamp=NOW).items()}
    verify_request(SECRET, headers, BODY, now=NOW, nonce_cache=NonceCache())


def test_a_tampered_body_or_wrong_secret_is_a_bad_signature():
    headers = sign_request(SECRET, BODY, timestamp=NOW)
    cache = NonceCache()
    assert (
        code_of(lambda: verify_request(SECRET, headers, BODY + b" ", now=NOW, nonce_cache=cache))
        == "bad_signature"
    )
    assert (
        code_of(lambda: verify_request("other", headers, BODY, now=NOW, nonce_cache=cache))
        == "bad_signature"
    )
    forged = {**headers, "X-Aetherial-Timestamp": str(NOW + 1)}
    assert (
        code_of(lambda: verify_request(SECRET, forged, BODY, now=NOW, nonce_cache=cache))
        == "bad_signature"
    )
    missing = {k: v for k, v in headers.items() if k != "X-Aetherial-Nonce"}
    assert (
        code_of(lambda: verify_request(SECRET, missing, BODY, now=NOW, nonce_cache=cache))
        == "bad_signature"
    )
    # None of those consumed the nonce: the genuine request still verifies.
    verify_request(SECRET, headers, BODY, now=NOW, nonce_cache=cache)


def test_a_timestamp_outside_five_minutes_is_expired():
    cache = NonceCache()
    old = sign_request(SECRET, BODY, timestamp=NOW - 301)
    assert (
        code_of(lambda: verify_request(SECRET, old, BODY, now=NOW, nonce_cache=cache)) == "expired"
    )
    future = sign_request(SECRET, BODY, timestamp=NOW + 301)
    assert (
        code_of(lambda: verify_request(SECRET, future, BODY, now=NOW, nonce_cache=cache))
        == "expired"
    )
    verify_request(
        SECRET, sign_request(SECRET, BODY, timestamp=NOW - 299), BODY, now=NOW, nonce_cache=cache
    )


def test_a_replayed_nonce_is_refused_for_the_whole_window():
    cache = NonceCache()
    headers = sign_request(SECRET, BODY, timestamp=NOW + 290)  # from a clock running ahead
    verify_request(SECRET, headers, BODY, now=NOW, nonce_cache=cache)
    assert (
        code_of(lambda: verify_request(SECRET, headers, BODY, now=NOW + 1, nonce_cache=cache))
        == "replayed"
    )
    # Still refused after 5 minutes of our clock: the timestamp is still inside its window.
    assert (
        code_of(lambda: verify_request(SECRET, headers, BODY, now=NOW + 301, nonce_cache=cache))
        == "replayed"
    )


def test_a_nonce_must_be_long_and_plain():
    with pytest.raises(ValueError):
        sign_request(SECRET, BODY, nonce="short")
    headers = sign_request(SECRET, BODY, timestamp=NOW)
    bad = {**headers, "X-Aetherial-Nonce": "a.b" * 8}
    assert (
        code_of(lambda: verify_request(SECRET, bad, BODY, now=NOW, nonce_cache=NonceCache()))
        == "bad_signature"
    )


def test_the_nonce_cache_is_bounded_and_expires():
    cache = NonceCache(max_entries=3)
    for index in range(10):
        assert cache.check_and_add(f"nonce-{index:012d}", NOW, now=NOW)
    assert len(cache) == 3
    cache = NonceCache()
    assert cache.check_and_add("n" * 16, NOW, now=NOW)
    assert not cache.check_and_add("n" * 16, NOW, now=NOW + 300)
    assert cache.check_and_add("n" * 16, NOW + 301, now=NOW + 301)  # expired, then new again


PAYLOAD = {"app_id": "poll", "user_id": "u-1", "conversation_id": "c-1"}


def test_a_launch_token_verifies():
    token = make_launch_token(SECRET, PAYLOAD, ttl=60, now=NOW)
    payload = verify_launch_token(token, SECRET, now=NOW + 59)
    assert payload["user_id"] == "u-1" and payload["exp"] == NOW + 60
    assert len(payload["nonce"]) >= 16


def test_an_expired_launch_token():
    token = make_launch_token(SECRET, PAYLOAD, ttl=60, now=NOW)
    assert code_of(lambda: verify_launch_token(token, SECRET, now=NOW + 60)) == "expired"


def test_a_tampered_launch_token():
    token = make_launch_token(SECRET, PAYLOAD, now=NOW)
    other = make_launch_token(SECRET, {**PAYLOAD, "user_id": "u-2"}, now=NOW)
    spliced = other.split(".")[0] + "." + token.split(".")[1]
    assert code_of(lambda: verify_launch_token(spliced, SECRET, now=NOW)) == "bad_signature"
    assert code_of(lambda: verify_launch_token(token, "other", now=NOW)) == "bad_signature"
    for garbage in ("", "abc", "a.b.c", "!!!.???"):
        assert code_of(lambda g=garbage: verify_launch_token(g, SECRET, now=NOW)) == (
            "bad_signature"
        )


def test_a_launch_token_used_twice_with_a_cache():
    token = make_launch_token(SECRET, PAYLOAD, now=NOW)
    cache = NonceCache()
    verify_launch_token(token, SECRET, now=NOW, nonce_cache=cache)
    assert (
        code_of(lambda: verify_launch_token(token, SECRET, now=NOW, nonce_cache=cache))
        == "replayed"
    )
