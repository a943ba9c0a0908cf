"""The courses app's web view in real Chromium against a real gateway running the app: an
instructor (the ``instructor`` role, given by an admin) seeds the demo courses over REST; the
learner, in a group with the app, opens the courses from ``/course``'s card, enrols in "Python
101", reads its text lessons, takes its quiz — starts, leaves, resumes, fails once (which
questions were wrong, attempts left), then passes with the answers of ``demo.PYTHON_QUIZ`` — and
the course shows completed; "My badges" lists the badge with its verification address, "Share"
goes through the chat's own share sheet into the group, where the achievement card appears; the
address answers ``status: valid``. Every wait is on the page's state, never a sleep."""

from __future__ import annotations

import re

import pytest

from tests.helpers import ApiClient
from tests.web.app_helpers import call_app_view, role_group
from tests.web.test_chat_browser import TIMEOUT, chat_item, new_page, send, sign_in

pytestmark = pytest.mark.timeout(180)

APP_ID = "courses"
TEXT_LESSONS = {"l-hello": "Hello, Python", "l-values": "Values and variables", "l-loops": "Loops"}


async def call_view(rest: ApiClient, token: str, cid: str, name: str, params: dict | None = None):
    """One of the courses app's views, as its page calls it."""
    return await call_app_view(rest, APP_ID, token, cid, name, params)


async def study_group(rest: ApiClient, app) -> tuple[dict, dict, str]:
    """Ana and Ivan, friends; Ivan an admin who gives himself the app's ``instructor`` role;
    his group "Study group" with Ana, which has the courses app."""
    return await role_group(rest, app, APP_ID, "instructor", "ana", "ivan", "Study group")


async def open_courses(page, base: str):
    """In "Study group": ``/course``, then its card's "Open courses" → the web view's frame."""
    from playwright.async_api import expect

    await chat_item(page, "Study group").click()
    await expect(page.get_by_test_id("chat-title")).to_have_text("Study group")
    await send(page, "/course")
    listing = page.get_by_test_id("card").filter(has_text="Courses").last
    opener = listing.locator("[data-testid=card-button][data-opens=webview]")
    await expect(opener).to_have_text("Open courses")
    await opener.click()
    await expect(page.get_by_test_id("webview")).to_be_visible()
    src = await page.get_by_test_id("webview-frame").get_attribute("src")
    assert src.startswith(f"{base}/miniapps/{APP_ID}/web/index.html?token="), src
    return page.frame_locator("[data-testid=webview-frame]")


async def answer_quiz(frame, *, single: str, multiple: list[str], number: str) -> None:
    """Fill the demo quiz's three questions (q1 single, q2 multiple, q3 numeric) and submit."""
    q1, q2, q3 = (frame.locator(f"fieldset[data-question=q{n}]") for n in (1, 2, 3))
    await q1.get_by_role("radio", name=single, exact=True).check()
    for option in multiple:
        await q2.get_by_role("checkbox", name=option, exact=True).check()
    await q3.locator("input[type=number]").fill(number)
    await frame.locator("#quiz-submit").click()


async def test_a_learner_completes_python_101_and_shares_the_badge(web_gateway, browser):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT)
    base, app = web_gateway
    rest = ApiClient(base)
    try:
        ana, ivan, group = await study_group(rest, app)
        seeded = await call_view(rest, ivan["access_token"], group, "demo.seed")
        assert set(seeded["created"]) == {"python-101", "data-science"}

        page = await new_page(browser, base)
        await sign_in(page, "ana")
        # /course: the catalogue card; "Open courses" opens the web view in the chat.
        frame = await open_courses(page, base)
        listing = page.get_by_test_id("card").filter(has_text="Python 101").last
        await expect(listing).to_contain_text("Free")
        await expect(frame.locator("#tab-author")).to_be_hidden()  # not an instructor
        status_line = frame.locator("#status")

        # The catalogue → Python 101 → enrol (free).
        tile = frame.locator("#grid .card").filter(has_text="Python 101")
        await expect(tile).to_contain_text("Free")
        await expect(frame.locator("#grid .card").filter(has_text="Data Science")).to_be_visible()
        await tile.get_by_role("button", name="Open").click()
        course = frame.locator("#course")
        await expect(course.locator("h2")).to_have_text("Python 101")
        await course.get_by_role("button", name="Enrol · Free").click()
        await expect(course).to_contain_text("0/4 lessons")
        await expect(course.get_by_role("button", name="Enrol · Free")).to_have_count(0)

        # Each text lesson, read in the reader and back.
        for lesson_id, title in TEXT_LESSONS.items():
            await course.locator(f"[data-lesson={lesson_id}]").click()
            await expect(frame.locator("#lesson-title")).to_have_text(title)
            await expect(frame.locator("#lesson-body h1")).to_have_text(title)
            await frame.locator("#lesson-back").click()
            await expect(course.locator(f"[data-lesson={lesson_id}]")).to_have_text(f"✓ {title}")
        await expect(course).to_contain_text("3/4 lessons")
        await expect(course).not_to_contain_text("completed")
        await expect(frame.locator("#course-grade")).to_have_text("Course grade: 0 %")

        # The quiz: its rules; an attempt started, left, and resumed, with its countdown.
        quiz = frame.locator("#quiz")
        await course.locator("[data-lesson=l-quiz]").click()
        await expect(frame.locator("#quiz-title")).to_have_text("Check yourself")
        info = frame.locator("#quiz-info")
        await expect(info).to_contain_text("3 questions")
        await expect(info).to_contain_text("pass at 60 %")
        await expect(info).to_contain_text("3 of 3 attempts left")
        await frame.locator("#quiz-start").click()
        await expect(frame.locator("fieldset.question")).to_have_count(3)
        await expect(frame.locator("#quiz-timer")).to_have_text(re.compile(r"Time left \d+:\d\d"))
        await frame.locator("#quiz-back").click()
        await course.locator("[data-lesson=l-quiz]").click()
        await expect(info).to_contain_text("2 of 3 attempts left")
        await frame.locator("#quiz-resume").click()
        await expect(frame.locator("fieldset.question")).to_have_count(3)
        await expect(frame.locator("#quiz-timer")).to_be_visible()

        # A failed attempt: 1 of 3 right; which were wrong, no answers shown yet.
        await answer_quiz(frame, single="11", multiple=["int", "str", "bool"], number="4")
        result = frame.locator("#quiz-result")
        await expect(frame.locator("#quiz-grade")).to_have_text("33.33 % · Not passed")
        await expect(result.locator("li.right")).to_have_count(1)
        await expect(result.locator("li[data-question=q2]")).to_have_class("right")
        await expect(result.locator("li.wrong")).to_have_count(2)
        await expect(result).to_contain_text("2 attempts left")
        await expect(result).not_to_contain_text("answer:")
        await expect(frame.locator("#quiz-timer")).to_be_hidden()
        await expect(info).to_contain_text("best 33.33 %")

        # Passed (demo.PYTHON_QUIZ's answers: "2"; int, str, bool; 3).
        await frame.locator("#quiz-start").click()
        await expect(frame.locator("#quiz-result")).to_be_hidden()
        await answer_quiz(frame, single="2", multiple=["int", "str", "bool"], number="3")
        # The badge's card names the learner: the host asks her once to share her name.
        consent = page.get_by_test_id("consent-sheet")
        await expect(consent).to_be_visible()
        await consent.get_by_test_id("consent-allow").click()
        await expect(consent).to_have_count(0)
        await expect(frame.locator("#quiz-grade")).to_have_text("100 % · Passed ✓")
        await expect(result.locator("li.right")).to_have_count(3)
        await expect(result).to_contain_text("1 attempt left")
        await expect(info).to_contain_text("passed ✓")
        await expect(status_line).to_have_text("Passed — well done!")
        await result.get_by_role("button", name="Back to the course").click()
        await expect(course).to_contain_text("completed ✓")
        await expect(frame.locator("#course-grade")).to_have_text("Course grade: 100 %")
        await expect(quiz).to_be_hidden()

        # My badges: the badge and where to verify it; Share → the chat's share sheet.
        await frame.locator("#tab-badges").click()
        badge = frame.locator("#badge-list li.badge")
        await expect(badge).to_have_count(1)
        await expect(badge.locator("h3")).to_have_text("🎓 Python 101")
        url_text = badge.locator("code.url")
        await expect(url_text).to_have_text(re.compile(re.escape(base) + r"/credentials/\w+$"))
        url = await url_text.text_content()
        credential_id = url.rsplit("/", 1)[1]
        assert await badge.get_attribute("data-badge") == credential_id
        await badge.get_by_role("button", name="Share").click()
        sheet = page.get_by_test_id("share-sheet")
        await expect(sheet.get_by_test_id("share-preview")).to_contain_text("Python 101")
        choices = sheet.get_by_test_id("share-chat")
        await expect(choices).to_have_count(1)  # the direct chat with Ivan has no courses app
        await expect(choices.first).to_have_attribute("data-conversation-id", group)
        await sheet.get_by_test_id("share-confirm").click()
        await expect(sheet).to_have_count(0)
        await expect(status_line).to_have_text("Shared your Python 101 badge.")

        # The achievement card in the group, as the app's card, with the verification address.
        shared = page.get_by_test_id("card").filter(has_text="finished")
        await expect(shared).to_have_count(1)
        await expect(shared).to_contain_text("Python 101")
        await expect(shared).to_contain_text(f"/credentials/{credential_id}")
        status, body = await rest.get(
            f"/api/v1/conversations/{group}/messages", token=ana["access_token"]
        )
        assert status == 200, body
        cards = [
            m
            for m in body["messages"]
            if m["type"] == "card" and "finished" in (m["card"].get("text") or "")
        ]
        assert len(cards) == 1 and cards[0]["sender_id"] == f"app:{APP_ID}", cards
        assert f"/credentials/{credential_id}" in cards[0]["card"]["text"]

        # The verification address answers over plain HTTP, without an account.
        async with rest.session.get(url) as response:
            assert response.status == 200
            verdict = await response.json()
        assert verdict["status"] == "valid"
        assert "Python 101" in str(verdict["credential"])
        assert page.errors == []
        await page.context.close()
    finally:
        await rest.close()


async def test_an_instructor_writes_a_course_in_the_sandboxed_web_view(web_gateway, browser):
    """The page is sandboxed without ``allow-forms``, where a browser submits no form: the
    authoring forms save through their buttons and Enter in a field."""
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT)
    base, app = web_gateway
    rest = ApiClient(base)
    try:
        _ana, ivan, group = await study_group(rest, app)
        page = await new_page(browser, base)
        await sign_in(page, "ivan")
        frame = await open_courses(page, base)
        status_line = frame.locator("#status")
        await expect(frame.locator("#grid")).to_contain_text("No courses yet.")
        await frame.locator("#tab-author").click()
        course_form = frame.locator("#course-form")
        await course_form.get_by_label("Title").fill("Rust 101")
        await course_form.get_by_label("Description").fill("Ownership and borrowing.")
        await course_form.get_by_label("Published").check()
        await course_form.get_by_role("button", name="Save course").click()
        await expect(status_line).to_have_text("Saved.")
        picked = frame.locator("#author-pick option:checked")
        await expect(picked).to_have_text("Rust 101")
        course_id = await picked.get_attribute("value")

        section_form = frame.locator("#section-form")
        await section_form.get_by_label("Title").fill("Basics")
        await section_form.get_by_label("Title").press("Enter")  # Enter saves, like a submit
        await expect(status_line).to_have_text("Section added.")
        await expect(frame.locator("#section-pick option")).to_have_text(["Basics"])
        lesson_form = frame.locator("#lesson-form")
        await lesson_form.get_by_label("Title").fill("Ownership")
        await lesson_form.get_by_label("Markdown").fill(
            "# Ownership\n\nEach value has one **owner**."
        )
        await lesson_form.get_by_role("button", name="Add lesson").click()
        await expect(status_line).to_have_text("Lesson added.")

        [course] = [
            c
            for c in (await call_view(rest, ivan["access_token"], group, "course.authored"))[
                "courses"
            ]
            if c["id"] == course_id
        ]
        assert course["title"] == "Rust 101" and course["published"] is True
        [section] = course["sections"]
        assert section["title"] == "Basics"
        assert [x["title"] for x in section["lessons"]] == ["Ownership"]
        # The published course in the catalogue; its lesson as the reader renders it.
        await frame.locator("#tab-catalogue").click()
        tile = frame.locator("#grid .card").filter(has_text="Rust 101")
        await tile.get_by_role("button", name="Open").click()
        await frame.locator("#course").get_by_role("button", name="Ownership").click()
        await expect(frame.locator("#lesson-body strong")).to_have_text("owner")
        assert page.errors == []
        await page.context.close()
    finally:
        await rest.close()
