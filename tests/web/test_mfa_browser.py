"""Two-factor sign-in in real Chromium: Settings → "Two-factor sign-in" → password → the QR code
and key → a code from the "app" (pyotp with the key the page shows) → the recovery codes, once;
then signing out and in asks for a code, refuses a wrong one and accepts the right one; and
turning it off from Settings takes the password and a recovery code."""

from __future__ import annotations

import pytest

from tests.helpers import PASSWORD, ApiClient
from tests.messaging.test_mfa import Authenticator
from tests.web.test_chat_browser import new_page, sign_in, sign_up

pytestmark = [pytest.mark.timeout(120), pytest.mark.xdist_group("heavy")]


async def test_turn_on_sign_in_with_a_code_and_turn_off(web_base, browser):
    from playwright.async_api import expect

    page = await new_page(browser, web_base)
    await sign_up(page, "mira")

    # Settings → turn on
    await page.get_by_test_id("settings-button").click()
    await expect(page.get_by_test_id("mfa-status")).to_contain_text("Off")
    await page.get_by_test_id("mfa-turn-on").click()
    await page.get_by_test_id("mfa-setup-password").fill("not the password 1")
    await page.get_by_test_id("mfa-setup-continue").click()
    await expect(page.get_by_test_id("mfa-setup-error")).to_have_text("that is not your password")
    await page.get_by_test_id("mfa-setup-password").fill(PASSWORD)
    await page.get_by_test_id("mfa-setup-continue").click()
    await expect(page.get_by_test_id("mfa-qr")).to_be_visible()
    assert await page.get_by_test_id("mfa-qr").evaluate("(img) => img.naturalWidth > 0")
    secret = await page.get_by_test_id("mfa-secret").text_content()
    app = Authenticator(secret)
    await page.get_by_test_id("mfa-setup-code").fill(await app.next_code())
    await page.get_by_test_id("mfa-setup-code").press("Enter")
    codes = page.get_by_test_id("mfa-recovery-codes").locator("li")
    await expect(codes).to_have_count(10)
    recovery = await codes.all_text_contents()
    await page.get_by_test_id("mfa-setup-close").click()
    await expect(page.get_by_test_id("mfa-status")).to_contain_text("On")
    await page.keyboard.press("Escape")
    await expect(page.get_by_test_id("settings-sheet")).to_be_hidden()

    # sign out, and in: the password, then a code
    await page.get_by_test_id("sign-out").click()
    await page.get_by_test_id("auth-mode-login").click()
    await page.get_by_test_id("auth-username").fill("mira")
    await page.get_by_test_id("auth-password").fill(PASSWORD)
    await page.get_by_test_id("auth-submit").click()
    await expect(page.get_by_test_id("mfa-sheet")).to_be_visible()
    await page.get_by_test_id("mfa-code").fill("000000")
    await page.get_by_test_id("mfa-submit").click()
    await expect(page.get_by_test_id("mfa-error")).to_contain_text("not right")
    await page.get_by_test_id("mfa-code").fill(await app.next_code())
    await page.get_by_test_id("mfa-code").press("Enter")
    await expect(page.get_by_test_id("me-name")).to_have_text("mira")
    await page.locator("body[data-connected=true]").wait_for(state="attached")

    # turn off: the password and a recovery code
    await page.get_by_test_id("settings-button").click()
    await page.get_by_test_id("mfa-turn-off").click()
    await page.get_by_test_id("mfa-off-password").fill(PASSWORD)
    await page.get_by_test_id("mfa-off-code").fill(recovery[0])
    await page.get_by_test_id("mfa-off-submit").click()
    await expect(page.get_by_test_id("mfa-off")).to_be_hidden()
    await expect(page.get_by_test_id("mfa-status")).to_contain_text("Off")
    await page.keyboard.press("Escape")

    # the password alone signs in again
    await page.get_by_test_id("sign-out").click()
    await sign_in(page, "mira")
    client = ApiClient(web_base)
    try:
        assert (await client.login("mira"))["user"]["mfa_enabled"] is False
    finally:
        await client.close()
    assert page.errors == []
