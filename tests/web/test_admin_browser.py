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


SECRET = "sk-live-browser-0123456789"


async def test_admin_sets_up_an_app_settings_roles_and_fee(web_gateway, browser, mongo_db):
    """An admin opens fxdesk's setup: saves its secret setting (never shown again), grants a
    role to a user found by username and revokes it, and sets a fee; the API agrees each time."""
    from playwright.async_api import expect

    from gateway.keys import MINIAPPS
    from miniapps.host.registry import discover
    from tests.miniapps.conftest import APPS_DIR

    _require_admin_page()
    expect.set_options(timeout=TIMEOUT)
    base, app = web_gateway
    apps, _refused = discover(APPS_DIR)
    app[MINIAPPS].apps["fxdesk"] = apps["fxdesk"]
    setup = "/api/v1/admin/miniapps/fxdesk"
    rest = ApiClient(base)
    try:
        boss = await rest.signup("setupboss")
        await rest.register("trader")  # (registering does not sign rest in as trader)
        await mongo_db.users.update_one({"_id": boss["user"]["id"]}, {"$set": {"role": "admin"}})

        admin = await _page(browser, base + "/admin")
        await _admin_sign_in(admin, "setupboss")
        await expect(admin.get_by_test_id("admin-panel")).to_be_visible()
        await admin.get_by_test_id("tab-miniapps").click()
        row = admin.locator("[data-testid=miniapp-row][data-app-id=fxdesk]")
        await row.get_by_test_id("miniapp-setup-open").click()
        panel = admin.get_by_test_id("miniapp-setup")
        await expect(panel).to_be_visible()

        # settings: the secret is a password input, "not set"; saved, it is only "set"
        key = panel.locator("[data-testid=setting-row][data-name=api_key]")
        await expect(key.get_by_test_id("setting-state")).to_have_text("not set")
        assert await key.get_by_test_id("setting-input").get_attribute("type") == "password"
        await key.get_by_test_id("setting-input").fill(SECRET)
        await key.get_by_test_id("setting-save").click()
        await expect(key.get_by_test_id("setting-state")).to_have_text("set")
        await expect(key.get_by_test_id("setting-input")).to_have_value("")
        status, body = await rest.get(f"{setup}/config")
        assert status == 200, body
        api_key = next(s for s in body["config"] if s["name"] == "api_key")
        assert api_key["set"] is True and "value" not in api_key
        assert SECRET not in await admin.content()
        # a blank plain setting is refused on the page; nothing changes
        url = panel.locator("[data-testid=setting-row][data-name=feed_url]")
        await url.get_by_test_id("setting-save").click()
        await expect(url.get_by_test_id("setting-error")).to_contain_text("Enter a value")

        # roles: grant auditor to trader (found by username), then revoke it
        await admin.get_by_test_id("role-grant-role").select_option("auditor")
        await admin.get_by_test_id("role-grant-q").fill("trad")
        await admin.get_by_test_id("role-grant-q").press("Enter")
        found = admin.locator("[data-testid=role-grant-result][data-username=trader]")
        await found.get_by_test_id("role-grant-user").click()
        auditor = panel.locator("[data-testid=role-row][data-role=auditor]")
        holder = auditor.locator("[data-testid=role-holder][data-username=trader]")
        await expect(holder).to_have_count(1)
        status, body = await rest.get(f"{setup}/roles")
        held = {r["name"]: [u["username"] for u in r["users"]] for r in body["roles"]}
        assert held == {"merchant": [], "auditor": ["trader"]}, body
        await holder.get_by_test_id("role-revoke").click()
        await admin.get_by_test_id("reason-confirm").click()
        await expect(holder).to_have_count(0)
        status, body = await rest.get(f"{setup}/roles")
        assert all(not r["users"] for r in body["roles"]), body

        # fees: a refusal shows the API's message; then a fee is set and listed
        await admin.get_by_test_id("fee-currency").fill("USD")
        await admin.get_by_test_id("fee-bps").fill("9999")
        await admin.get_by_test_id("fee-save").click()
        await expect(admin.get_by_test_id("fee-error")).to_contain_text("basis_points is a whole")
        status, body = await rest.get(f"{setup}/fees")
        assert body["fees"] == [], body
        await admin.get_by_test_id("fee-bps").fill("250")
        await admin.get_by_test_id("fee-fixed").fill("30")
        await admin.get_by_test_id("fee-save").click()
        fee = panel.locator("[data-testid=fee-row][data-currency=USD]")
        await expect(fee.get_by_test_id("fee-bps")).to_contain_text("250")
        await expect(fee.get_by_test_id("fee-fixed")).to_have_text("30")
        status, body = await rest.get(f"{setup}/fees")
        assert [(f["currency"], f["basis_points"], f["fixed"]) for f in body["fees"]] == [
            ("USD", 250, 30)
        ], body
        assert SECRET not in await admin.content()
        assert admin.errors == [], admin.errors
    finally:
        await rest.close()


async def test_an_admin_with_two_factor_sign_in_gives_a_code(web_base, browser, mongo_db):
    """The admin page asks for the authenticator's code after the password, and a wrong one is
    refused without leaving the code step."""
    from playwright.async_api import expect

    from tests.messaging.test_mfa import CONFIRM, TOTP, Authenticator

    _require_admin_page()
    expect.set_options(timeout=TIMEOUT)
    rest = ApiClient(web_base)
    try:
        boss = await rest.signup("mfaboss")
        status, body = await rest.post(TOTP, json={"password": PASSWORD})
        assert status == 200, body
        authenticator = Authenticator(body["secret"])
        status, body = await rest.post(CONFIRM, json={"code": await authenticator.next_code()})
        assert status == 200, body
    finally:
        await rest.close()
    await mongo_db.users.update_one({"_id": boss["user"]["id"]}, {"$set": {"role": "admin"}})

    page = await _page(browser, web_base + "/admin")
    await _admin_sign_in(page, "mfaboss")
    code = page.get_by_test_id("signin-code")
    await expect(code).to_be_visible()
    await expect(page.get_by_test_id("signin-error")).to_contain_text("authenticator")
    await code.fill("000000" if authenticator.totp.now() != "000000" else "111111")
    await page.get_by_test_id("signin-submit").click()
    await expect(page.get_by_test_id("signin-error")).to_contain_text("not right")
    await expect(code).to_be_visible()  # still the code step: the token lives on
    await code.fill(await authenticator.next_code())
    await page.get_by_test_id("signin-submit").click()
    await expect(page.get_by_test_id("admin-whoami")).to_be_visible()
    await expect(page.get_by_test_id("admin-signin")).to_be_hidden()
    assert page.errors == []
