"""A person's time zone over real HTTP: none at first, set and cleared with ``PATCH /api/v1/me``,
shown in your own profile (and the sign-in answer) only, and refused — with nothing written —
unless it is an IANA time zone name of the tz database."""

from __future__ import annotations

import pytest

from messaging.actions.accounts import check_time_zone, time_zones
from storage.errors import AppError
from tests.helpers import ApiClient

VALID = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/Argentina/Buenos_Aires",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Etc/GMT+5",
]
INVALID = [
    "",
    " UTC",
    "UTC ",
    "europe/berlin",  # names are case-sensitive
    "Europe/Atlantis",
    "Europe",
    "Berlin",
    "CEST",
    "+02:00",
    "localtime",  # a file of the tz database, the server's own zone: not a place
    "../../etc/passwd",
    "Europe/Berlin\n",
    "A" * 65,  # over the schema's maxLength
]


async def me(api: ApiClient) -> dict:
    status, body = await api.get("/api/v1/me")
    assert status == 200, body
    return body["user"]


async def test_a_new_account_has_no_time_zone_and_sets_one(api: ApiClient):
    tokens = await api.signup("tz_lena")
    assert tokens["user"]["time_zone"] is None
    assert (await me(api))["time_zone"] is None

    status, body = await api.patch("/api/v1/me", json={"time_zone": "Europe/Berlin"})
    assert status == 200, body
    assert body["user"]["time_zone"] == "Europe/Berlin"
    assert body["user"]["locale"] is None  # nothing else changed
    assert (await me(api))["time_zone"] == "Europe/Berlin"
    assert (await api.login("tz_lena"))["user"]["time_zone"] == "Europe/Berlin"

    # with other fields, and cleared with null (apps then get "UTC")
    status, body = await api.patch(
        "/api/v1/me", json={"time_zone": "Asia/Tokyo", "locale": "ja-JP"}
    )
    assert status == 200, body
    assert (body["user"]["time_zone"], body["user"]["locale"]) == ("Asia/Tokyo", "ja-JP")
    status, body = await api.patch("/api/v1/me", json={"time_zone": None})
    assert status == 200 and body["user"]["time_zone"] is None, body
    assert (await me(api))["time_zone"] is None
    assert (await me(api))["locale"] == "ja-JP"


async def test_every_valid_zone_is_kept_as_sent(api: ApiClient):
    await api.signup("tz_tagger")
    for zone in VALID:
        status, body = await api.patch("/api/v1/me", json={"time_zone": zone})
        assert (status, body["user"]["time_zone"]) == (200, zone), body
        assert (await me(api))["time_zone"] == zone


async def test_bad_zones_are_refused_and_change_nothing(api: ApiClient):
    await api.signup("tz_picky")
    status, _ = await api.patch("/api/v1/me", json={"time_zone": "Europe/Paris"})
    assert status == 200
    for zone in INVALID:
        status, body = await api.patch(
            "/api/v1/me", json={"time_zone": zone, "display_name": "Changed"}
        )
        assert status == 400, (zone, body)
        assert body["error"]["code"] == "invalid_field", (zone, body)
        assert body["error"]["details"]["field"] == "time_zone", (zone, body)
    for wrong in (5, ["UTC"], {"zone": "UTC"}, True):
        status, body = await api.patch("/api/v1/me", json={"time_zone": wrong})
        assert (status, body["error"]["code"]) == (400, "wrong_type"), (wrong, body)
        assert body["error"]["details"]["field"] == "time_zone"
    user = await me(api)
    assert (user["time_zone"], user["display_name"]) == ("Europe/Paris", "tz_picky")


async def test_only_the_owner_sees_the_time_zone(api: ApiClient):
    await api.signup("tz_owner")
    status, _ = await api.patch("/api/v1/me", json={"time_zone": "America/Chicago"})
    assert status == 200
    other = ApiClient(api.base_url)
    try:
        await other.signup("tz_viewer")
        status, body = await other.get("/api/v1/users/search?q=tz_owner")
        assert status == 200, body
        found = [u for u in body["users"] if u["username"] == "tz_owner"]
        assert found and "time_zone" not in found[0], body
    finally:
        await other.close()


@pytest.mark.parametrize("zone", VALID)
def test_check_time_zone_accepts(zone):
    assert check_time_zone(zone) == zone


@pytest.mark.parametrize("zone", [*INVALID, 5, b"UTC", ["UTC"]])
def test_check_time_zone_refuses(zone):
    with pytest.raises(AppError) as refused:
        check_time_zone(zone)
    assert refused.value.code == "invalid_field"
    assert refused.value.details == {"field": "time_zone"}


def test_check_time_zone_none_clears_and_the_list_is_the_tz_database():
    assert check_time_zone(None) is None
    assert len(time_zones()) > 300 and "localtime" not in time_zones()
