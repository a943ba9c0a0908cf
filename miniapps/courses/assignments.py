"""Assignments: an instructor sets a course as homework for a group chat, with a deadline.

- ``/course assign <course id> <days>`` (role ``instructor``, in a group; ``days`` 1-90): posts
  the assignment card — the course, the deadline, "n / m finished" and who has finished — with an
  "I'm in" button and a button opening the course in the web view. Timers: ``assign.remind`` one
  day before the deadline (when the deadline is more than a day away) and ``assign.deadline``.
- ``assign.join`` ("I'm in", value the assignment id): the member takes part. An app cannot list
  a group's members, so the members of an assignment are the people who pressed "I'm in"; they
  are asked to allow service messages (for the reminder). Someone who already completed the
  course counts as finished at once.
- ``on_completed(ctx, learner, course_id)``: called when a learner completes a course (by
  ``completion.check``): every open assignment of that course the learner joined marks them
  finished and its card is updated in place (in the assignment's own chat).
- ``assign.remind``: a service message to each member who has not finished (members who did
  not opt in to service messages are skipped). At most once per assignment: the ``reminded``
  flag is written (conditionally) before the messages go out.
- ``assign.deadline``: the assignment closes (``open → closed``, one conditional write) and the
  card shows its final state: who finished, who did not; no more buttons to join.

Data: ``assignments`` key ``as-<token>``: ``{conversation_id, message_id, course_id, title,
instructor, created_at, deadline_at, state: open|closed, reminded, members: {per-app id: {name,
joined_at}}, finished: {per-app id: {name, at}}}``.

This module also holds the small helpers the other cohort modules share (``update_doc``,
``now_ms``, ``load_course``).
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sdk import Button, Card, Field, HostError, Reply, ScopeDenied, documents

log = logging.getLogger("app.courses.assignments")

ASSIGNMENTS = "assignments"
ASSIGNMENT_ID = re.compile(r"^as-[0-9a-f]{12}$")
COURSE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
DAYS_MIN, DAYS_MAX = 1, 90
REMIND_TIMER, DEADLINE_TIMER = "assign.remind", "assign.deadline"
REMIND_BEFORE = timedelta(days=1)
CAS_ATTEMPTS = 40
NAMES_SHOWN = 30  # names listed on a card (the rest are counted)
USAGE = "Usage: /course assign <course id> <days 1-90>"
NO_ASSIGNMENT = "No such assignment in this chat."


# --- helpers shared by the cohort modules -------------------------------------------------


def now_ms(ctx=None) -> int:
    """The time, epoch ms: a timer's own due time inside a timer (so a firing computes the same
    thing however late it runs), else the clock."""
    due_at = getattr(ctx, "due_at", None)
    return int(due_at) if isinstance(due_at, int) else int(time.time() * 1000)


def group_only(ctx, what: str) -> str | None:
    """Why ``what`` cannot happen in this chat (not a group), or None."""
    if ctx.conversation_type == "group":
        return None
    return f"{what} happen in group chats: run this in a group."


async def load_course(ctx, course_id: str) -> dict | None:
    """The course document (AUTHOR's ``courses`` collection), or None for an unknown or
    malformed id."""
    if not COURSE_ID.match(course_id or ""):
        return None
    course = await ctx.storage_get("courses", course_id)
    return course if isinstance(course, dict) else None


async def display_name(ctx, fallback: str) -> str:
    """The invoker's display name (``users.profile``), ``fallback`` when not shared."""
    try:
        profile = await ctx.get_profile()
    except (ScopeDenied, HostError):
        return fallback
    return str(profile.get("display_name") or fallback)[:40]


async def update_doc(ctx, collection: str, key: str, edit: Callable[[dict | None], Any]):
    """``sdk.documents.update_doc``: ``edit(doc)`` a copy, written only if nobody wrote in
    between, else redone; returns ``(outcome, doc)``."""
    return await documents.update_doc(ctx, collection, key, edit, attempts=CAS_ATTEMPTS)


def names(people: list[str]) -> str:
    shown = ", ".join(people[:NAMES_SHOWN])
    more = len(people) - NAMES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- the card -----------------------------------------------------------------------------


def assignment_card(assignment: dict) -> Card:
    """The assignment card: open (join + open the course) or closed (final state)."""
    members, finished = assignment["members"], assignment["finished"]
    done = [finished[m]["name"] for m in sorted(finished, key=lambda m: finished[m]["at"])]
    pending = [members[m]["name"] for m in members if m not in finished]
    is_open = assignment["state"] == "open"
    fields = [Field("Finished", f"{len(finished)} / {len(members)}")]
    if done:
        fields.append(Field("Done ✓", names(done)))
    if pending and not is_open:
        fields.append(Field("Not finished", names(pending)))
    status = f"Due {when(assignment['deadline_at'])}" if is_open else "Closed: deadline passed"
    buttons = []
    if is_open:
        buttons = [
            Button("assign.join", "I'm in", value=assignment["id"], style="primary"),
            Button.webview("Open course", path=f"#course={assignment['course_id']}"),
        ]
    return Card(
        title=f"📚 Assignment: {assignment['title']}"[:100],
        text=status + ("" if members else " · press “I'm in” to take part"),
        fields=fields,
        buttons=buttons,
    )


async def show(ctx, assignment: dict) -> None:
    """Update the assignment's card in place, in its own chat."""
    try:
        await ctx.update_card(
            assignment["message_id"],
            assignment_card(assignment),
            conversation_id=assignment["conversation_id"],
        )
    except HostError as exc:  # the card or the app is gone from that chat: the data stays
        log.warning("assignment card %s not updated: %s", assignment["id"], exc.code)


# --- /course assign -----------------------------------------------------------------------


async def check_assign(ctx, args: list[str]) -> tuple[str | None, dict | None, int]:
    """``(error, course, days)``: why the invoker cannot set this assignment, or the course."""
    if not ctx.has_role("instructor"):
        return "Only instructors can set assignments.", None, 0
    refused = group_only(ctx, "Assignments")
    if refused:
        return refused, None, 0
    if len(args) != 2:
        return USAGE, None, 0
    if not args[1].isdigit() or not DAYS_MIN <= int(args[1]) <= DAYS_MAX:
        return f"The number of days must be {DAYS_MIN}-{DAYS_MAX}. {USAGE}", None, 0
    course = await load_course(ctx, args[0])
    if course is None:
        return f"No course {args[0][:64]!r}.", None, 0
    return None, course, int(args[1])


async def assign(ctx, args: list[str]) -> Reply | None:
    """``/course assign <course id> <days>``."""
    error, course, days = await check_assign(ctx, args)
    if error:
        return Reply(ephemeral=error)
    return await do_assign(ctx, args[0], course, days)


async def do_assign(ctx, course_id: str, course: dict, days: int) -> None:
    now = now_ms(ctx)
    assignment = {
        "id": f"as-{secrets.token_hex(6)}",
        "conversation_id": ctx.conversation_id,
        "message_id": None,
        "course_id": course_id,
        "title": str(course.get("title") or course_id),
        "instructor": ctx.user_id,
        "created_at": now,
        "deadline_at": now + days * 86_400_000,
        "state": "open",
        "reminded": False,
        "members": {},
        "finished": {},
    }
    assignment["message_id"] = await ctx.send_card(assignment_card(assignment))
    await ctx.storage_put(ASSIGNMENTS, assignment["id"], assignment)
    payload = {"assignment_id": assignment["id"]}
    remind_at = assignment["deadline_at"] - int(REMIND_BEFORE.total_seconds() * 1000)
    if remind_at > now:
        await ctx.schedule(
            REMIND_TIMER, at=remind_at, payload=payload, key=f"remind:{assignment['id']}"
        )
    await ctx.schedule(
        DEADLINE_TIMER,
        at=assignment["deadline_at"],
        payload=payload,
        key=f"deadline:{assignment['id']}",
    )


# --- "I'm in" -----------------------------------------------------------------------------


async def join(ctx) -> Reply | None:
    """``assign.join`` (value the assignment id): the member takes part."""
    assignment_id = ctx.value or ""
    current = None
    if ASSIGNMENT_ID.match(assignment_id):
        current = await ctx.storage_get(ASSIGNMENTS, assignment_id)
    if not current or current["conversation_id"] != ctx.conversation_id:
        return Reply(ephemeral=NO_ASSIGNMENT)
    if current["state"] != "open":
        return Reply(ephemeral="This assignment is closed.")
    if ctx.user_id in current["members"]:
        return Reply(ephemeral="You are already in.")
    name = await display_name(ctx, f"Member {len(current['members']) + 1}")
    progress = await ctx.storage_get("progress", f"{ctx.user_id}:{current['course_id']}")
    completed_at = (progress or {}).get("completed_at") if isinstance(progress, dict) else None
    now = now_ms(ctx)

    def add(doc: dict | None) -> str:
        if doc is None or doc["state"] != "open":
            return "closed"
        if ctx.user_id in doc["members"]:
            return "already"
        doc["members"][ctx.user_id] = {"name": name, "joined_at": now}
        if completed_at:
            doc["finished"][ctx.user_id] = {"name": name, "at": int(completed_at)}
        return "joined"

    outcome, doc = await update_doc(ctx, ASSIGNMENTS, assignment_id, add)
    if outcome == "closed":
        return Reply(ephemeral="This assignment is closed.")
    if outcome == "already":
        return Reply(ephemeral="You are already in.")
    await show(ctx, doc)
    with contextlib.suppress(HostError):  # for the reminder, a service message
        await ctx.request_subscription()
    return Reply(ephemeral=f"You're in: finish {doc['title']} by {when(doc['deadline_at'])}.")


# --- completion hook ----------------------------------------------------------------------


async def on_completed(ctx, learner: str, course_id: str) -> int:
    """``learner`` completed ``course_id``: mark them finished in every open assignment of that
    course they joined and update those cards. Returns how many assignments changed.
    Idempotent (a second call changes nothing)."""
    found = await ctx.storage_find(
        ASSIGNMENTS,
        {"course_id": course_id, "state": "open", f"members.{learner}": {"$exists": True}},
        limit=100,
    )
    now = now_ms(ctx)
    changed = 0
    for item in found:

        def finish(doc: dict | None) -> bool:
            if doc is None or doc["state"] != "open" or learner not in doc["members"]:
                return False
            if learner in doc["finished"]:
                return False
            doc["finished"][learner] = {"name": doc["members"][learner]["name"], "at": now}
            return True

        done, doc = await update_doc(ctx, ASSIGNMENTS, item["key"], finish)
        if done:
            changed += 1
            await show(ctx, doc)
    return changed


# --- timers -------------------------------------------------------------------------------


async def on_remind(ctx) -> None:
    """One day before the deadline: a service message to each member who has not finished."""
    assignment_id = str(ctx.payload.get("assignment_id", ""))

    def mark(doc: dict | None) -> bool:
        if doc is None or doc["state"] != "open" or doc["reminded"]:
            return False
        doc["reminded"] = True
        return True

    first, doc = await update_doc(ctx, ASSIGNMENTS, assignment_id, mark)
    if not first:
        return
    text = (
        f"Reminder: the assignment “{doc['title']}” is due {when(doc['deadline_at'])}. "
        "Open /course to finish it."
    )
    for member in doc["members"]:
        if member in doc["finished"]:
            continue
        try:
            await ctx.send_service_message(member, text=text)
        except (ScopeDenied, HostError) as exc:  # not opted in: nothing else to do
            log.info("reminder for %s not sent: %s", assignment_id, exc.code)


async def on_deadline(ctx) -> None:
    """The deadline: the assignment closes once and the card shows its final state."""
    assignment_id = str(ctx.payload.get("assignment_id", ""))

    def close(doc: dict | None) -> bool:
        if doc is None or doc["state"] != "open":
            return False
        doc["state"] = "closed"
        return True

    closed, doc = await update_doc(ctx, ASSIGNMENTS, assignment_id, close)
    if doc is not None and (closed or ctx.attempt > 1):
        await show(ctx, doc)


SUBCOMMANDS = {"assign": assign}
ACTIONS = {"assign.join": join}
TIMERS = {REMIND_TIMER: on_remind, DEADLINE_TIMER: on_deadline}
