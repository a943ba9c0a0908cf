"""Leave with your data in real Chromium: Settings → "Export my data" → the password → the list
shows it being prepared, then "Download" gives the ZIP (once); Settings → "Delete account"
refuses a wrong confirmation, then with the password and DELETE signs out with a goodbye, and
the old login no longer works."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from tests.helpers import PASSWORD, ApiClient
from tests.web.test_chat_browser import new_page, sign_up

pytestmark = [pytest.mark.timeout(120), pytest.mark.xdist_group("heavy")]


async def test_export_then_delete_my_account(web_base, browser):
    from playwright.async_api import expect

    page = await new_page(browser, web_base)
    await sign_up(page, "leaver")

    # Export: a wrong password is refused, the right one queues it; it gets ready; download.
    await page.get_by_test_id("settings-button").click()
    await page.get_by_test_id("export-data").click()
    await expect(page.get_by_test_id("export-list")).to_contain_text("No exports yet")
    await page.get_by_test_id("export-password").fill("Not-my-password-1")
    await page.get_by_test_id("export-request").click()
    await expect(page.get_by_test_id("toast-error")).to_contain_text("not your password")
    await page.get_by_test_id("export-password").fill(PASSWORD)
    await page.get_by_test_id("export-request").click()
    row = page.get_by_test_id("export-row").first
    await expect(row).to_have_attribute("data-status", "ready", timeout=30_000)
    async with page.expect_download() as waiting:
        await row.get_by_test_id("export-download").click()
    saved = await (await waiting.value).path()
    archive = zipfile.ZipFile(io.BytesIO(Path(saved).read_bytes()))  # noqa: ASYNC240
    assert json.loads(archive.read("profile.json"))["profile"]["username"] == "leaver"
    await expect(row).to_have_attribute("data-status", "downloaded")
    await page.keyboard.press("Escape")
    await expect(page.get_by_test_id("settings-sheet")).to_be_hidden()

    # Delete: "delete" is not "DELETE"; then it is done, and the page says goodbye.
    await page.get_by_test_id("settings-button").click()
    await page.get_by_test_id("delete-account").click()
    await page.get_by_test_id("delete-password").fill(PASSWORD)
    await page.get_by_test_id("delete-confirm").fill("delete")
    await page.get_by_test_id("delete-account-confirm").click()
    await expect(page.get_by_test_id("toast-error").last).to_contain_text("DELETE")
    await expect(page.get_by_test_id("delete-account-sheet")).to_be_visible()
    await page.get_by_test_id("delete-confirm").fill("DELETE")
    await page.get_by_test_id("delete-account-confirm").click()
    await expect(page.get_by_test_id("auth-error")).to_have_text(
        "Your account was deleted. Goodbye!"
    )
    await expect(page.locator(".sheet-backdrop")).to_have_count(0)
    client = ApiClient(web_base)
    try:
        status, body = await client.post(
            "/api/v1/auth/login", json={"login": "leaver", "password": PASSWORD}
        )
        assert status == 401 and body["error"]["code"] == "invalid_credentials"
    finally:
        await client.close()
    assert page.errors == []
