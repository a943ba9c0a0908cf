"""The courses web view's authoring and review screens in real Chromium against a real gateway:
an instructor writes a course in the Authoring tab — a section, a Markdown lesson, a quiz lesson
whose two questions (one single choice, one number with a tolerance) he writes in the quiz
editor, where the server's refusal of a question without its right option shows beside the
form — and a flashcard deck; the learner enrols, passes that quiz (graded on the server), then
reviews the due flashcard: front, "Show answer", "Good", and the due count drops to nothing.
Every wait is on the page's state, never a sleep."""

from __future__ import annotations

import pytest

from tests.helpers import ApiClient
from tests.web.test_chat_browser import TIMEOUT, new_page, sign_in
from tests.web.test_courses_browser import call_view, open_courses, study_group

pytestmark = pytest.mark.timeout(180)


async def author_the_course(frame) -> str:
    """Rust 101 through the Authoring tab: the course, a section, a text lesson and a quiz lesson
    (which opens the quiz editor). Returns the course's id."""
    from playwright.async_api import expect

    status_line = frame.locator("#status")
    await frame.locator("#tab-author").click()
    course_form = frame.locator("#course-form")
    await expect(frame.locator("#deck-form")).to_be_hidden()  # no course picked yet
    await course_form.get_by_label("Title").fill("Rust 101")
    await course_form.get_by_label("Published").check()
    await course_form.get_by_role("button", name="Save course").click()
    await expect(status_line).to_have_text("Saved.")
    course_id = await frame.locator("#author-pick option:checked").get_attribute("value")

    section_form = frame.locator("#section-form")
    await section_form.get_by_label("Title").fill("Basics")
    await section_form.get_by_label("Weight").fill("2")
    await section_form.get_by_role("button", name="Add section").click()
    await expect(status_line).to_have_text("Section added.")

    lesson_form = frame.locator("#lesson-form")
    await lesson_form.get_by_label("Title").fill("Ownership")
    await lesson_form.get_by_label("Markdown").fill("# Ownership\n\nEach value has one owner.")
    await lesson_form.get_by_role("button", name="Add lesson").click()
    await expect(status_line).to_have_text("Lesson added.")
    await expect(frame.locator("#qe-none")).to_be_visible()  # no quiz lesson yet
    await lesson_form.get_by_label("Title").fill("Check yourself")
    await lesson_form.get_by_label("Kind").select_option("quiz")
    await expect(lesson_form.get_by_label("Markdown")).to_be_hidden()  # a quiz has no text
    await lesson_form.get_by_role("button", name="Add lesson").click()
    await expect(status_line).to_have_text("Lesson added.")
    await expect(frame.locator("#lesson-edit-pick option")).to_have_text(
        ["New lesson", "Ownership", "Check yourself (quiz)"]
    )
    return course_id


async def test_an_instructor_authors_a_quiz_and_a_deck_a_learner_passes_and_reviews(
    web_gateway, browser
):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT)
    base, app = web_gateway
    rest = ApiClient(base)
    try:
        ana, ivan, group = await study_group(rest, app)
        page = await new_page(browser, base)
        await sign_in(page, "ivan")
        frame = await open_courses(page, base)
        status_line = frame.locator("#status")
        course_id = await author_the_course(frame)

        # The quiz editor opened on the new quiz lesson with one blank single-choice question.
        editor = frame.locator("#quiz-editor")
        await expect(frame.locator("#qe-pick option:checked")).to_have_text("Check yourself")
        questions = editor.locator("fieldset.qe-question")
        await expect(questions).to_have_count(1)
        first = questions.nth(0)
        await expect(first.locator("legend")).to_have_text("Question 1")
        await first.locator(".qe-text").fill("2 + 2 = ?")
        await first.get_by_label("Option 1", exact=True).fill("3")
        await first.get_by_label("Option 2", exact=True).fill("4")
        await editor.get_by_label("Passing grade").fill("75")
        await editor.get_by_label("Attempts").fill("2")
        await editor.get_by_label("Time limit").fill("5")

        # No right option marked: the server refuses, its message beside the form, nothing saved.
        await editor.get_by_role("button", name="Save quiz").click()
        error = editor.locator(".error")
        await expect(error).to_have_attribute("data-code", "bad_quiz")
        await expect(error).to_contain_text("question 1 correct option")
        instructor_view = await call_view(
            rest,
            ivan["access_token"],
            group,
            "quiz.get",
            {"course_id": course_id, "lesson_id": await frame.locator("#qe-pick").input_value()},
        )
        assert instructor_view["quiz"] is None

        # "4" is right; a second question, a number within ± 0.01.
        await first.get_by_label("Option 2 is right", exact=True).check()
        await editor.get_by_role("button", name="Add question").click()
        await expect(questions).to_have_count(2)
        second = questions.nth(1)
        await expect(second.locator("legend")).to_have_text("Question 2")
        await second.locator(".qe-kind").select_option("numeric")
        await expect(second.get_by_label("Option 1", exact=True)).to_be_hidden()
        await second.locator(".qe-text").fill("π to two decimals?")
        await second.locator(".qe-value").fill("3.14")
        await second.locator(".qe-tolerance").fill("0.01")
        await editor.get_by_role("button", name="Save quiz").click()
        await expect(status_line).to_have_text("Quiz saved: 2 questions.")
        await expect(error).to_be_empty()
        await expect(second.locator(".qe-kind")).to_have_value("numeric")  # as stored
        saved = await call_view(
            rest,
            ivan["access_token"],
            group,
            "quiz.get",
            {"course_id": course_id, "lesson_id": instructor_view["lesson_id"]},
        )
        quiz = saved["quiz"]
        assert (quiz["passing_grade"], quiz["attempt_limit"], quiz["time_limit"]) == (75, 2, 300)
        single, numeric = quiz["questions"]
        assert (single["kind"], single["options"], single["correct"]) == ("single", ["3", "4"], 1)
        assert (numeric["kind"], numeric["value"], numeric["tolerance"]) == ("numeric", 3.14, 0.01)

        # The course's flashcards: on, and one card.
        deck = frame.locator("#deck-form")
        await expect(deck.locator("#deck-list")).to_have_text("No cards yet.")
        await deck.get_by_label("Flashcards on for this course").check()
        await expect(status_line).to_have_text("Flashcards on.")
        await deck.get_by_label("Front").fill("Who owns a value?")
        await deck.get_by_label("Back").fill("Exactly one <owner>.")
        await deck.get_by_role("button", name="Add card").click()
        await expect(status_line).to_have_text("Card added.")
        await expect(deck.locator("#deck-list li[data-card]")).to_have_count(1)
        await expect(deck.locator("#deck-list")).to_contain_text("Exactly one <owner>.")
        assert page.errors == []
        await page.context.close()

        # The learner: enrols, takes the quiz the instructor wrote, and passes it.
        page = await new_page(browser, base)
        await sign_in(page, "ana")
        frame = await open_courses(page, base)
        status_line = frame.locator("#status")
        tile = frame.locator("#grid .card").filter(has_text="Rust 101")
        await tile.get_by_role("button", name="Open").click()
        course = frame.locator("#course")
        await course.get_by_role("button", name="Enrol · Free").click()
        await expect(course.get_by_role("button", name="Enrol · Free")).to_have_count(0)
        await expect(course).to_contain_text("0/2 lessons")
        await course.get_by_role("button", name="Check yourself (quiz)").click()
        info = frame.locator("#quiz-info")
        await expect(info).to_have_text(
            "2 questions · pass at 75 % · 2 of 2 attempts left · 5 min per attempt"
        )
        await frame.locator("#quiz-start").click()
        asked = frame.locator("fieldset.question")
        await expect(asked).to_have_count(2)
        await asked.nth(0).get_by_role("radio", name="4", exact=True).check()
        await asked.nth(1).locator("input[type=number]").fill("3.14159")
        await frame.locator("#quiz-submit").click()
        await expect(frame.locator("#quiz-grade")).to_have_text("100 % · Passed ✓")
        await expect(frame.locator("#quiz-result li.right")).to_have_count(2)
        await expect(status_line).to_have_text("Passed — well done!")
        await expect(info).to_contain_text("passed ✓")

        # Flashcards: the one due card, its back after "Show answer"; "Good" → nothing due.
        await frame.locator("#tab-cards").click()
        due = frame.locator("#cards-due")
        await expect(due).to_have_text("1 card due")
        review = frame.locator("#card-review")
        await expect(review.locator("#card-front")).to_have_text("Who owns a value?")
        await expect(review.locator("#card-back")).to_be_hidden()
        await review.get_by_role("button", name="Show answer").click()
        await expect(review.locator("#card-back")).to_have_text("Exactly one <owner>.")
        await review.get_by_role("button", name="Good").click()
        await expect(due).to_have_text("Nothing due for review.")
        await expect(due).to_have_attribute("data-count", "0")
        await expect(review).to_be_hidden()
        await expect(frame.locator("#card-next")).to_contain_text("Good · next review")
        # The server agrees: scheduled by FSRS, not due any more.
        left = await call_view(rest, ana["access_token"], group, "cards.due")
        assert left["due_count"] == 0 and left["cards"] == []
        assert page.errors == []
        await page.context.close()
    finally:
        await rest.close()
