"""Badges as verifiable credentials: one credential under concurrent completions, the
achievement card in the learner's service chat and shared into a chat, verification (valid,
tampered, revoked), revocation by the course's instructor (by badge id or learner id) and the
refusals: someone else's badge, another instructor's course, no reason, not an instructor."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from sdk import ViewError
from tests.miniapps.courses.motivation_fixtures import (
    COURSE_ID,
    award,
    last_ephemeral,
    local,
    new_sim,
    put,
)

OTHER_COURSE = "c-rust"


@pytest.fixture
async def world(monkeypatch):
    sim = new_sim(monkeypatch, local("Europe/Berlin", 2027, 6, 1, 10, 0))
    iris, olga = sim.user("iris"), sim.user("olga")
    sim.grant_role(iris, "instructor")
    sim.grant_role(olga, "instructor")
    ana, ben = sim.user("ana"), sim.user("ben")
    chat = sim.conversation(members=[iris, olga, ana, ben])
    await put(sim, "courses", COURSE_ID, {"title": "Python 101", "instructor": iris.id})
    await put(sim, "courses", OTHER_COURSE, {"title": "Rust", "instructor": olga.id})
    await award(sim, ana, chat, 320, "earned")
    return SimpleNamespace(sim=sim, iris=iris, olga=olga, ana=ana, ben=ben, chat=chat)


async def complete(sim, user, chat, course_id: str = COURSE_ID):
    return (await sim.view(user, chat, "test.completed", {"course_id": course_id}))["badge"]


async def test_concurrent_completions_issue_one_badge_that_verifies(world):
    sim, ana, chat = world.sim, world.ana, world.chat

    answers = await asyncio.gather(*(complete(sim, ana, chat) for _ in range(8)))
    issued = [a for a in answers if a is not None]
    assert len(issued) == 1 and len(sim.credentials) == 1
    [(credential_id, stored)] = sim.credentials.items()
    assert stored["subject"] is ana and stored["status"] == "valid"
    achievement = stored["credential"]["credentialSubject"]["achievement"]
    assert achievement["name"] == "Completed Python 101"

    badge = sim.storage("badges")[f"{ana.id}:{COURSE_ID}"]
    assert (badge["state"], badge["credential_id"], badge["xp"]) == ("issued", credential_id, 320)
    assert sim.verify_credential(badge["jwt"])["valid"] is True

    # The learner hears of it in her service chat: the achievement card, the URL in its text.
    [message] = sim.notifications(ana)
    assert message["text"].startswith("Ana finished *Python 101* · 320 XP\n")
    assert badge["url"] in message["text"]

    # Completing again (a retried completion check) issues nothing more.
    assert await complete(sim, ana, chat) is None
    assert len(sim.credentials) == 1 and len(sim.notifications(ana)) == 1


async def test_a_tampered_badge_fails_verification(world):
    sim, ana, chat = world.sim, world.ana, world.chat
    badge = await complete(sim, ana, chat)
    header, payload, signature = badge["jwt"].split(".")
    flipped = payload[:-5] + ("A" if payload[-5] != "A" else "B") + payload[-4:]
    verdict = sim.verify_credential(f"{header}.{flipped}.{signature}")
    assert verdict["valid"] is False
    assert verdict["reason"] in ("bad_signature", "malformed")
    assert sim.verify_credential(badge["jwt"])["valid"] is True


async def test_listing_and_sharing_the_achievement_card(world):
    sim, ana, ben, chat = world.sim, world.ana, world.ben, world.chat
    badge = await complete(sim, ana, chat)

    await sim.command(ana, chat, "/course badges")
    listed = last_ephemeral(sim, ana)
    assert listed.startswith("Your badges (1)") and badge["credential_id"] in listed

    await sim.command(ana, chat, f"/course badges share {badge['credential_id']}")
    [shared] = [m for m in sim.messages(chat) if m["type"] == "card"]
    assert shared["card"]["text"].startswith("Ana finished *Python 101* · 320 XP\n")
    assert badge["url"] in shared["card"]["text"]

    view = await sim.view(ana, chat, "badge.card", {"badge_id": badge["credential_id"]})
    assert view["card"]["text"] == shared["card"]["text"]
    assert (await sim.view(ana, chat, "badges.mine", {}))["badges"][0][
        "course_title"
    ] == "Python 101"

    # Someone else's badge cannot be shared or fetched; bad arguments are answered privately.
    await sim.command(ben, chat, f"/course badges share {badge['credential_id']}")
    assert last_ephemeral(sim, ben) == "No such badge of yours: /course badges lists them."
    with pytest.raises(ViewError) as refused:
        await sim.view(ben, chat, "badge.card", {"badge_id": badge["credential_id"]})
    assert refused.value.code == "not_found"
    await sim.command(ana, chat, "/course badges share")
    assert last_ephemeral(sim, ana).startswith("Usage: /course badges")
    await sim.command(ben, chat, "/course badges")
    assert last_ephemeral(sim, ben) == "No badges yet: finish a course to earn one."
    assert len([m for m in sim.messages(chat) if m["type"] == "card"]) == 1


async def test_the_instructor_revokes_and_verification_reports_it(world):
    sim, iris, ana, chat = world.sim, world.iris, world.ana, world.chat
    badge = await complete(sim, ana, chat)
    credential_id = badge["credential_id"]

    await sim.command(iris, chat, f"/course revoke {credential_id} copied the final quiz")
    assert last_ephemeral(sim, iris) == "Revoked Ana's badge for Python 101."
    verdict = sim.verify_credential(badge["jwt"])
    assert (verdict["valid"], verdict["status"]) == (False, "revoked")
    assert sim.credentials[credential_id]["reason"] == "copied the final quiz"
    stored = sim.storage("badges")[f"{ana.id}:{COURSE_ID}"]
    assert (stored["state"], stored["reason"]) == ("revoked", "copied the final quiz")
    assert "was revoked by the instructor: copied the final quiz" in sim.notifications(ana)[-1]

    await sim.command(iris, chat, f"/course revoke {credential_id} again")
    assert last_ephemeral(sim, iris).startswith("That badge was revoked already")
    # A revoked badge is not issued again by a later completion check, nor shared.
    assert await complete(sim, ana, chat) is None and len(sim.credentials) == 1
    await sim.command(ana, chat, f"/course badges share {credential_id}")
    assert last_ephemeral(sim, ana).startswith("No such badge of yours")


async def test_revoking_by_learner_id_names_their_badge_of_my_courses(world):
    sim, iris, ana, chat = world.sim, world.iris, world.ana, world.chat
    mine = await complete(sim, ana, chat)
    theirs = await complete(sim, ana, chat, OTHER_COURSE)  # Olga's course

    await sim.command(iris, chat, f"/course revoke {ana.id} shared answers")
    assert last_ephemeral(sim, iris) == "Revoked Ana's badge for Python 101."
    assert sim.credentials[mine["credential_id"]]["status"] == "revoked"
    assert sim.credentials[theirs["credential_id"]]["status"] == "valid"


async def test_revocation_refusals_write_nothing(world):
    sim, iris, olga, ana, chat = world.sim, world.iris, world.olga, world.ana, world.chat
    badge = await complete(sim, ana, chat)
    credential_id = badge["credential_id"]

    await sim.command(olga, chat, f"/course revoke {credential_id} not mine to revoke")
    assert last_ephemeral(sim, olga) == "No such badge among your courses."
    await sim.command(olga, chat, f"/course revoke {ana.id} not mine either")
    assert last_ephemeral(sim, olga) == "No such badge among your courses."
    await sim.command(ana, chat, f"/course revoke {credential_id} I changed my mind")
    assert last_ephemeral(sim, ana) == "Only instructors can revoke badges."
    await sim.command(iris, chat, f"/course revoke {credential_id}")
    assert last_ephemeral(sim, iris).startswith("Usage: /course revoke")
    await sim.command(iris, chat, f"/course revoke {credential_id} {'x' * 501}")
    assert last_ephemeral(sim, iris) == "A reason is limited to 500 characters."
    await sim.command(iris, chat, "/course revoke nobody-at-all a reason")
    assert last_ephemeral(sim, iris) == "No such badge among your courses."

    assert sim.credentials[credential_id]["status"] == "valid"
    assert sim.verify_credential(badge["jwt"])["valid"] is True
    assert sim.storage("badges")[f"{ana.id}:{COURSE_ID}"]["state"] == "issued"


async def test_a_badge_being_issued_is_not_issued_again_and_a_failed_one_is_retried(world):
    sim, ana, chat = world.sim, world.ana, world.chat
    key = f"{ana.id}:{COURSE_ID}"
    # Another completion check holds the claim (its issue is in flight): this one stands back.
    claim = {"learner": ana.id, "course_id": COURSE_ID, "state": "issuing", "claimed_at": sim.now}
    await put(sim, "badges", key, claim)
    assert await complete(sim, ana, chat) is None
    assert sim.credentials == {} and sim.storage("badges")[key]["state"] == "issuing"
    # A claim left by an invocation that died mid-issue is taken over once it is stale.
    await sim.advance(minutes=11)
    assert (await complete(sim, ana, chat))["state"] == "issued"
    assert len(sim.credentials) == 1

    # An issue that failed is claimed again by the next check, and issued once.
    await put(sim, "badges", key, {"learner": ana.id, "course_id": COURSE_ID, "state": "failed"})
    answers = await asyncio.gather(complete(sim, ana, chat), complete(sim, ana, chat))
    assert len([a for a in answers if a]) == 1 and len(sim.credentials) == 2
    assert sim.storage("badges")[key]["state"] == "issued"


async def test_listing_my_badges_issues_one_whose_issue_had_failed(world):
    sim, ana, chat = world.sim, world.ana, world.chat
    await put(
        sim,
        "badges",
        f"{ana.id}:{OTHER_COURSE}",
        {"learner": ana.id, "course_id": OTHER_COURSE, "state": "failed", "error": "timeout"},
    )
    await sim.command(ana, chat, "/course badges")
    assert last_ephemeral(sim, ana).startswith("Your badges (1)\n🎓 Rust · /credentials/")
    [credential] = sim.credentials.values()
    assert credential["credential"]["credentialSubject"]["achievement"]["name"] == "Completed Rust"
    await sim.command(ana, chat, "/course badges")
    assert len(sim.credentials) == 1
