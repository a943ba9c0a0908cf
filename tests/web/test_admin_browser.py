"""The admin panel in real Chromium against a real gateway: an admin suspends a user whose chat
page is open (it is signed out and cannot sign in again), the charts draw, and a non-admin is
told the page is for administrators only.

Every wait is on the page's state (``expect``), never a sleep.
"""

from __future__ import annotations

import pytest

from tests.helpers import PASSWORD, ApiClient
from tests.web.conftest import WEB_DIST

pytestmark = pytest.mark.timeout(90)

TIMEOUT = 15_000  # ms, for any one thing to appear


def _require_admin_page() -> None:
    from tests.conftest import require

    require((WEB_DIST / "admin.html").exists(), "the admin page is not built (make web)")


async def _page(browser, url: str):
    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    await page.goto(url)
    return page


async def _admin_sign_in(page, username: str) -> None:
    await page.get_by_test_id("signin-login").fill(username)
    await page.get_by_test_id("signin-password").fill(PASSWORD)
    await page.get_by_test_id("signin-submit").click()


async def _chat_sign_in(page, username: str) -> None:
    await page.get_by_test_id("auth-username").fill(username)
    await page.get_by_test_id("auth-password").fill(PASSWORD)
    await page.get_by_test_id("auth-submit").click()


async def test_admin_suspends_a_signed_in_user_and_reads_charts(web_base, browser, mongo_db):
    from playwright.async_api import expect

    _require_admin_page()
    expect.set_options(timeout=TIMEOUT)
    rest, pleb = ApiClient(web_base), ApiClient(web_base)
    try:
        boss = await rest.register("boss")
        victim = await rest.register("victim")
        await pleb.signup("pleb")
        # pleb writes something in a group with victim, who reports it
        await rest.login("victim")
        _, body = await pleb.post(
            "/api/v1/conversations",
            json={"type": "group", "title": "Lobby", "member_ids": [victim["id"]]},
        )
        cid = body["conversation"]["id"]
        _, body = await pleb.post(
            f"/api/v1/conversations/{cid}/messages", json={"client_msg_id": "m1", "text": "rude"}
        )
        status, _ = await rest.post(
            f"/api/v1/conversations/{cid}/messages/{body['message']['id']}/report",
            json={"reason": "insulting"},
        )
        assert status == 201
    finally:
        await rest.close()
        await pleb.close()
    await mongo_db.users.update_one({"_id": boss["id"]}, {"$set": {"role": "admin"}})

    # the user is chatting in the web client
    chat = await _page(browser, web_base + "/")
    await _chat_sign_in(chat, "victim")
    await expect(chat.get_by_test_id("me-name")).to_have_text("victim")
    await chat.locator("body[data-connected=true]").wait_for(state="attached")

    # the operator signs in at /admin and finds them
    admin = await _page(browser, web_base + "/admin")
    await _admin_sign_in(admin, "boss")
    await expect(admin.get_by_test_id("admin-panel")).to_be_visible()
    await expect(admin.get_by_test_id("admin-whoami")).to_contain_text("boss")
    await admin.get_by_test_id("users-q").fill("vic")
    await admin.get_by_test_id("users-q").press("Enter")
    row = admin.locator("[data-testid=user-row][data-username=victim]")
    await expect(admin.get_by_test_id("user-row")).to_have_count(1)
    await expect(row.get_by_test_id("user-status")).to_contain_text("Active")

    # sessions are listed in the details
    await row.get_by_test_id("user-details").click()
    await expect(admin.get_by_test_id("session-row")).to_have_count(2)  # REST + the browser

    # suspend, with a reason, through the keyboard-usable dialog
    await row.get_by_test_id("suspend-button").click()
    dialog = admin.get_by_test_id("reason-dialog")
    await expect(dialog).to_be_visible()
    await admin.get_by_test_id("reason-input").fill("spam")
    await admin.get_by_test_id("reason-confirm").click()
    await expect(dialog).to_be_hidden()
    await expect(admin.get_by_test_id("status")).to_contain_text("victim is suspended")
    await expect(row.get_by_test_id("user-status")).to_contain_text("Suspended")

    # the user's open page is signed out, and signing in again is refused
    await expect(chat.get_by_test_id("auth-screen")).to_be_visible()
    await expect(chat.get_by_test_id("auth-error")).to_contain_text("suspended")
    await _chat_sign_in(chat, "victim")
    await expect(chat.get_by_test_id("auth-error")).to_contain_text("suspended")
    await expect(chat.get_by_test_id("auth-screen")).to_be_visible()

    # charts: two SVG bar charts of 14 days, with a table of the same numbers
    await admin.get_by_test_id("tab-charts").click()
    active = admin.locator("[data-testid=svg-active_users] [data-testid=chart-bar]")
    await expect(active).to_have_count(14)
    await expect(admin.locator("[data-testid=svg-messages] [data-testid=chart-bar]")).to_have_count(
        14
    )
    assert int(await active.last.get_attribute("data-value")) >= 2  # boss and victim today
    await expect(admin.locator("[data-testid=chart-table] tbody tr")).to_have_count(14)
    assert await admin.get_by_test_id("svg-active_users").get_attribute("role") == "img"

    # the report: its context, then the message hidden for everyone
    await admin.get_by_test_id("tab-moderation").click()
    report = admin.get_by_test_id("report-row")
    await expect(report).to_have_count(1)
    await expect(report).to_contain_text("rude")
    await report.get_by_test_id("report-context").click()
    await expect(admin.locator("[data-testid=context-message].highlight")).to_contain_text("rude")
    await report.get_by_test_id("report-hide").click()
    await admin.get_by_test_id("reason-confirm").click()  # a reason is required here
    await expect(dialog).to_be_visible()
    await admin.get_by_test_id("reason-input").fill("abuse")
    await admin.get_by_test_id("reason-confirm").click()
    await expect(admin.get_by_test_id("status")).to_contain_text("Message hidden")
    await expect(admin.get_by_test_id("report-row")).to_have_count(0)
    await expect(admin.locator("[data-testid=context-message].highlight")).to_contain_text(
        "hidden by a moderator"
    )

    # a mini-program switched off and on again
    await admin.get_by_test_id("tab-miniapps").click()
    poll = admin.locator("[data-testid=miniapp-row][data-app-id=poll]")
    await expect(poll.get_by_test_id("miniapp-state")).to_have_text("Enabled")
    await expect(admin.get_by_test_id("sandbox-status")).not_to_have_text("…")
    await poll.get_by_test_id("miniapp-toggle").click()
    await admin.get_by_test_id("reason-input").fill("maintenance")
    await admin.get_by_test_id("reason-confirm").click()
    await expect(poll.get_by_test_id("miniapp-state")).to_have_text("Disabled")
    await poll.get_by_test_id("miniapp-toggle").click()
    await admin.get_by_test_id("reason-confirm").click()
    await expect(poll.get_by_test_id("miniapp-state")).to_have_text("Enabled")

    # the audit log shows the suspension; the wallet report answers
    await admin.get_by_test_id("tab-audit").click()
    for action in ("user.suspend", "message.hide", "miniapp.disable", "miniapp.enable"):
        entry = admin.locator(f"[data-testid=audit-row][data-action='{action}']")
        await expect(entry).to_have_count(1)
    await admin.get_by_test_id("tab-wallet").click()
    await expect(admin.get_by_test_id("wallet-balanced")).to_contain_text("Balanced")
    # keyboard: arrows move between tabs
    await admin.get_by_test_id("tab-wallet").press("ArrowRight")
    await expect(admin.get_by_test_id("tab-charts")).to_have_attribute("aria-selected", "true")

    # a non-admin is told the page is not for them
    other = await _page(browser, web_base + "/admin")
    await _admin_sign_in(other, "pleb")
    await expect(other.get_by_test_id("signin-error")).to_contain_text("administrators only")
    await expect(other.get_by_test_id("admin-panel")).to_be_hidden()

    assert admin.errors == [] and other.errors == [], admin.errors + other.errors
