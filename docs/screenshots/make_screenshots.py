"""Screenshots of the main screens (``make screenshots``): chat, group with a poll card, a video
call and the admin panel, saved as PNGs next to this file.

It starts the platform the way ``make run`` does (``run.py``, embedded database in a temporary
folder, a free port), sets up people and chats over the REST API, makes one of them an admin
with ``run.py create-admin`` (between two starts, so only one process opens the database), and
drives Debian's Chromium (fake camera) with Playwright. Needs the built client (``make web``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--no-sandbox",
]
PASSWORD = "Correct-horse-9"
VIEWPORT = {"width": 1280, "height": 800}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Platform:
    """``run.py`` as a child process on a free port, with its data in ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "AETHERIAL_ENV": "development",  # as `make run`: the wallet screens use dev top-ups
            "AETHERIAL_PORT": str(self.port),
            "AETHERIAL_DATA_DIR": str(self.data_dir),
            "LOG_LEVEL": "warning",
        }

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "run.py"], cwd=ROOT, env=self.env())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if self.process.poll() is not None:
                    raise SystemExit("run.py exited during start-up") from None
                time.sleep(0.2)
        self.stop()
        raise SystemExit("run.py did not start in 60 s")

    def stop(self) -> None:
        """SIGINT, as Ctrl-C; SIGKILL when it has not exited after 30 s."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def create_admin(self, username: str) -> None:
        subprocess.run(
            [sys.executable, "run.py", "create-admin", username],
            cwd=ROOT,
            env=self.env(),
            check=True,
            timeout=120,
        )


async def api(session, base, method, path, token=None, **body):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.request(method, base + path, json=body or None, headers=headers) as r:
        payload = await r.json() if r.content_type == "application/json" else None
        if r.status >= 400:
            raise SystemExit(f"{method} {path}: {r.status} {payload}")
        return payload


async def set_up(base: str) -> None:
    async with aiohttp.ClientSession() as session:
        tokens = {}
        for name, display in (("mia", "Mia Chen"), ("leo", "Leo Park"), ("ops", "Operator")):
            await api(
                session,
                base,
                "POST",
                "/api/v1/auth/register",
                username=name,
                email=f"{name}@example.com",
                password=PASSWORD,
            )
            login = await api(
                session, base, "POST", "/api/v1/auth/login", login=name, password=PASSWORD
            )
            tokens[name] = (login["access_token"], login["user"]["id"])
            await api(session, base, "PATCH", "/api/v1/me", tokens[name][0], display_name=display)
        mia, mia_id = tokens["mia"]
        leo, leo_id = tokens["leo"]
        await api(session, base, "POST", "/api/v1/contacts/requests", mia, user_id=leo_id)
        await api(session, base, "POST", f"/api/v1/contacts/requests/{mia_id}/accept", leo)
        await api(
            session, base, "POST", "/api/v1/wallet/dev-topup", mia, amount=5000, currency="USD"
        )


async def sign_in(page, base: str, username: str) -> None:
    await page.goto(base + "/")
    await page.get_by_test_id("auth-username").fill(username)
    await page.get_by_test_id("auth-password").fill(PASSWORD)
    await page.get_by_test_id("auth-submit").click()
    await page.locator("body[data-connected=true]").wait_for(state="attached")


async def clear_toasts(*pages) -> None:
    for page in pages:
        await page.evaluate("() => document.getElementById('toasts').replaceChildren()")


async def send(page, text: str) -> None:
    await page.get_by_test_id("composer-input").fill(text)
    await page.get_by_test_id("composer-input").press("Enter")


async def shoot(base: str, admin_available: bool) -> list[Path]:
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=20_000)
    saved = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        pages = {}
        for name in ("mia", "leo"):
            context = await browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
            await context.grant_permissions(["camera", "microphone"], origin=base)
            pages[name] = await context.new_page()
            await sign_in(pages[name], base, name)
        mia, leo = pages["mia"], pages["leo"]

        # 1. A direct chat: messages both ways, a reaction, a reply, read marks.
        await mia.get_by_test_id("find-user").click()
        await mia.get_by_test_id("user-search-input").fill("leo")
        await mia.get_by_test_id("user-result").get_by_test_id("open-chat").click()
        await send(mia, "Hi Leo! Are we still on for the hike on Saturday?")
        await leo.get_by_test_id("conversation-item").filter(has_text="Mia").click()
        await send(leo, "Yes! Meet at the trailhead at 8?")
        await expect(mia.get_by_test_id("message").filter(has_text="trailhead")).to_be_visible()
        await (
            mia.get_by_test_id("message")
            .filter(has_text="trailhead")
            .get_by_test_id("react-button")
            .click()
        )
        await send(mia, "Perfect, I'll bring snacks")
        await expect(leo.get_by_test_id("message").filter(has_text="snacks")).to_be_visible()
        await leo.get_by_test_id("composer-input").press_sequentially("See you th")
        await expect(mia.get_by_test_id("typing-indicator")).to_contain_text("typing")
        await expect(mia.get_by_test_id("message-status").last).to_have_text("Read")
        await clear_toasts(mia)
        saved.append(OUT / "chat.png")
        await mia.screenshot(path=saved[-1])
        await leo.get_by_test_id("composer-input").fill("")
        # The same chat on a phone-sized screen (one pane at a time).
        await leo.set_viewport_size({"width": 390, "height": 760})
        await clear_toasts(leo)
        saved.append(OUT / "chat-narrow.png")
        await leo.screenshot(path=saved[-1])
        await leo.set_viewport_size(VIEWPORT)

        # 2. A group with the poll mini-program, both voted, and a red packet.
        await mia.get_by_test_id("new-group").click()
        await mia.get_by_test_id("group-title").fill("Weekend crew")
        await mia.locator("[data-testid=group-member][data-username=leo]").check()
        await mia.get_by_test_id("group-create").click()
        await expect(mia.get_by_test_id("chat-title")).to_have_text("Weekend crew")
        await mia.get_by_test_id("apps-button").click()
        await (
            mia.locator("[data-testid=app-item][data-app-id=poll]")
            .get_by_test_id("add-app")
            .click()
        )
        await mia.keyboard.press("Escape")
        await send(mia, '/poll "Where do we eat after the hike?" Pizza Sushi Tacos')
        card = mia.get_by_test_id("card").filter(has_text="Where do we eat")
        await card.get_by_test_id("card-button").filter(has_text="Sushi").click()
        await leo.get_by_test_id("conversation-item").filter(has_text="Weekend crew").click()
        leo_card = leo.get_by_test_id("card").filter(has_text="Where do we eat")
        await leo_card.get_by_test_id("card-button").filter(has_text="Sushi").click()
        await expect(card.get_by_test_id("card-field").filter(has_text="Sushi")).to_contain_text(
            "2 votes"
        )
        await mia.get_by_test_id("red-packet-button").click()
        await mia.get_by_test_id("red-packet-total").fill("6.00")
        await mia.get_by_test_id("red-packet-count").fill("2")
        await mia.get_by_test_id("red-packet-greeting").fill("Snacks are on me!")
        await mia.get_by_test_id("red-packet-submit").click()
        await expect(leo.get_by_test_id("red-packet-card")).to_be_visible()
        await leo.get_by_test_id("red-packet-card").get_by_test_id("card-button").click()
        await expect(leo.get_by_test_id("toast-claimed")).to_be_visible()
        await send(leo, "Sushi it is, thanks for the red packet!")
        await expect(mia.get_by_test_id("message").filter(has_text="Sushi it is")).to_be_visible()
        await clear_toasts(mia)
        saved.append(OUT / "group-poll.png")
        await mia.screenshot(path=saved[-1])

        # 3. A video call between the two (Chromium's fake camera).
        await mia.get_by_test_id("conversation-item").filter(has_text="Leo").click()
        await mia.get_by_test_id("call-button").click()
        await leo.get_by_test_id("accept-call").click()
        for page in (mia, leo):
            await page.locator("[data-testid=remote-video]").wait_for()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            width = await mia.evaluate(
                "() => document.querySelector('[data-testid=remote-video]').videoWidth"
            )
            if width:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)  # a few frames, for a picture rather than a black box
        await clear_toasts(mia)
        saved.append(OUT / "call.png")
        await mia.screenshot(path=saved[-1])
        await mia.get_by_test_id("call-hangup").click()

        # 4. The admin panel, signed in as the operator.
        if admin_available:
            context = await browser.new_context(viewport=VIEWPORT)
            admin = await context.new_page()
            await admin.goto(base + "/admin")
            await admin.get_by_test_id("signin-login").fill("ops")
            await admin.get_by_test_id("signin-password").fill(PASSWORD)
            await admin.get_by_test_id("signin-submit").click()
            await expect(admin.get_by_test_id("admin-panel")).to_be_visible()
            await admin.wait_for_load_state("networkidle")
            saved.append(OUT / "admin.png")
            await admin.screenshot(path=saved[-1])
            tab = admin.get_by_test_id("tab-charts")
            if await tab.count():
                await tab.click()
                await admin.wait_for_load_state("networkidle")
                saved.append(OUT / "admin-charts.png")
                await admin.screenshot(path=saved[-1])
        await browser.close()
    return saved


def main() -> int:
    if not (ROOT / "gateway" / "web" / "dist" / "index.html").exists():
        print("the web client is not built: run `make web` first", file=sys.stderr)
        return 1
    if not Path(CHROMIUM).exists():
        print(f"no Chromium at {CHROMIUM} (apt-get install chromium)", file=sys.stderr)
        return 1
    admin_available = (ROOT / "gateway" / "web" / "dist" / "admin.html").exists()
    with tempfile.TemporaryDirectory(prefix="aetherial-screens-") as tmp:
        platform = Platform(Path(tmp) / "var")
        platform.start()
        try:
            asyncio.run(set_up(platform.base))
        finally:
            platform.stop()
        if admin_available:
            platform.create_admin("ops")
        platform.start()
        try:
            saved = asyncio.run(shoot(platform.base, admin_available))
        finally:
            platform.stop()
    for path in saved:
        print(f"saved {path.relative_to(ROOT)}")
    if not admin_available:
        print("no admin panel in this build (gateway/web/src/admin.html): admin.png skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
