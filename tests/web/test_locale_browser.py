"""The account's language and region in real Chromium: a browser whose language is German signs
up and the account takes ``de-DE``; an account that already has a locale keeps it on sign-in;
Settings → "Language and region" changes it; browser tags are put in the server's form."""

from __future__ import annotations

import pytest

from tests.helpers import ApiClient
from tests.web.test_chat_browser import TIMEOUT, sign_in, sign_up

pytestmark = pytest.mark.timeout(90)


async def page_in(browser, web_base: str, locale: str):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT)
    context = await browser.new_context(viewport={"width": 1200, "height": 800}, locale=locale)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    await page.goto(web_base + "/")
    return page


async def locale_of(web_base: str, username: str) -> str | None:
    client = ApiClient(web_base)
    try:
        return (await client.login(username))["user"]["locale"]
    finally:
        await client.close()


async def test_sign_up_takes_the_browsers_language_and_settings_change_it(web_base, browser):
    from playwright.async_api import expect

    page = await page_in(browser, web_base, "de-DE")
    await sign_up(page, "greta")
    assert await locale_of(web_base, "greta") == "de-DE"

    await page.get_by_test_id("settings-button").click()
    select = page.get_by_test_id("settings-locale")
    await expect(select).to_have_value("de-DE")
    assert await select.locator("option").all_text_contents() == [
        "English (US)",
        "English (UK)",
        "Deutsch",
        "Français",
        "Español",
        "日本語",
        "中文",
    ]
    await select.select_option("en-GB")
    await page.get_by_test_id("settings-save").click()
    await expect(page.get_by_test_id("settings-sheet")).to_be_hidden()
    assert await locale_of(web_base, "greta") == "en-GB"
    # the sheet shows the saved choice when opened again
    await page.get_by_test_id("settings-button").click()
    await expect(page.get_by_test_id("settings-locale")).to_have_value("en-GB")
    assert page.errors == []


async def test_sign_in_keeps_a_chosen_locale(web_base, browser):
    client = ApiClient(web_base)
    try:
        await client.signup("kenji")
        status, body = await client.patch("/api/v1/me", json={"locale": "ja-JP"})
        assert status == 200, body
    finally:
        await client.close()
    page = await page_in(browser, web_base, "fr-FR")
    await sign_in(page, "kenji")
    assert await locale_of(web_base, "kenji") == "ja-JP"
    assert page.errors == []


async def test_browser_tags_are_put_in_the_servers_form(web_base, browser):
    page = await page_in(browser, web_base, "en-US")
    cases = {
        "en-us": "en-US",
        "EN_gb": "en-GB",
        "zh-hans-cn": "zh-Hans-CN",
        "es-419": "es-419",
        "de-DE-u-co-phonebk": "de-DE",
        "fr": "fr",
        "x-klingon": None,
        "": None,
        "english": None,
    }
    got = await page.evaluate(
        """async (tags) => {
          const { normaliseLocale } = await import("/static/profile.js");
          return Object.fromEntries(tags.map((tag) => [tag, normaliseLocale(tag)]));
        }""",
        list(cases),
    )
    assert got == cases
