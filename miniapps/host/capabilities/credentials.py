"""``credentials.issue`` / ``credentials.revoke``: verifiable credentials (Open Badges 3.0) a
mini-program issues to its users — a course certificate, a badge — built and signed by the host
(``sdk.credentials``: the same contract the simulator follows) with the platform's Ed25519 key,
kept in ``credentials`` and verified by anyone through the public routes of
``gateway.routes.credentials``.

The key is ``CREDENTIALS_PRIVATE_KEY`` (PEM) when set, else generated once into DATA_DIR
(``credentials_ed25519.pem``, mode 0600), as the JWT key is: every node of a deployment must sign
with the same key (the public JWK at ``/.well-known/aetherial-credentials-key`` names it by its
thumbprint ``kid``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from messaging.actions.cards import bot_id
from miniapps.host.store.credentials import Credentials
from sdk import credentials
from sdk.errors import NotFound
from storage.config import Config
from storage.errors import ConfigError
from storage.mongo import new_id, now_ms

if TYPE_CHECKING:
    from miniapps.host.calls import Call
    from miniapps.host.host import MiniappHost

log = logging.getLogger(__name__)

KEY_FILE = "credentials_ed25519.pem"
URL_PREFIX = "/credentials/"  # + id: the public verification page (gateway.routes.credentials)


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """Read the Ed25519 key file, creating it (mode 0600, a new key, PKCS#8 PEM) when absent;
    the pattern of ``storage.secrets.load_or_create_key``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        try:
            return credentials.load_private_key(path.read_bytes())
        except (ValueError, TypeError):
            raise ConfigError(f"{path}: not an Ed25519 private key in PEM form") from None
    key = Ed25519PrivateKey.generate()
    with os.fdopen(fd, "wb") as file:
        file.write(credentials.private_pem(key))
    log.info("generated the credentials signing key (Ed25519) in %s", path)
    return key


def signing_key(config: Config) -> Ed25519PrivateKey:
    """The platform's credentials key: ``CREDENTIALS_PRIVATE_KEY``, or the DATA_DIR file (read on
    each use: a few hundred bytes)."""
    if config.credentials_private_key:
        return credentials.load_private_key(config.credentials_private_key.encode())
    return load_or_create_key(config.data_dir / KEY_FILE)


def credential_url(credential_id: str) -> str:
    """Where a credential is verified: relative to the platform, like media URLs."""
    return URL_PREFIX + credential_id


async def _check_image(host: MiniappHost, app_id: str, media_id: str) -> None:
    doc = await host.messaging.media.get_media(media_id)
    if (
        doc is None
        or doc.get("app_id") != app_id
        or doc.get("owner_id") != bot_id(app_id)
        or doc.get("kind") != "image"
    ):
        raise NotFound(f"achievement.image: no image {media_id} uploaded by this app")


async def issue(host: MiniappHost, call: Call, params: dict) -> dict:
    achievement = credentials.check_achievement(params["achievement"])
    evidence = credentials.check_evidence(params.get("evidence"))
    subject = params["subject_user_id"]
    user_id = await host.identity.app_users.get_user_id(call.app_id, subject)
    if user_id is None:
        raise NotFound("this app knows no such user")
    if "image" in achievement:
        await _check_image(host, call.app_id, achievement["image"])
    entry = host.apps_catalogue.apps[call.app_id]
    credential_id = new_id()
    url = credential_url(credential_id)
    issued_at = now_ms()
    credential = credentials.build_credential(
        credential_id=credential_id,
        url=url,
        app_id=call.app_id,
        issuer_id=f"urn:aetherial:app:{call.app_id}",
        issuer_name=entry.manifest["name"],
        subject_user_id=subject,
        achievement=achievement,
        image_url=f"{url}/image" if "image" in achievement else None,
        evidence=evidence,
        issued_at=issued_at,
    )
    token = credentials.sign(signing_key(host.messaging.config), credential)
    await Credentials(host.messaging.db).add_credential(
        {
            "_id": credential_id,
            "app_id": call.app_id,
            "subject_user_id": subject,
            "user_id": user_id,
            "achievement_id": achievement.get("id"),
            "image": achievement.get("image"),
            "credential_json": credentials.canonical_json(credential),
            "jwt": token,
            "issued_at": issued_at,
            "revoked_at": None,
            "reason": None,
        }
    )
    return {"credential_id": credential_id, "url": url, "jwt": token}


async def revoke(host: MiniappHost, call: Call, params: dict) -> dict:
    reason = credentials.check_reason(params["reason"])
    store = Credentials(host.messaging.db)
    if not await store.revoke(call.app_id, params["credential_id"], reason, now_ms()):
        raise NotFound(f"no credential {params['credential_id']} issued by this app")
    return {"revoked": True}


EFFECTS = {"credentials.issue": issue, "credentials.revoke": revoke}
