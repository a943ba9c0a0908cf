"""Badges: an Open Badges 3.0 credential for each completed course, verifiable by anyone,
revocable by the course's instructor, and an achievement card the learner can share.

- ``badges.on_completed(ctx, learner, course_id)`` (called once by ``completion.check``): claims
  ``badges/<learner>:<course>`` create-only (``storage_update(expected_version=0,
  upsert=True)``: concurrent completions issue one credential), then
  ``ctx.issue_credential(learner, {id, name: "Completed <title>", description, criteria})`` —
  the host signs the ``OpenBadgeCredential`` (EdDSA JWS) and serves its public verification at
  ``url`` — and stores ``credential_id``, ``url`` and ``jwt``. The learner gets the achievement
  card as a service message (if they opted in). An issue that failed leaves the claim
  ``failed`` (the completion itself goes on): the next call claims it again (conditional
  write) and retries — ``/course badges`` makes that call for the invoker's failed badges; so
  does a claim left ``issuing`` for over ten minutes (an invocation that died between claim
  and issue).
- The **achievement card** ("Ana finished *Python 101* · 320 XP", with the verification URL in
  its text: a card cannot link out) is shared by ``/course badges share <badge id>``, which posts
  it as a normal card in the chat it is typed in; the web view gets it from the view
  ``badge.card {badge_id}`` (for ``Aetherial.shareCard``). ``/course badges`` lists the
  invoker's badges privately (an ephemeral card stores nothing on the host, so it has no
  buttons: it names the command).
- ``/course revoke <badge id | learner id> <reason>`` (role ``instructor``, and only badges of
  courses whose ``instructor`` is the invoker): ``ctx.revoke_credential`` — the public
  verification then reports ``revoked`` with the reason — and the badge is marked revoked; the
  learner is told. A learner id names their one badge of the instructor's courses (with
  several, the answer lists the badge ids).

Data: ``badges`` key ``<learner>:<course>``: ``{learner, course_id, course_title, name, xp,
state: issuing|issued|failed|revoked, credential_id, url, jwt, claimed_at, issued_at,
revoked_at, reason}``; ``badge_ids`` key ``<credential id>``: ``{badge}`` (the ``badges`` key).
"""

from __future__ import annotations

import asyncio
import logging
import random

import streaks

from sdk import Card, Conflict, HostError, Reply, ScopeDenied, ViewError

log = logging.getLogger("app.courses.badges")

BADGES, BADGE_IDS = "badges", "badge_ids"
CAS_ATTEMPTS = 20
CLAIM_STALE_MS = 10 * 60 * 1000  # an invocation answers within seconds: a claim this old died
REASON_MAX = 500
LISTED_MAX = 20
NO_BADGE = "No such badge among your courses."
REVOKE_USAGE = "Usage: /course revoke <badge id | learner id> <reason>"
BADGES_USAGE = "Usage: /course badges — your badges · /course badges share <badge id>"


async def learner_name(ctx, learner: str) -> str:
    """The learner's display name (when they are the invoker and shared it), else a stand-in."""
    if learner == ctx.user_id:
        try:
            profile = await ctx.get_profile()
        except (ScopeDenied, HostError):
            profile = {}
        if profile.get("display_name"):
            return str(profile["display_name"])[:40]
    return "A learner"


def achievement_card(badge: dict) -> Card:
    """The shareable card: who finished what, their XP, and where to verify it."""
    return Card(
        title=f"🎓 {badge['course_title']}"[:100],
        text=(
            f"{badge['name']} finished *{badge['course_title']}* · {badge['xp']} XP\n"
            f"Verified badge (Open Badges 3.0): {badge['url']}"
        )[:2000],
    )


def claimable(doc: dict | None, now: int) -> bool:
    """Whether a badge may be (re)claimed for issuing: none yet, a failed issue, or a claim
    left behind by an invocation that died mid-issue (older than ``CLAIM_STALE_MS``)."""
    if doc is None or doc.get("state") == "failed":
        return True
    return doc.get("state") == "issuing" and int(doc.get("claimed_at") or 0) < now - CLAIM_STALE_MS


async def claim(ctx, key: str, fields: dict) -> bool:
    """Take the right to issue the badge ``key``: True for the one caller that may; False when
    it is issued, being issued, or revoked."""
    for attempt in range(CAS_ATTEMPTS):
        doc, version = await ctx.storage_get_versioned(BADGES, key)
        if not claimable(doc, fields["claimed_at"]):
            return False
        try:
            await ctx.storage_update(
                BADGES,
                key,
                {**fields, "state": "issuing"},
                expected_version=version,
                upsert=doc is None,
            )
        except Conflict:
            await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
            continue
        return True
    return False


async def on_completed(ctx, learner: str, course_id: str) -> dict | None:
    """Issue ``learner``'s badge for ``course_id``, once: the badge as stored by this call, or
    None when it was issued (or is being issued) already, or could not be issued now (left
    ``failed``, retried by the next call)."""
    key = f"{learner}:{course_id}"
    course = await ctx.storage_get("courses", course_id) or {}
    title = str(course.get("title") or course_id)[:150]
    at = streaks.now_ms()
    if not await claim(ctx, key, {"learner": learner, "course_id": course_id, "claimed_at": at}):
        return None
    xp_doc = await ctx.storage_get("xp", learner) or {}
    badge = {
        "learner": learner,
        "course_id": course_id,
        "course_title": title,
        "name": await learner_name(ctx, learner),
        "xp": int(xp_doc.get("total") or 0),
    }
    achievement = {
        "id": f"course:{course_id}"[:200],
        "name": f"Completed {title}",
        "description": f"Completed the course {title}: every lesson read and every quiz passed.",
        "criteria": "Read every lesson of the course and pass every quiz with the passing grade.",
    }
    try:
        issued = await ctx.issue_credential(learner, achievement)
    except HostError as exc:
        log.warning("badge %s not issued (%s): the next completion check retries", key, exc.code)
        await ctx.storage_update(BADGES, key, {**badge, "state": "failed", "error": exc.code})
        return None
    badge.update(
        state="issued",
        credential_id=issued["credential_id"],
        url=issued["url"],
        jwt=issued["jwt"],
        issued_at=at,
    )
    await ctx.storage_update(BADGES, key, badge)
    await ctx.storage_put(BADGE_IDS, issued["credential_id"], {"badge": key})
    card = achievement_card(badge)
    card.text = (
        f"{card.text}\nShare it in any chat: /course badges share {issued['credential_id']}"[:2000]
    )
    try:
        await ctx.send_service_message(learner, card=card)
    except (ScopeDenied, HostError) as exc:
        log.info("badge %s: no service message (%s)", key, getattr(exc, "code", exc))
    return badge


async def badge_by_id(ctx, badge_id: str) -> tuple[str | None, dict | None]:
    """``(badges key, badge)`` of a credential id, or ``(None, None)``."""
    if not isinstance(badge_id, str) or not 0 < len(badge_id) <= 200:
        return None, None
    pointer = await ctx.storage_get(BADGE_IDS, badge_id)
    if not pointer:
        return None, None
    return pointer["badge"], await ctx.storage_get(BADGES, pointer["badge"])


async def own_issued_badge(ctx, badge_id: str) -> dict | None:
    """The invoker's own issued (not revoked) badge ``badge_id``, or None."""
    _, badge = await badge_by_id(ctx, badge_id)
    if badge is None or badge.get("learner") != ctx.user_id or badge.get("state") != "issued":
        return None
    return badge


async def my_badges(ctx) -> list[dict]:
    """The invoker's issued badges, oldest first — after retrying any whose issue failed or
    was cut short (``completion.check`` completes a course once, so this is where a badge
    that could not be issued then gets issued)."""
    items = await ctx.storage_find(BADGES, {"learner": ctx.user_id})
    now = streaks.now_ms()
    badges = []
    for item in items:
        badge = item["value"]
        if claimable(badge, now):
            badge = await on_completed(ctx, ctx.user_id, badge["course_id"]) or badge
        if badge.get("state") == "issued":
            badges.append(badge)
    return sorted(badges, key=lambda b: b.get("issued_at", 0))


async def badges_command(ctx, args: list[str]) -> Reply | None:
    """``/course badges`` (mine, privately) and ``/course badges share <badge id>``."""
    if args and args[0].lower() == "share":
        if len(args) != 2:
            return Reply(ephemeral=BADGES_USAGE)
        badge = await own_issued_badge(ctx, args[1])
        if badge is None:
            return Reply(ephemeral="No such badge of yours: /course badges lists them.")
        await ctx.send_card(achievement_card(badge))
        return None
    if args:
        return Reply(ephemeral=BADGES_USAGE)
    badges = await my_badges(ctx)
    if not badges:
        return Reply(ephemeral="No badges yet: finish a course to earn one.")
    lines = [
        f"🎓 {b['course_title']} · {b['url']} · id {b['credential_id']}"
        for b in badges[:LISTED_MAX]
    ]
    lines.append("Share one here: /course badges share <id>")
    text = "\n".join(lines)
    return Reply(ephemeral=Card(title=f"Your badges ({len(badges)})", text=text[:2000]))


async def find_instructors_badge(ctx, who: str) -> tuple[str | None, dict | None, str | None]:
    """``(key, badge, problem)``: the badge named by a badge id or a learner id, among the
    courses the invoker teaches."""
    key, badge = await badge_by_id(ctx, who)
    if badge is not None:
        course = await ctx.storage_get("courses", badge["course_id"]) or {}
        if course.get("instructor") != ctx.user_id:
            return None, None, NO_BADGE
        return key, badge, None
    courses = await ctx.storage_find("courses", {"instructor": ctx.user_id})
    found = []
    for item in courses:
        candidate = await ctx.storage_get(BADGES, f"{who}:{item['key']}")
        if candidate and candidate.get("state") in ("issued", "revoked"):
            found.append((f"{who}:{item['key']}", candidate))
    issued = [f for f in found if f[1]["state"] == "issued"] or found
    if not issued:
        return None, None, NO_BADGE
    if len(issued) > 1:
        ids = ", ".join(f"{b['course_title']}: {b['credential_id']}" for _, b in issued)
        return (
            None,
            None,
            f"That learner has several badges of your courses; name one: {ids}"[:1000],
        )
    return issued[0][0], issued[0][1], None


async def revoke_command(ctx, args: list[str]) -> Reply:
    """``/course revoke <badge id | learner id> <reason>`` (the course's instructor)."""
    if not ctx.has_role("instructor"):
        return Reply(ephemeral="Only instructors can revoke badges.")
    reason = " ".join(args[1:]).strip()
    if len(args) < 2 or not reason:
        return Reply(ephemeral=REVOKE_USAGE)
    if len(reason) > REASON_MAX:
        return Reply(ephemeral=f"A reason is limited to {REASON_MAX} characters.")
    key, badge, problem = await find_instructors_badge(ctx, args[0])
    if problem:
        return Reply(ephemeral=problem)
    if badge["state"] == "revoked":
        return Reply(ephemeral=f"That badge was revoked already ({badge.get('reason')}).")
    try:
        await ctx.revoke_credential(badge["credential_id"], reason)
    except HostError as exc:
        log.warning("badge %s not revoked (%s)", key, exc.code)
        return Reply(ephemeral=f"The badge could not be revoked ({exc.code}).")
    at = streaks.now_ms()
    await ctx.storage_update(
        BADGES,
        key,
        {"state": "revoked", "revoked_at": at, "reason": reason, "revoked_by": ctx.user_id},
    )
    try:
        await ctx.send_service_message(
            badge["learner"],
            text=f"Your badge for {badge['course_title']} was revoked by the instructor: {reason}"[
                :4000
            ],
        )
    except (ScopeDenied, HostError) as exc:
        log.info("revocation of %s: learner not told (%s)", key, getattr(exc, "code", exc))
    return Reply(ephemeral=f"Revoked {badge['name']}'s badge for {badge['course_title']}.")


async def badge_card_view(ctx) -> dict:
    """View ``badge.card {badge_id}``: the achievement card of one of the invoker's badges, for
    the web view to share (``Aetherial.shareCard``)."""
    badge = await own_issued_badge(ctx, ctx.params.get("badge_id"))
    if badge is None:
        raise ViewError("not_found", "No such badge of yours.")
    return {"card": achievement_card(badge).to_dict()}


async def badges_view(ctx) -> dict:
    """View ``badges.mine``: the invoker's badges (course, verification URL, id)."""
    return {
        "badges": [
            {
                k: b.get(k)
                for k in ("course_id", "course_title", "credential_id", "url", "issued_at", "xp")
            }
            for b in await my_badges(ctx)
        ]
    }


SUBCOMMANDS = {"badges": badges_command, "revoke": revoke_command}
VIEWS = {"badge.card": badge_card_view, "badges.mine": badges_view}
