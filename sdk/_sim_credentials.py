"""The simulator's verifiable credentials (``credentials.issue`` / ``credentials.revoke``): the
same ``OpenBadgeCredential`` and the same EdDSA JWS as the host (``sdk.credentials``), signed
with a fixed test Ed25519 key instead of the platform's (``sim.credentials_key_jwk``), kept in
memory (``sim.credentials``, by id) and verified like ``POST /api/v1/credentials/verify``
(``sim.verify_credential(jwt)``). Mixed into ``sdk.simulator.Simulator``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sdk import credentials
from sdk._sim_world import SimCall, SimUser
from sdk.errors import NotFound

# The simulator's signing key: fixed, public, for tests only (never a platform's).
SIM_CREDENTIALS_SEED = hashlib.sha256(b"aetherial-simulator-credentials-key").digest()
SIM_CREDENTIALS_URL_PREFIX = "/credentials/"
SIM_CREDENTIALS_ISSUER = "urn:aetherial:app:"


class CredentialsMixin:
    # provided by the Simulator
    manifest: dict[str, Any]
    _users: dict[str, SimUser]
    _ids: Any

    @property
    def _issued(self) -> dict[str, dict[str, Any]]:
        # Created on first use, so the Simulator needs no set-up for it.
        issued = self.__dict__.get("_credentials_issued")
        if issued is None:
            issued = self.__dict__["_credentials_issued"] = {}
        return issued

    @property
    def _credentials_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(SIM_CREDENTIALS_SEED)

    @property
    def credentials(self) -> dict[str, dict[str, Any]]:
        """What the app issued, by credential id: each as ``GET /credentials/<id>`` answers it
        — ``{"credential", "jwt", "status": "valid"|"revoked", "revoked_at"?, "reason"?}`` —
        plus ``subject`` (the ``SimUser`` it was issued to)."""
        views = {}
        for credential_id, stored in self._issued.items():
            view = credentials.status_view(stored)
            view["subject"] = stored["subject"]
            views[credential_id] = view
        return views

    @property
    def credentials_key_jwk(self) -> dict[str, str]:
        """The simulator's public key as a JWK (the platform publishes its own at
        ``/.well-known/aetherial-credentials-key``)."""
        return credentials.public_jwk(self._credentials_key)

    def verify_credential(self, token: str) -> dict[str, Any]:
        """What ``POST /api/v1/credentials/verify`` answers for ``token``: ``{"valid": True,
        "status": "valid", "credential_id"}`` or ``{"valid": False, "status": "invalid" |
        "revoked", "reason"}`` — ``malformed``, ``bad_signature`` (altered, or signed by
        another key), ``not_found``, ``mismatch``, ``revoked`` (with ``revocation_reason``)."""
        payload, problem = credentials.decode(self._credentials_key.public_key(), token)
        stored = None
        if payload is not None:
            stored = self._issued.get(credentials.credential_id_of(payload) or "")
        return credentials.verdict(payload, problem, stored)

    def _subject(self, user_id: str) -> SimUser:
        for user in self._users.values():
            if user.id == user_id:
                return user
        raise NotFound("this app knows no such user")

    def _issue_credential(self, call: SimCall, params: dict) -> dict:
        achievement = credentials.check_achievement(params["achievement"])
        evidence = credentials.check_evidence(params.get("evidence"))
        subject = self._subject(params["subject_user_id"])
        image_url = None
        if "image" in achievement:
            upload = self._uploads.get(achievement["image"])  # type: ignore[attr-defined]
            if upload is None or upload["kind"] != "image":
                raise NotFound(
                    f"achievement.image: no image {achievement['image']} uploaded by this app"
                )
        credential_id = f"{next(self._ids):024x}"
        url = SIM_CREDENTIALS_URL_PREFIX + credential_id
        if "image" in achievement:
            image_url = f"{url}/image"
        now = getattr(self, "now", None)  # the simulator's clock (sdk._sim_timers)
        credential = credentials.build_credential(
            credential_id=credential_id,
            url=url,
            app_id=self.manifest["id"],
            issuer_id=SIM_CREDENTIALS_ISSUER + self.manifest["id"],
            issuer_name=self.manifest["name"],
            subject_user_id=subject.id,
            achievement=achievement,
            image_url=image_url,
            evidence=evidence,
            issued_at=int(now) if now is not None else 0,
        )
        token = credentials.sign(self._credentials_key, credential)
        self._issued[credential_id] = {
            "credential": credential,
            "jwt": token,
            "subject": subject,
            "image": achievement.get("image"),
        }
        return {"credential_id": credential_id, "url": url, "jwt": token}

    def _revoke_credential(self, call: SimCall, params: dict) -> dict:
        reason = credentials.check_reason(params["reason"])
        stored = self._issued.get(params["credential_id"])
        if stored is None:
            raise NotFound(f"no credential {params['credential_id']} issued by this app")
        if not stored.get("revoked_at"):
            now = getattr(self, "now", None)
            stored["revoked_at"] = max(int(now) if now is not None else 0, 1)
            stored["reason"] = reason
        return {"revoked": True}

    def credential_subject(self, credential_id: str) -> SimUser:
        """Who a credential was issued to (``KeyError``: none issued with that id)."""
        return self._issued[credential_id]["subject"]

    EFFECTS: dict[str, Any] = {
        "credentials.issue": _issue_credential,
        "credentials.revoke": _revoke_credential,
    }
