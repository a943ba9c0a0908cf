"""The wallet in real Chromium against a real gateway: a transfer sent and accepted from the UI,
and the host's own sheets for mini-programs (payment confirmation, consent) answered by a click.

Two browser contexts are two people; every wait is on the page's state, never a sleep.
"""

from __future__ import annotations

import re

import pytest

from gateway.keys import MINIAPPS
from miniapps.host.registry import discover
from tests.helpers import ApiClient
from tests.miniapps.test_capabilities import APPS_DIR, _world_readable
from tests.web.test_chat_browser import befriend, chat_item, new_page, send, sign_in

pytestmark = pytest.mark.timeout(90)

TEST_APPS = ("shopper", "profiler")  # from tests/miniapps/apps


@pytest.fixture
async def base_url(web_gateway):
    """The same gateway as ``web_gateway``, with the test mini-programs in its catalogue (as
    ``tests/miniapps/test_capabilities.setup`` adds them)."""
    base, app = web_gateway
    _world_readable(APPS_DIR)
    apps, refused = discover(APPS_DIR)
    assert not refused, refused
    app[MINIAPPS].apps.update({app_id: apps[app_id] for app_id in TEST_APPS})
    return base


@pytest.fixture
async def rest(base_url):
    client = ApiClient(base_url)
    try:
        yield client
    finally:
        await client.close()


def app_text(page, pattern: str):
    """A message bubble whose text matches ``pattern`` (a regular expression, anchored)."""
    return page.get_by_test_id("message-text").filter(has_text=re.compile(f"^{pattern}$"))


async def open_direct_chat(page, username: str) -> None:
    from playwright.async_api import expect

    await page.get_by_test_id("find-user").click()
    await page.get_by_test_id("user-search-input").fill(username)
    await page.get_by_test_id("user-result").get_by_test_id("open-chat").click()
    await expect(page.get_by_test_id("chat-title")).to_have_text(username)


async def dev_topup(page) -> None:
    from playwright.async_api import expect

    await page.get_by_test_id("wallet-button").click()
    await page.get_by_test_id("dev-topup").click()
    await expect(page.get_by_test_id("wallet-balance")).to_have_text("100.00 USD")
    await expect(page.get_by_test_id("wallet-sheet")).to_be_hidden()


async def add_app(page, app_id: str) -> None:
    """The chat's Apps menu → "Add to chat"."""
    from playwright.async_api import expect

    await page.get_by_test_id("apps-button").click()
    item = page.locator(f"[data-testid=app-item][data-app-id={app_id}]")
    await item.get_by_test_id("add-app").click()
    await expect(item.get_by_test_id("app-added")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.get_by_test_id("apps-sheet")).to_be_hidden()


async def test_transfer_sent_from_the_chat_and_accepted_by_the_recipient(base_url, browser, rest):
    from playwright.async_api import expect

    await befriend(rest, "kim", "lee")
    kim, lee = await new_page(browser, base_url), await new_page(browser, base_url)
    await sign_in(kim, "kim")
    await sign_in(lee, "lee")
    await dev_topup(kim)
    await open_direct_chat(kim, "lee")

    await kim.get_by_test_id("money-button").click()
    await kim.get_by_test_id("transfer-amount").fill("12.50")
    await kim.get_by_test_id("transfer-note").fill("Concert tickets")
    await kim.get_by_test_id("transfer-submit").click()
    await expect(kim.get_by_test_id("transfer-sheet")).to_be_hidden()
    await expect(kim.get_by_test_id("wallet-balance")).to_have_text("87.50 USD")

    await chat_item(lee, "kim").click()
    cards = [page.get_by_test_id("transfer-card") for page in (kim, lee)]
    for card in cards:
        await expect(card.get_by_test_id("card-title")).to_have_text("Transfer 12.50 USD")
        await expect(card).to_contain_text("Concert tickets")
        status = card.get_by_test_id("card-field").filter(has_text="Status")
        await expect(status).to_contain_text("Waiting for the recipient to accept")

    # Only the recipient can accept: the sender's copy has no button to press.
    await expect(cards[0].get_by_test_id("card-button")).to_have_count(0)
    await cards[1].get_by_test_id("card-button").filter(has_text="Accept").click()
    # message.updated redraws the card on both sides: accepted, no button left.
    for card in cards:
        status = card.get_by_test_id("card-field").filter(has_text="Status")
        await expect(status.get_by_test_id("card-field-value")).to_have_text("Accepted")
        await expect(card.get_by_test_id("card-button")).to_have_count(0)
    await expect(lee.get_by_test_id("wallet-balance")).to_have_text("12.50 USD")
    await expect(kim.get_by_test_id("wallet-balance")).to_have_text("87.50 USD")
    assert kim.errors == [] and lee.errors == []


async def test_payment_sheet_confirm_pays_and_cancel_moves_nothing(base_url, browser, rest):
    from playwright.async_api import expect

    await befriend(rest, "mia", "ned")
    mia, ned = await new_page(browser, base_url), await new_page(browser, base_url)
    await sign_in(mia, "mia")
    await sign_in(ned, "ned")
    await dev_topup(mia)
    await open_direct_chat(mia, "ned")
    await add_app(mia, "shopper")
    await chat_item(ned, "mia").click()

    # Confirm: the host's sheet (never the app's) names the app, the amount and what it is for.
    await send(mia, "/buy order-1 1250")
    sheet = mia.get_by_test_id("payment-sheet")
    await expect(sheet).to_be_visible()
    await expect(sheet.get_by_role("heading")).to_have_text("Pay Shopper")
    await expect(sheet.get_by_test_id("payment-amount")).to_have_text("12.50 USD")
    await expect(sheet.get_by_test_id("payment-description")).to_have_text("Order order-1")
    await expect(mia.get_by_test_id("wallet-balance")).to_have_text("100.00 USD")
    await sheet.get_by_test_id("payment-confirm").click()
    await expect(sheet).to_be_hidden()
    await expect(mia.get_by_test_id("wallet-balance")).to_have_text("87.50 USD")
    for page in (mia, ned):
        await expect(app_text(page, r"shopper: paid order-1 1250 \S+")).to_be_visible()

    # Cancel: the app hears it, nothing moves.
    await send(mia, "/buy order-2 1250")
    await expect(sheet.get_by_test_id("payment-description")).to_have_text("Order order-2")
    await sheet.get_by_test_id("payment-cancel").click()
    await expect(sheet).to_be_hidden()
    for page in (mia, ned):
        await expect(app_text(page, "shopper: failed order-2 cancelled")).to_be_visible()
    await expect(mia.get_by_test_id("wallet-balance")).to_have_text("87.50 USD")

    # Only the payer was ever asked.
    await expect(ned.get_by_test_id("payment-sheet")).to_have_count(0)
    assert mia.errors == [] and ned.errors == []


async def test_consent_sheet_allow_shares_the_profile_and_deny_refuses(base_url, browser, rest):
    from playwright.async_api import expect

    await befriend(rest, "oli", "pam")
    oli, pam = await new_page(browser, base_url), await new_page(browser, base_url)
    await sign_in(oli, "oli")
    await sign_in(pam, "pam")
    await open_direct_chat(oli, "pam")
    await add_app(oli, "profiler")
    await chat_item(pam, "oli").click()

    await send(oli, "/whoami")
    sheet = oli.get_by_test_id("consent-sheet")
    await expect(sheet).to_contain_text("Profiler wants to see your display name and avatar")
    await sheet.get_by_test_id("consent-allow").click()
    await expect(sheet).to_be_hidden()
    allowed = r"profiler: u-\S+ name oli"
    for page in (oli, pam):
        await expect(app_text(page, allowed)).to_be_visible()

    await send(pam, "/whoami")
    sheet = pam.get_by_test_id("consent-sheet")
    await expect(sheet).to_contain_text("Profiler asks for permission")
    await sheet.get_by_test_id("consent-deny").click()
    await expect(sheet).to_be_hidden()
    for page in (oli, pam):
        await expect(app_text(page, r"profiler: u-\S+ error scope_denied")).to_be_visible()

    # Asked once: oli's second /whoami answers straight away, without a sheet.
    await send(oli, "/whoami")
    await expect(app_text(oli, allowed)).to_have_count(2)
    await expect(oli.get_by_test_id("consent-sheet")).to_have_count(0)
    assert oli.errors == [] and pam.errors == []
