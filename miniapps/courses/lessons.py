"""Lessons: their text (Markdown, rendered safely once, at save time), the reader, progress.

- ``lesson.save {course_id, section_id, lesson_id?, title, kind: "text"|"quiz", markdown}``
  (instructor, own course): a text lesson's Markdown (≤ 20 KB) is rendered with markdown-it-py
  (CommonMark + tables; raw HTML off) and sanitised with nh3 (a fixed list of tags and
  attributes; links only http/https/mailto; images only ``media:<id>`` of this app's uploads).
  Stored in ``lessons`` (key ``<course>:<lesson>``: ``{markdown, html}``); the course lists it.
  A quiz lesson has no text: its questions are in ``quizzes`` (see ``quizzes``).
- ``lesson.get {course_id, lesson_id}`` (enrolled learners, and the course's instructor): the
  html, ``media:<id>`` images rewritten to short-lived signed addresses (``ctx.media_url``) at
  read time. For a learner the first read marks the lesson seen (``progress``, key
  ``<learner>:<course>``: ``{learner, course_id, seen: [...], completed_at}``, by conditional
  update), awards 10 XP (``xp.award``, idempotent by reason key) and checks completion.
"""

from __future__ import annotations

import html as html_text
import re
from typing import Any

import catalog
import completion
import nh3
from markdown_it import MarkdownIt

from sdk import Conflict, HostError

MARKDOWN_MAX_BYTES = 20 * 1024
LESSONS_MAX = 200  # per course
LESSON_XP = 10
MEDIA_SRC = re.compile(r'src="media:([0-9a-f]{24})"')

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "th": {"style"},
    "td": {"style"},
    "code": {"class"},
}
LINK_SCHEMES = {"http", "https", "mailto"}


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    """Images only from this app's media (``media:<id>``); links never to ``media:``; table
    cells keep only their alignment; code only its ``language-*`` class."""
    if tag == "img" and attribute == "src":
        return value if re.fullmatch(r"media:[0-9a-f]{24}", value) else None
    if tag == "a" and attribute == "href":
        scheme = value.split(":", 1)[0].lower() if ":" in value else ""
        return value if scheme in LINK_SCHEMES or not scheme else None
    if attribute == "style":
        return value if re.fullmatch(r"text-align:(left|right|center)", value) else None
    if attribute == "class":
        return value if re.fullmatch(r"language-[A-Za-z0-9_+-]{1,30}", value) else None
    return value


def render(markdown: str) -> str:
    """Markdown → sanitised HTML: no script, no event handler, no ``javascript:`` link, images
    only ``media:<id>``."""
    html = _markdown().render(markdown)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=LINK_SCHEMES | {"media"},
        attribute_filter=_attribute_filter,
        link_rel="noopener noreferrer nofollow",
    )


async def with_media_urls(ctx, html: str) -> str:
    """``media:<id>`` image sources → signed addresses (an unknown one: no image)."""
    ids = set(MEDIA_SRC.findall(html))
    urls: dict[str, str] = {}
    for media_id in ids:
        try:
            urls[media_id] = html_text.escape(await ctx.media_url(media_id), quote=True)
        except HostError:
            urls[media_id] = ""
    return MEDIA_SRC.sub(lambda m: f'src="{urls[m.group(1)]}"', html)


# --- authoring ------------------------------------------------------------------------------


async def do_lesson_save(ctx) -> dict[str, Any]:
    """``lesson.save``: a new lesson (no ``lesson_id``) or a change of one."""
    catalog.check_instructor(ctx)
    p = ctx.params
    course_id = catalog.check_course_id(p.get("course_id"))
    title = catalog.check_text(p, "title", catalog.TITLE_MAX, required=True)
    kind = p.get("kind", "text")
    if kind not in ("text", "quiz"):
        raise catalog.CatalogError("invalid_kind", 'kind: "text" or "quiz".')
    markdown = p.get("markdown") or ""
    if not isinstance(markdown, str):
        raise catalog.CatalogError("invalid_markdown", "markdown must be text.")
    if len(markdown.encode()) > MARKDOWN_MAX_BYTES:
        raise catalog.CatalogError(
            "too_long", f"A lesson's text is at most {MARKDOWN_MAX_BYTES // 1024} KB."
        )
    if kind == "text" and not markdown.strip():
        raise catalog.CatalogError("invalid_markdown", "A text lesson needs some text.")
    lesson_id = p.get("lesson_id")
    new_id = "l-" + catalog.secrets.token_hex(4)
    section_id = p.get("section_id")

    def change(course):
        catalog.own_course(ctx, course)
        sections = [{**s, "lessons": list(s["lessons"])} for s in course.get("sections", [])]
        if lesson_id is None:
            section = next((s for s in sections if s["id"] == section_id), None)
            if section is None:
                raise catalog.CatalogError("unknown_section", "No such section in this course.")
            if len(catalog.all_lessons(course)) >= LESSONS_MAX:
                raise catalog.CatalogError("too_many_lessons", f"At most {LESSONS_MAX} lessons.")
            section["lessons"].append({"id": new_id, "kind": kind, "title": title})
        else:
            found = False
            for section in sections:
                for index, lesson in enumerate(section["lessons"]):
                    if lesson["id"] == lesson_id:
                        section["lessons"][index] = {"id": lesson_id, "kind": kind, "title": title}
                        found = True
            if not found:
                raise catalog.CatalogError("unknown_lesson", "No such lesson in this course.")
        return {"sections": sections}

    html = render(markdown) if kind == "text" else ""
    # Check first (nothing written when refused), write the text, then list it in the course.
    course = await catalog.get_course(ctx, course_id)
    change(course)
    the_id = lesson_id or new_id
    await ctx.storage_put(
        "lessons", f"{course_id}:{the_id}", {"markdown": markdown, "html": html, "kind": kind}
    )
    course = await catalog.update_course(ctx, course_id, change)
    return {
        "lesson": {"id": the_id, "kind": kind, "title": title, "html": html},
        "course": await catalog.course_json(ctx, course),
    }


# --- reading and progress -------------------------------------------------------------------


def progress_key(learner: str, course_id: str) -> str:
    return f"{learner}:{course_id}"


async def get_progress(ctx, learner: str, course_id: str) -> dict[str, Any]:
    return await ctx.storage_get("progress", progress_key(learner, course_id)) or {}


async def mark_seen(ctx, learner: str, course_id: str, lesson_id: str) -> bool:
    """Add ``lesson_id`` to the learner's seen lessons (conditional update, retried); True
    when this call added it — exactly one of concurrent calls does."""
    key = progress_key(learner, course_id)
    for _ in range(catalog.RETRIES * 4):
        progress, version = await ctx.storage_get_versioned("progress", key)
        progress = progress or {}
        seen = list(progress.get("seen", []))
        if lesson_id in seen:
            return False
        fields = {"seen": [*seen, lesson_id]}
        if version == 0:
            fields.update(learner=learner, course_id=course_id, completed_at=None)
        try:
            await ctx.storage_update(
                "progress", key, fields, expected_version=version, upsert=version == 0
            )
        except Conflict:
            continue
        return True
    raise catalog.CatalogError("busy", "Too many changes at once: try again.")


async def award_xp(ctx, learner: str, amount: int, reason_key: str) -> None:
    """``xp.award``."""
    import xp

    await xp.award(ctx, learner, amount, reason_key)


async def do_lesson_get(ctx) -> dict[str, Any]:
    """``lesson.get {course_id, lesson_id}``: the lesson to read; marks it seen."""
    course = await catalog.visible_course(ctx, ctx.params.get("course_id"))
    lesson = catalog.find_lesson(course, ctx.params.get("lesson_id"))
    if lesson is None:
        raise catalog.CatalogError("unknown_lesson", "No such lesson in this course.")
    learner, course_id = ctx.user_id, course["id"]
    author = course.get("instructor") == learner
    enrolled = await catalog.is_enrolled(ctx, learner, course_id)
    if not enrolled and not author:
        raise catalog.CatalogError("not_enrolled", "Enrol in the course to read its lessons.")
    stored = await ctx.storage_get("lessons", f"{course_id}:{lesson['id']}") or {}
    answer: dict[str, Any] = {
        "lesson": {
            "id": lesson["id"],
            "kind": lesson["kind"],
            "title": lesson["title"],
            "html": await with_media_urls(ctx, stored.get("html", "")),
        }
    }
    if author and not enrolled:
        answer["lesson"]["markdown"] = stored.get("markdown", "")
        return answer
    if lesson["kind"] == "text" and await mark_seen(ctx, learner, course_id, lesson["id"]):
        await award_xp(ctx, learner, LESSON_XP, f"lesson:{course_id}:{lesson['id']}:{learner}")
    answer["completed"] = await completion.check(ctx, learner, course_id)
    progress = await get_progress(ctx, learner, course_id)
    answer["progress"] = catalog.progress_summary(course, progress)
    return answer


VIEWS = {"lesson.save": do_lesson_save, "lesson.get": do_lesson_get}
