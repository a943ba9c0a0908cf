"""Verifiable credentials (Open Badges 3.0): what ``credentials.issue`` takes, the credential the
host builds from it, how it is signed and how anyone verifies it — written once, here, for the
host (``miniapps.host.capabilities.credentials``, the public routes of
``gateway.routes.credentials``) and the simulator (``sdk._sim_credentials``), so both answer
alike.

A credential is a JSON-LD ``OpenBadgeCredential`` (W3C Verifiable Credentials 2.0 data model,
1EdTech Open Badges 3.0 context) signed as a compact JWS: header ``{"alg": "EdDSA", "kid",
"typ": "vc+jwt"}``, payload the credential itself, signature Ed25519 with the platform's key
(its public JWK: ``GET /.well-known/aetherial-credentials-key``). The subject is named by the
per-app id only (``urn:aetherial:user:<per-app id>``): a credential never carries a platform
user id, so two apps' badges of one person cannot be linked through it.

Verification (``verify``) checks, in order: the token is a compact JWS signed by the platform's
key (else ``bad_signature``, or ``malformed`` when it is not a JWS at all); the platform issued
a credential with that id (``not_found``); the stored credential is exactly the signed one
(``mismatch``); it has not been revoked (``revoked``, with the app's reason).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sdk.errors import InvalidParams

CONTEXTS = [
    "https://www.w3.org/ns/credentials/v2",
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
]
TYPES = ["VerifiableCredential", "OpenBadgeCredential"]
JWS_TYPE = "vc+jwt"
ALGORITHM = "EdDSA"
STATUS_TYPE = "1EdTechRevocationList"
# Limits of credentials.issue's params (the capability table's schema says the same).
ACHIEVEMENT_ID_MAX = 200
ACHIEVEMENT_NAME_MAX = 200
ACHIEVEMENT_DESCRIPTION_MAX = 2000
CRITERIA_MAX = 2000
EVIDENCE_MAX = 10  # evidence entries
EVIDENCE_FIELD_MAX = 2000
REVOCATION_REASON_MAX = 500
JWT_MAX = 64 * 1024  # characters of a token ``verify`` looks at
# Why ``verify`` says a credential is not valid.
REASONS = ("malformed", "bad_signature", "not_found", "mismatch", "revoked")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _text(value: Any, name: str, max_length: int, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise InvalidParams(f"{name} must be a string of 1-{max_length} characters")
    return value.strip()


def check_achievement(achievement: Any) -> dict[str, Any]:
    """``credentials.issue``'s ``achievement``, checked (``InvalidParams``, the same message on
    both sides) and normalised: ``name`` (1-200 characters) and ``description`` (1-2000)
    required; ``id`` (the app's own id of the achievement, 1-200 characters, e.g. a course
    id), ``criteria`` (how it is earned, 1-2000) and ``image`` (a media id of an image this app
    uploaded: the caller checks it) optional; nothing else."""
    if not isinstance(achievement, dict):
        raise InvalidParams("achievement must be an object {name, description, …}")
    allowed = {"id", "name", "description", "criteria", "image"}
    unknown = sorted(set(achievement) - allowed)
    if unknown:
        raise InvalidParams(
            f"achievement: unknown field {unknown[0]!r} (id, name, description, criteria, image)"
        )
    clean: dict[str, Any] = {
        "name": _text(achievement.get("name"), "achievement.name", ACHIEVEMENT_NAME_MAX),
        "description": _text(
            achievement.get("description"), "achievement.description", ACHIEVEMENT_DESCRIPTION_MAX
        ),
    }
    for field, max_length in (("id", ACHIEVEMENT_ID_MAX), ("criteria", CRITERIA_MAX)):
        value = _text(achievement.get(field), f"achievement.{field}", max_length, required=False)
        if value is not None:
            clean[field] = value
    image = achievement.get("image")
    if image is not None:
        clean["image"] = _text(image, "achievement.image", 64)
    return clean


def check_evidence(evidence: Any) -> list[dict[str, str]] | None:
    """``credentials.issue``'s ``evidence``: None, or a list of 1-10 objects each with any of
    ``id`` (a URL), ``name``, ``description``, ``narrative`` (strings of 1-2000 characters)."""
    if evidence is None:
        return None
    if not isinstance(evidence, list) or not 1 <= len(evidence) <= EVIDENCE_MAX:
        raise InvalidParams(f"evidence must be a list of 1-{EVIDENCE_MAX} objects")
    clean = []
    for item in evidence:
        if not isinstance(item, dict) or not item:
            raise InvalidParams(
                "evidence: each entry is an object {id?, name?, description?, narrative?}"
            )
        entry: dict[str, str] = {}
        for field, value in item.items():
            if field not in ("id", "name", "description", "narrative"):
                raise InvalidParams(f"evidence: unknown field {field!r}")
            entry[field] = _text(value, f"evidence.{field}", EVIDENCE_FIELD_MAX)  # type: ignore[assignment]
        clean.append({"type": ["Evidence"], **entry})
    return clean


def check_reason(reason: Any) -> str:
    """``credentials.revoke``'s ``reason``: 1-500 characters, shown by the public route."""
    return _text(reason, "reason", REVOCATION_REASON_MAX)  # type: ignore[return-value]


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as the credential's ``validFrom`` (ISO 8601, UTC, seconds)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_credential(
    *,
    credential_id: str,
    url: str,
    app_id: str,
    issuer_id: str,
    issuer_name: str,
    subject_user_id: str,
    achievement: Mapping[str, Any],
    image_url: str | None,
    evidence: list[dict[str, str]] | None,
    issued_at: int,
) -> dict[str, Any]:
    """The ``OpenBadgeCredential`` for a checked ``achievement`` (``check_achievement``):
    ``url`` is where it is verified (``GET /credentials/<id>``, also its ``credentialStatus``),
    ``issuer_id`` the platform's public address or ``urn:aetherial:app:<app_id>``, ``image_url``
    the address of the achievement's image (None: none). An achievement the app named keeps
    one id across the credentials of it (``urn:aetherial:app:<app>:achievement:<id>``)."""
    own_id = achievement.get("id")
    badge: dict[str, Any] = {
        "id": f"urn:aetherial:app:{app_id}:achievement:{quote(own_id, safe='')}"
        if own_id
        else f"urn:aetherial:achievement:{credential_id}",
        "type": ["Achievement"],
        "name": achievement["name"],
        "description": achievement["description"],
        "criteria": {"narrative": achievement.get("criteria") or achievement["description"]},
    }
    if image_url is not None:
        badge["image"] = {"id": image_url, "type": "Image"}
    credential: dict[str, Any] = {
        "@context": list(CONTEXTS),
        "id": f"urn:aetherial:credential:{credential_id}",
        "type": list(TYPES),
        "name": achievement["name"],
        "issuer": {"id": issuer_id, "type": ["Profile"], "name": issuer_name},
        "validFrom": iso_ms(issued_at),
        "credentialSubject": {
            "id": f"urn:aetherial:user:{subject_user_id}",
            "type": ["AchievementSubject"],
            "achievement": badge,
        },
        "credentialStatus": {"id": url, "type": STATUS_TYPE},
    }
    if evidence:
        credential["evidence"] = copy.deepcopy(evidence)
    return credential


def credential_id_of(credential: Mapping[str, Any]) -> str | None:
    """The platform's id of a credential (``urn:aetherial:credential:<id>`` → ``<id>``)."""
    value = credential.get("id")
    prefix = "urn:aetherial:credential:"
    if isinstance(value, str) and value.startswith(prefix):
        return value.removeprefix(prefix)
    return None


# --- keys and signatures --------------------------------------------------------------------


def public_jwk(key: Ed25519PrivateKey | Ed25519PublicKey) -> dict[str, str]:
    """The public key as a JWK (RFC 8037 ``OKP``/``Ed25519``) with its ``kid`` (the RFC 7638
    thumbprint), as ``GET /.well-known/aetherial-credentials-key`` publishes it."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    x = _b64url(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    thumbprint = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    kid = _b64url(hashlib.sha256(thumbprint.encode()).digest())
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": ALGORITHM, "use": "sig"}


def sign(key: Ed25519PrivateKey, credential: Mapping[str, Any]) -> str:
    """The credential as a compact JWS (``vc+jwt``), signed with ``key``."""
    headers = {"kid": public_jwk(key)["kid"], "typ": JWS_TYPE}
    return jwt.encode(dict(credential), key, algorithm=ALGORITHM, headers=headers)


def decode(public_key: Ed25519PublicKey, token: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The signed credential of ``token`` and None, or None and why not: ``malformed`` (not a
    compact JWS at all), ``bad_signature`` (anything else that does not verify with the
    platform's key: an altered header, payload or signature, another key, another algorithm)."""
    if not isinstance(token, str) or token.count(".") != 2 or len(token) > JWT_MAX:
        return None, "malformed"
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM or header.get("kid") != public_jwk(public_key)["kid"]:
            return None, "bad_signature"
        payload = jwt.decode(
            token,
            public_key,
            algorithms=[ALGORITHM],
            options={"verify_aud": False, "verify_iss": False, "require": []},
        )
    except jwt.PyJWTError:
        return None, "bad_signature"
    if not isinstance(payload, dict):
        return None, "bad_signature"
    return payload, None


def status_view(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A stored credential's public answer (``GET /credentials/<id>``): ``{credential, jwt,
    status: valid|revoked, revoked_at?, reason?}``; ``stored`` has ``credential``, ``jwt``
    and, once revoked, ``revoked_at`` (epoch ms) and ``reason``."""
    view: dict[str, Any] = {
        "credential": copy.deepcopy(stored["credential"]),
        "jwt": stored["jwt"],
        "status": "revoked" if stored.get("revoked_at") else "valid",
    }
    if stored.get("revoked_at"):
        view["revoked_at"] = (
            datetime.fromtimestamp(stored["revoked_at"] / 1000, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
        view["reason"] = stored.get("reason")
    return view


def verdict(
    payload: dict[str, Any] | None, problem: str | None, stored: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The answer of ``POST /api/v1/credentials/verify`` (and ``sim.verify_credential``):
    ``{"valid": True, "status": "valid", "credential_id"}`` or ``{"valid": False, "status":
    "invalid"|"revoked", "reason"}`` (``REASONS``; revoked: also ``revocation_reason``).
    ``payload``/``problem`` are ``decode``'s, ``stored`` the stored credential of
    ``credential_id_of(payload)`` (None: none)."""
    if payload is None:
        return {"valid": False, "status": "invalid", "reason": problem or "malformed"}
    if stored is None:
        return {"valid": False, "status": "invalid", "reason": "not_found"}
    if stored["credential"] != payload:
        return {"valid": False, "status": "invalid", "reason": "mismatch"}
    credential_id = credential_id_of(payload)
    if stored.get("revoked_at"):
        return {
            "valid": False,
            "status": "revoked",
            "reason": "revoked",
            "revocation_reason": stored.get("reason"),
            "credential_id": credential_id,
        }
    return {"valid": True, "status": "valid", "credential_id": credential_id}


def canonical_json(credential: Mapping[str, Any]) -> str:
    """The credential as the JSON text a store keeps (keys in their order, compact)."""
    return json.dumps(credential, separators=(",", ":"), ensure_ascii=False)


def stored_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A stored document (``credential_json``, ``jwt``, ``revoked_at``, ``reason``) as
    ``status_view`` and ``verdict`` take it."""
    return {
        "credential": json.loads(doc["credential_json"]),
        "jwt": doc["jwt"],
        "revoked_at": doc.get("revoked_at"),
        "reason": doc.get("reason"),
    }


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    """An Ed25519 private key from PKCS#8 PEM (``ValueError`` otherwise)."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
