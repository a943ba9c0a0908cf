"""The account's time zone in real Chromium: a browser in Tokyo signs up and the account takes
``Asia/Tokyo``; an account that already has a zone keeps it on sign-in; Settings → "Time zone"
changes it (the locale stays)."""

from __future__ import annotations

import pytest

from tests.helpers import ApiClient
from tests.web.test_chat_browser import TIMEOUT, sign_in, sign_up

pytestmark = pytest.mark.timeout(90)


async def page_in(browser, web_base: str, time_zone: str):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT)
    context = await browser.new_context(
        viewport={"width": 1200, "height": 800}, locale="en-GB", timezone_id=time_zone
    )
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    await page.goto(web_base + "/")
    return page


async def profile_of(web_base: str, username: str) -> dict:
    client = ApiClient(web_base)
    try:
        return (await client.login(username))["user"]
    finally:
        await client.close()


async def test_sign_up_takes_the_browsers_zone_and_settings_change_it(web_base, browser):
    from playwright.async_api import expect

    page = await page_in(browser, web_base, "Asia/Tokyo")
    await sign_up(page, "haruki")
    assert (await profile_of(web_base, "haruki"))["time_zone"] == "Asia/Tokyo"

    await page.get_by_test_id("settings-button").click()
    select = page.get_by_test_id("settings-time-zone")
    await expect(select).to_have_value("Asia/Tokyo")
    values = await select.locator("option").evaluate_all("options => options.map(o => o.value)")
    assert values[0] == "UTC" and "Europe/Berlin" in values and "America/New_York" in values
    await select.select_option("America/Sao_Paulo")
    await page.get_by_test_id("settings-save").click()
    await expect(page.get_by_test_id("settings-sheet")).to_be_hidden()
    user = await profile_of(web_base, "haruki")
    assert (user["time_zone"], user["locale"]) == ("America/Sao_Paulo", "en-GB")
    # the sheet shows the saved choice when opened again
    await page.get_by_test_id("settings-button").click()
    await expect(page.get_by_test_id("settings-time-zone")).to_have_value("America/Sao_Paulo")
    assert page.errors == []


async def test_sign_in_keeps_a_chosen_zone(web_base, browser):
    client = ApiClient(web_base)
    try:
        await client.signup("amelie")
        status, body = await client.patch("/api/v1/me", json={"time_zone": "Europe/Paris"})
        assert status == 200, body
    finally:
        await client.close()
    page = await page_in(browser, web_base, "Australia/Sydney")
    await sign_in(page, "amelie")
    assert (await profile_of(web_base, "amelie"))["time_zone"] == "Europe/Paris"
    assert page.errors == []
