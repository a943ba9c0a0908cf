"""Password reset and email verification in real Chromium, with the mail read from a local SMTP
server: "Forgot password?" → the link from the mail → a new password twice → signed in, the chat
list showing; the verification link turns the "verify your email" reminder off."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.helpers import ApiClient
from tests.web.conftest import _serve
from tests.web.test_chat_browser import TIMEOUT, new_page, sign_in

pytestmark = [pytest.mark.xdist_group("heavy"), pytest.mark.timeout(120)]

NEW_PASSWORD = "Fresh-start-2024"


@pytest.fixture
async def mail_web(mongo_url, mongo_db_name, tmp_path, sink):
    """A gateway serving the web client whose mail goes to ``sink``: its base URL."""
    async with _serve(mongo_url, mongo_db_name, tmp_path, smtp_url=sink.url) as (base, _app):
        yield base


def on_this_server(base: str, link: str) -> str:
    """The mailed link, on the test server's origin (PUBLIC_URL is left at its default)."""
    parts = urlsplit(link)
    return f"{base}{parts.path}#{parts.fragment}"


async def test_forgot_password_link_new_password_signed_in(mail_web, browser, sink):
    from playwright.async_api import expect

    base = mail_web
    rest = ApiClient(base)
    try:
        await rest.signup("rhea")
        [verification] = await sink.wait_for("rhea@example.com")
        status, _ = await rest.post(
            "/api/v1/auth/email/verify", json={"token": verification.token("verify-email")}
        )
        assert status == 200
        old_session = rest.token
    finally:
        await rest.close()

    page = await new_page(browser, mail_web)
    await page.get_by_test_id("forgot-password").click()
    await page.get_by_test_id("forgot-email").fill("rhea@example.com")
    await page.get_by_test_id("forgot-submit").click()
    await expect(page.get_by_test_id("forgot-sent")).to_contain_text("on its way")
    await page.get_by_test_id("forgot-sent-ok").click()

    [mail] = (await sink.wait_for("rhea@example.com", 2))[1:]
    assert mail.subject == "Reset your password"
    assert page.errors == []
    # the mail program opens the link in a new tab: the page starts from it
    await page.context.close()
    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(on_this_server(base, mail.link("reset-password")))
    await expect(page.get_by_test_id("reset-sheet")).to_be_visible()
    # two different passwords: said, nothing sent
    await page.get_by_test_id("reset-new").fill(NEW_PASSWORD)
    await page.get_by_test_id("reset-again").fill(NEW_PASSWORD + "x")
    await page.get_by_test_id("reset-submit").click()
    await expect(page.get_by_test_id("reset-error")).to_contain_text("not the same")
    # too weak: the server says why, and the link still works
    await page.get_by_test_id("reset-new").fill("weakling")
    await page.get_by_test_id("reset-again").fill("weakling")
    await page.get_by_test_id("reset-submit").click()
    await expect(page.get_by_test_id("reset-error")).not_to_be_empty()
    await page.get_by_test_id("reset-new").fill(NEW_PASSWORD)
    await page.get_by_test_id("reset-again").fill(NEW_PASSWORD)
    await page.get_by_test_id("reset-submit").click()

    await expect(page.get_by_test_id("me-name")).to_have_text("rhea", timeout=TIMEOUT)
    await expect(page.get_by_test_id("conversation-list")).to_be_visible()
    await page.locator("body[data-connected=true]").wait_for(state="attached")
    assert "reset-password" not in page.url  # the token left the address bar
    await expect(page.get_by_test_id("verify-email-bar")).to_have_count(0)

    check = ApiClient(base)
    try:
        status, _ = await check.get("/api/v1/me", token=old_session)
        assert status == 401  # the session from before the reset has ended
        await check.login("rhea", NEW_PASSWORD)
    finally:
        await check.close()
    assert errors == []


async def test_verify_email_link_ends_the_reminder(mail_web, browser, sink):
    from playwright.async_api import expect

    rest = ApiClient(mail_web)
    try:
        await rest.signup("vito")
    finally:
        await rest.close()
    page = await new_page(browser, mail_web)
    await sign_in(page, "vito")
    bar = page.get_by_test_id("verify-email-bar")
    await expect(bar).to_contain_text("vito@example.com")
    await page.get_by_test_id("verify-email-resend").click()
    await expect(page.get_by_test_id("verification-sent")).to_be_visible()
    mails = await sink.wait_for("vito@example.com", 2)
    await page.goto(on_this_server(mail_web, mails[1].link("verify-email")))
    await expect(page.get_by_test_id("email-verified")).to_be_visible()
    await expect(bar).to_have_count(0)
    assert "verify-email" not in page.url
    assert page.errors == []
