"""Lessons: safe Markdown, the reader, progress, XP on first read, completion exactly once."""

from __future__ import annotations

import asyncio
import base64
import io
import sys

import pytest
from PIL import Image

from sdk import ViewError
from tests.miniapps.courses.conftest import lesson_ids, make_course


async def save_lesson(sim, instructor, chat, course, text, **extra):
    params = {
        "course_id": course["id"],
        "section_id": course["sections"][0]["id"],
        "title": "Safe?",
        "markdown": text,
        **extra,
    }
    return (await sim.view(instructor, chat, "lesson.save", params))["lesson"]


async def test_markdown_is_rendered_and_sanitised(sim, instructor, chat):
    course = await make_course(sim, instructor, chat, lessons=0)
    markdown = (
        "# Title\n\n<script>alert(1)</script>\n\n"
        "[bad](javascript:alert(1)) [ok](https://example.org) [mail](mailto:a@b.c)\n\n"
        '<img src="x" onerror="alert(1)">\n\n'
        "![remote](https://evil.example/x.png) ![mine](media:0123456789abcdef01234567)\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    html = (await save_lesson(sim, instructor, chat, course, markdown))["html"]
    assert "<h1>Title</h1>" in html and "<table>" in html and "<td>1</td>" in html
    assert "<script" not in html and '<img src="x"' not in html
    assert 'href="javascript' not in html and "[bad](javascript:alert(1))" in html  # text only
    assert '<a href="https://example.org" rel="noopener noreferrer nofollow">ok</a>' in html
    assert 'href="mailto:a@b.c"' in html
    assert "evil.example" not in html
    assert 'src="media:0123456789abcdef01234567"' in html
    assert "&lt;script&gt;" in html  # shown as text, not run


async def test_images_of_the_apps_media_become_signed_urls_when_read(sim, instructor, chat):
    course = await make_course(sim, instructor, chat, lessons=0)
    image = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 0, 0)).save(image, "PNG")
    media_id = await sim.call_capability(
        instructor,
        chat,
        "media.upload",
        {"data": base64.b64encode(image.getvalue()).decode(), "content_type": "image/png"},
    )
    assert media_id[0] == "ok", media_id
    media_id = media_id[1]["media_id"]
    lesson = await save_lesson(sim, instructor, chat, course, f"![pic](media:{media_id})")
    read = await sim.view(
        instructor, chat, "lesson.get", {"course_id": course["id"], "lesson_id": lesson["id"]}
    )
    assert f"media:{media_id}" not in read["lesson"]["html"]
    assert f'src="/sim/media/{media_id}?exp=' in read["lesson"]["html"]
    assert "&amp;sig=" in read["lesson"]["html"]


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"markdown": "x" * (20 * 1024 + 1)}, "too_long"),
        ({"markdown": "   "}, "invalid_markdown"),
        ({"kind": "video"}, "invalid_kind"),
        ({"section_id": "s-nope"}, "unknown_section"),
        ({"lesson_id": "l-nope"}, "unknown_lesson"),
        ({"title": ""}, "invalid_title"),
    ],
)
async def test_lesson_save_refuses_bad_input_and_writes_nothing(sim, instructor, chat, extra, code):
    course = await make_course(sim, instructor, chat, lessons=1)
    before = (dict(sim.storage("lessons")), sim.storage("courses")[course["id"]])
    with pytest.raises(ViewError) as refused:
        await save_lesson(sim, instructor, chat, course, "# ok", **extra)
    assert refused.value.code == code
    assert (dict(sim.storage("lessons")), sim.storage("courses")[course["id"]]) == before


async def test_a_lesson_id_of_another_course_is_refused(sim, instructor, learner, chat):
    one = await make_course(sim, instructor, chat, title="One")
    other = await make_course(sim, instructor, chat, title="Other")
    foreign = lesson_ids(other)[0]
    with pytest.raises(ViewError) as refused:
        await save_lesson(sim, instructor, chat, one, "# hijack", lesson_id=foreign)
    assert refused.value.code == "unknown_lesson"
    await sim.view(learner, chat, "enrol", {"course_id": one["id"]})
    with pytest.raises(ViewError) as refused:
        await sim.view(learner, chat, "lesson.get", {"course_id": one["id"], "lesson_id": foreign})
    assert refused.value.code == "unknown_lesson"
    assert sim.storage("progress") == {}


async def test_reading_needs_enrolment_then_marks_seen_once(sim, instructor, learner, chat):
    course = await make_course(sim, instructor, chat, lessons=2)
    first, second = lesson_ids(course)
    params = {"course_id": course["id"], "lesson_id": first}
    with pytest.raises(ViewError) as refused:
        await sim.view(learner, chat, "lesson.get", params)
    assert refused.value.code == "not_enrolled"
    await sim.view(learner, chat, "enrol", {"course_id": course["id"]})
    read = await sim.view(learner, chat, "lesson.get", params)
    assert read["lesson"]["html"].startswith("<h1>Lesson 1</h1>")
    assert read["progress"] == {"done": 1, "total": 2, "percent": 50, "completed_at": None}
    await sim.view(learner, chat, "lesson.get", params)  # again: nothing more
    progress = sim.storage("progress")[f"{learner.id}:{course['id']}"]
    assert progress["seen"] == [first] and progress["completed_at"] is None
    got = await sim.view(learner, chat, "course.get", {"course_id": course["id"]})
    assert [x["seen"] for x in got["course"]["sections"][0]["lessons"]] == [True, False]
    shown = await sim.command(learner, chat, f"/course progress {course['id']}")
    assert shown["ephemeral"]["text"] == "1/2 lessons · 50 % done"
    # the instructor previews without progress
    await sim.view(instructor, chat, "lesson.get", {"course_id": course["id"], "lesson_id": second})
    assert set(sim.storage("progress")) == {f"{learner.id}:{course['id']}"}


async def test_xp_is_awarded_once_per_lesson(sim, instructor, learner, chat):
    if "xp" not in sys.modules:
        pytest.skip("QUIZ's xp module is not there")
    course = await make_course(sim, instructor, chat, lessons=1)
    await sim.view(learner, chat, "enrol", {"course_id": course["id"]})
    params = {"course_id": course["id"], "lesson_id": lesson_ids(course)[0]}
    await asyncio.gather(*(sim.view(learner, chat, "lesson.get", params) for _ in range(5)))
    assert sim.storage("xp")[learner.id]["total"] == 10


async def test_completion_happens_once_under_concurrent_reads(
    sim, instructor, learner, chat, monkeypatch
):
    completion = sys.modules["completion"]
    completed: list[tuple[str, str]] = []

    async def on_completed(ctx, who, course_id):
        completed.append((who, course_id))

    monkeypatch.setattr(completion, "on_completed", on_completed)
    course = await make_course(sim, instructor, chat, lessons=3)
    await sim.view(learner, chat, "enrol", {"course_id": course["id"]})
    reads = [
        sim.view(learner, chat, "lesson.get", {"course_id": course["id"], "lesson_id": lesson})
        for lesson in lesson_ids(course)
        for _ in range(4)
    ]
    answers = await asyncio.gather(*reads)
    assert any(a["completed"] for a in answers)
    assert completed == [(learner.id, course["id"])]
    progress = sim.storage("progress")[f"{learner.id}:{course['id']}"]
    assert sorted(progress["seen"]) == sorted(lesson_ids(course))
    assert progress["completed_at"]
    mine = await sim.command(learner, chat, "/course mine")
    assert mine["ephemeral"]["fields"] == [
        {"label": "Python 101", "value": "3/3 lessons · completed ✓"}
    ]


async def test_a_quiz_lesson_must_be_passed_to_complete(
    sim, instructor, learner, chat, monkeypatch
):
    quizzes = sys.modules["quizzes"]
    passed: dict[str, bool] = {}

    async def result_of(ctx, who, course_id, lesson_id):
        return {"passed": True, "grade": 100} if passed.get(lesson_id) else None

    monkeypatch.setattr(quizzes, "result_of", result_of)
    course = await make_course(sim, instructor, chat, lessons=1)
    quiz = await save_lesson(sim, instructor, chat, course, "", kind="quiz", title="Quiz")
    await sim.view(learner, chat, "enrol", {"course_id": course["id"]})
    text = lesson_ids(course)[0]
    read = await sim.view(
        learner, chat, "lesson.get", {"course_id": course["id"], "lesson_id": text}
    )
    assert read["completed"] is False
    passed[quiz["id"]] = True
    check = sys.modules["completion"].check
    assert sim.storage("progress")[f"{learner.id}:{course['id']}"]["completed_at"] is None
    read = await sim.view(
        learner, chat, "lesson.get", {"course_id": course["id"], "lesson_id": text}
    )
    assert read["completed"] is True and callable(check)


async def test_course_commands_for_someone_not_enrolled(sim, learner, chat):
    assert "not enrolled in any" in (await sim.command(learner, chat, "/course mine"))["ephemeral"]
    reply = await sim.command(learner, chat, "/course progress python-101")
    assert "not enrolled" in reply["ephemeral"]
    assert (await sim.command(learner, chat, "/course progress"))["ephemeral"].startswith("Usage")
