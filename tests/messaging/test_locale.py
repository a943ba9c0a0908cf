"""A person's locale over real HTTP: none at first, set and cleared with ``PATCH /api/v1/me``,
shown in your own profile (and the sign-in answer) only, and refused — with nothing written —
unless it is a BCP 47 tag in the platform's form."""

from __future__ import annotations

import pytest

from messaging.actions.accounts import check_locale
from storage.errors import AppError
from tests.helpers import ApiClient

VALID = ["en", "de", "ja", "fil", "en-GB", "de-DE", "es-419", "zh-Hans", "zh-Hans-CN", "sr-Latn-RS"]
INVALID = [
    "",
    " en",
    "en ",
    "en\n",
    "EN",
    "en-gb",
    "en_GB",
    "e",
    "engl",
    "en-",
    "en-GBR",
    "en-1234",
    "zh-hans-CN",
    "zh-HANS",
    "zh-CN-Hans",
    "de-DE-1996",
    "en-US-u-ca-gregory",
    "x-private",
    "🇩🇪",
    "de-DE" + "-AA" * 11,
]


async def me(api: ApiClient) -> dict:
    status, body = await api.get("/api/v1/me")
    assert status == 200, body
    return body["user"]


async def test_a_new_account_has_no_locale_and_sets_one(api: ApiClient):
    tokens = await api.signup("lena")
    assert tokens["user"]["locale"] is None
    assert (await me(api))["locale"] is None

    status, body = await api.patch("/api/v1/me", json={"locale": "de-DE"})
    assert status == 200, body
    assert body["user"]["locale"] == "de-DE"
    assert body["user"]["display_name"] == "lena"  # nothing else changed
    assert (await me(api))["locale"] == "de-DE"
    assert (await api.login("lena"))["user"]["locale"] == "de-DE"

    # with other fields, and cleared with null (apps then get "en")
    status, body = await api.patch("/api/v1/me", json={"locale": "zh-Hans-CN", "bio": "hi"})
    assert status == 200 and body["user"]["locale"] == "zh-Hans-CN", body
    status, body = await api.patch("/api/v1/me", json={"locale": None})
    assert status == 200 and body["user"]["locale"] is None, body
    assert (await me(api))["locale"] is None


async def test_every_valid_form_is_kept_as_sent(api: ApiClient):
    await api.signup("tagger")
    for locale in VALID:
        status, body = await api.patch("/api/v1/me", json={"locale": locale})
        assert (status, body["user"]["locale"]) == (200, locale), body
        assert (await me(api))["locale"] == locale


async def test_bad_locales_are_refused_and_change_nothing(api: ApiClient):
    await api.signup("picky")
    status, _ = await api.patch("/api/v1/me", json={"locale": "en-GB"})
    assert status == 200
    for locale in INVALID:
        status, body = await api.patch(
            "/api/v1/me", json={"locale": locale, "display_name": "Changed"}
        )
        assert status == 400, (locale, body)
        assert body["error"]["code"] == "invalid_field", (locale, body)
        assert body["error"]["details"]["field"] == "locale", (locale, body)
    for wrong in (5, ["en"], {"tag": "en"}, True):
        status, body = await api.patch("/api/v1/me", json={"locale": wrong})
        assert (status, body["error"]["code"]) == (400, "wrong_type"), (wrong, body)
        assert body["error"]["details"]["field"] == "locale"
    user = await me(api)
    assert (user["locale"], user["display_name"]) == ("en-GB", "picky")


async def test_only_the_owner_sees_the_locale(api: ApiClient):
    await api.signup("owner")
    status, _ = await api.patch("/api/v1/me", json={"locale": "fr-FR"})
    assert status == 200
    other = ApiClient(api.base_url)
    try:
        await other.signup("viewer")
        status, body = await other.get("/api/v1/users/search?q=owner")
        assert status == 200, body
        found = [u for u in body["users"] if u["username"] == "owner"]
        assert found and "locale" not in found[0], body
    finally:
        await other.close()


@pytest.mark.parametrize("locale", VALID)
def test_check_locale_accepts(locale):
    assert check_locale(locale) == locale


@pytest.mark.parametrize("locale", [*INVALID, 5, b"en"])
def test_check_locale_refuses(locale):
    with pytest.raises(AppError) as refused:
        check_locale(locale)
    assert refused.value.code == "invalid_field"
    assert refused.value.details == {"field": "locale"}


def test_check_locale_none_clears():
    assert check_locale(None) is None
