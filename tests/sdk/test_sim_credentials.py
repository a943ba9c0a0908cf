"""The simulator's verifiable credentials: ``credentials.issue`` builds the same Open Badges 3.0
credential as the host and signs it with the simulator's test Ed25519 key; ``sim.credentials``
keeps it by id; ``sim.verify_credential(jwt)`` answers like ``POST /api/v1/credentials/verify``
(valid, a changed character, another key, revoked); only the issuing app revokes."""

from __future__ import annotations

import json

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sdk._sim_credentials import SIM_CREDENTIALS_SEED
from sdk.simulator import Simulator
from tests.miniapps.conftest import APPS_DIR
from tests.sdk.capability_cases import PNG_UPLOAD

BADGER = APPS_DIR / "badger"


async def earn(sim: Simulator, user, chat, name: str = "Python 101") -> dict:
    reply = await sim.command(user, chat, f"/earn {name}")
    return json.loads(reply["text"].removeprefix("badge: "))


def altered(token: str, index: int) -> str:
    return token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1 :]


async def test_an_issued_credential_is_an_open_badge_of_the_per_app_id():
    sim = Simulator(BADGER)
    ann = sim.user("ann")
    chat = sim.conversation([ann])
    badge = await earn(sim, ann, chat)
    stored = sim.credentials[badge["credential_id"]]
    assert stored["jwt"] == badge["jwt"] and stored["status"] == "valid"
    assert stored["subject"] is ann
    assert badge["url"] == f"/credentials/{badge['credential_id']}"
    credential = stored["credential"]
    assert credential["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert credential["@context"][0] == "https://www.w3.org/ns/credentials/v2"
    assert credential["issuer"] == {
        "id": "urn:aetherial:app:badger",
        "type": ["Profile"],
        "name": "Badger",
    }
    subject = credential["credentialSubject"]
    assert subject["id"] == f"urn:aetherial:user:{ann.id}"
    assert subject["type"] == ["AchievementSubject"]
    assert subject["achievement"]["id"] == "urn:aetherial:app:badger:achievement:finisher"
    assert subject["achievement"]["name"] == "Python 101"
    assert credential["credentialStatus"] == {"id": badge["url"], "type": "1EdTechRevocationList"}
    # the JWS: EdDSA with the simulator's key, the credential as its payload
    header = jwt.get_unverified_header(badge["jwt"])
    assert header == {"alg": "EdDSA", "kid": sim.credentials_key_jwk["kid"], "typ": "vc+jwt"}
    key = jwt.PyJWK(sim.credentials_key_jwk).key
    assert jwt.decode(badge["jwt"], key, algorithms=["EdDSA"]) == credential


async def test_verify_answers_like_the_route():
    sim = Simulator(BADGER)
    ann = sim.user("ann")
    chat = sim.conversation([ann])
    badge = await earn(sim, ann, chat)
    token = badge["jwt"]
    assert sim.verify_credential(token) == {
        "valid": True,
        "status": "valid",
        "credential_id": badge["credential_id"],
    }
    for index in (2, token.index(".") + 7, len(token) // 2, len(token) - 3):
        verdict = sim.verify_credential(altered(token, index))
        assert verdict == {"valid": False, "status": "invalid", "reason": "bad_signature"}
    credential = sim.credentials[badge["credential_id"]]["credential"]
    forged = jwt.encode(
        credential,
        Ed25519PrivateKey.generate(),
        algorithm="EdDSA",
        headers={"kid": sim.credentials_key_jwk["kid"], "typ": "vc+jwt"},
    )
    assert sim.verify_credential(forged)["reason"] == "bad_signature"
    assert sim.verify_credential("nope")["reason"] == "malformed"
    # validly signed but never issued here: not_found; issued but different: mismatch
    key = Ed25519PrivateKey.from_private_bytes(SIM_CREDENTIALS_SEED)  # the test key, public
    headers = {"kid": sim.credentials_key_jwk["kid"], "typ": "vc+jwt"}
    stranger = {**credential, "id": "urn:aetherial:credential:ffffffffffffffffffffffff"}
    assert (
        sim.verify_credential(jwt.encode(stranger, key, algorithm="EdDSA", headers=headers))[
            "reason"
        ]
        == "not_found"
    )
    changed = {**credential, "name": "Python 102"}
    assert (
        sim.verify_credential(jwt.encode(changed, key, algorithm="EdDSA", headers=headers))[
            "reason"
        ]
        == "mismatch"
    )


async def test_revoke_once_with_a_reason_and_only_own_credentials():
    sim = Simulator(BADGER)
    ann = sim.user("ann")
    chat = sim.conversation([ann])
    badge = await earn(sim, ann, chat)
    credential_id = badge["credential_id"]
    reply = await sim.command(ann, chat, f"/revoke {credential_id} Exam retaken")
    assert reply["text"] == 'revoked: {"revoked": true}'
    stored = sim.credentials[credential_id]
    assert stored["status"] == "revoked" and stored["reason"] == "Exam retaken"
    assert stored["revoked_at"].endswith("Z")
    verdict = sim.verify_credential(badge["jwt"])
    assert verdict["valid"] is False and verdict["status"] == "revoked"
    assert verdict["revocation_reason"] == "Exam retaken"
    await sim.command(ann, chat, f"/revoke {credential_id} Changed my mind")
    assert sim.credentials[credential_id]["reason"] == "Exam retaken"  # the first stays
    reply = await sim.command(ann, chat, "/revoke 0123456789abcdef01234567 nope")
    assert reply["text"] == "refused: not_found"
    # another simulated app (its own world) knows nothing of it
    rival = Simulator(APPS_DIR / "rival")
    bea = rival.user("bea")
    reply = await rival.command(bea, rival.conversation([bea]), f"/steal {credential_id}")
    assert reply["text"] == "rival refused: not_found"


async def test_subjects_achievements_and_images_are_checked():
    sim = Simulator(BADGER)
    ann = sim.user("ann")
    chat = sim.conversation([ann])

    async def issue(params: dict):
        return await sim.call_capability(ann, chat, "credentials.issue", params)

    badge = {"name": "N", "description": "D"}
    assert await issue({"subject_user_id": "u-nobody", "achievement": badge}) == (
        "error",
        "not_found",
    )
    assert await issue(
        {"subject_user_id": ann.id, "achievement": {**badge, "image": "f" * 24}}
    ) == (
        "error",
        "not_found",
    )
    for achievement in ({"name": "N"}, {**badge, "extra": 1}, {**badge, "name": ""}, "N"):
        outcome = await issue({"subject_user_id": ann.id, "achievement": achievement})
        assert outcome == ("error", "invalid_params"), achievement
    outcome, answer = await issue({"subject_user_id": ann.id, "achievement": badge})
    assert outcome == "ok" and set(answer) == {"credential_id", "url", "jwt"}
    # no id of the app's own: the achievement is named by the credential
    achievement = sim.credentials[answer["credential_id"]]["credential"]["credentialSubject"][
        "achievement"
    ]
    assert achievement["id"] == f"urn:aetherial:achievement:{answer['credential_id']}"
    assert achievement["criteria"] == {"narrative": "D"}


async def test_an_achievement_image_is_the_apps_own_upload():
    manifest = json.loads((BADGER / "manifest.json").read_text())
    manifest["permissions"].append("media.upload")
    from tests.miniapps.apps.badger.app import app

    sim = Simulator(app, manifest=manifest)
    ann = sim.user("ann")
    chat = sim.conversation([ann])
    _, upload = await sim.call_capability(ann, chat, "media.upload", PNG_UPLOAD)
    outcome, answer = await sim.call_capability(
        ann,
        chat,
        "credentials.issue",
        {
            "subject_user_id": ann.id,
            "achievement": {"name": "N", "description": "D", "image": upload["media_id"]},
        },
    )
    assert outcome == "ok", answer
    achievement = sim.credentials[answer["credential_id"]]["credential"]["credentialSubject"][
        "achievement"
    ]
    assert achievement["image"] == {"id": f"{answer['url']}/image", "type": "Image"}
