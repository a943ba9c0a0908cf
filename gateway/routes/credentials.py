"""Verifiable credentials, publicly: anyone holding a credential a mini-program issued (a course
certificate, a badge) checks it here without an account — its page (``GET /credentials/<id>``:
the credential, its JWS, valid or revoked), a JWS checked against the platform's key and the
stored credential (``POST /api/v1/credentials/verify``), and the key itself as a JWK
(``GET /.well-known/aetherial-credentials-key``). Issued and revoked by apps only
(``miniapps.host.capabilities.credentials``); the contract is ``sdk.credentials``."""

from __future__ import annotations

import re

from aiohttp import web

from gateway.api import BODY, Api
from gateway.keys import CONFIG, MESSAGING
from gateway.schemas import obj
from miniapps.host.capabilities.credentials import signing_key
from miniapps.host.store.credentials import Credentials
from sdk import credentials
from storage.errors import AppError

api = Api("credentials", "Verifiable credentials (Open Badges 3.0) apps issued: public checks")

CREDENTIAL_ID_RE = re.compile(r"[0-9a-f]{24}")

CREDENTIAL_STATUS = obj(
    {
        "credential": {
            "type": "object",
            "description": "the OpenBadgeCredential (JSON-LD) exactly as signed",
        },
        "jwt": {"type": "string", "description": "compact JWS (EdDSA, typ vc+jwt)"},
        "status": {"enum": ["valid", "revoked"]},
        "revoked_at": {"type": "string", "format": "date-time"},
        "reason": {"type": ["string", "null"], "description": "why the app revoked it"},
    },
    ["credential", "jwt", "status"],
)
VERDICT = obj(
    {
        "valid": {"type": "boolean"},
        "status": {"enum": ["valid", "invalid", "revoked"]},
        "reason": {"enum": list(credentials.REASONS)},
        "revocation_reason": {"type": ["string", "null"]},
        "credential_id": {"type": ["string", "null"]},
    },
    ["valid", "status"],
)
JWK = obj(
    {
        "kty": {"const": "OKP"},
        "crv": {"const": "Ed25519"},
        "x": {"type": "string"},
        "kid": {"type": "string", "description": "RFC 7638 thumbprint; the JWS header's kid"},
        "alg": {"const": "EdDSA"},
        "use": {"const": "sig"},
    },
    ["kty", "crv", "x", "kid"],
)


async def _stored(request: web.Request, credential_id: str) -> dict | None:
    if not CREDENTIAL_ID_RE.fullmatch(credential_id):
        return None
    return await Credentials(request.app[MESSAGING].db).get_credential(credential_id)


def _not_found() -> AppError:
    return AppError("credential_not_found", "no such credential", status=404)


@api.get(
    "/credentials/{credential_id}",
    auth=False,
    summary="A credential and whether it is still valid",
    response=CREDENTIAL_STATUS,
    errors=("credential_not_found",),
)
async def get_credential(request: web.Request) -> dict:
    """Public: the credential an app issued (JSON-LD), its signed form (``jwt``) and its
    status — ``valid``, or ``revoked`` with when and the app's reason. To check the signature
    too, post the ``jwt`` to ``/api/v1/credentials/verify``."""
    doc = await _stored(request, request.match_info["credential_id"])
    if doc is None:
        raise _not_found()
    return credentials.status_view(credentials.stored_view(doc))


@api.get(
    "/credentials/{credential_id}/image",
    auth=False,
    status=302,
    summary="The image of a credential's achievement",
    errors=("credential_not_found",),
)
async def get_credential_image(request: web.Request) -> web.StreamResponse:
    """Public: a redirect to a freshly signed address of the achievement's image (the app's
    upload), so the credential's ``image.id`` stays valid for as long as the credential."""
    messaging = request.app[MESSAGING]
    doc = await _stored(request, request.match_info["credential_id"])
    if doc is None or not doc.get("image"):
        raise _not_found()
    urls = messaging.media_urls
    raise web.HTTPFound(urls.url(doc["image"], "original", urls.expiry()))


@api.post(
    "/api/v1/credentials/verify",
    auth=False,
    summary="Verify a credential's JWS",
    body=obj(
        {"jwt": {"type": "string", "minLength": 1, "maxLength": credentials.JWT_MAX}}, ["jwt"]
    ),
    response=VERDICT,
)
async def verify_credential(request: web.Request) -> dict:
    """Public: whether ``jwt`` is a credential this platform issued and still stands behind —
    signed with its key (``/.well-known/aetherial-credentials-key``), the same as the stored
    credential, not revoked. ``{valid: true, status: valid}``, or ``{valid: false, status:
    invalid|revoked, reason}`` with reason ``malformed``, ``bad_signature``, ``not_found``,
    ``mismatch`` or ``revoked`` (then ``revocation_reason``, the app's words)."""
    key = signing_key(request.app[CONFIG]).public_key()
    payload, problem = credentials.decode(key, request[BODY]["jwt"])
    stored = None
    if payload is not None:
        doc = await _stored(request, credentials.credential_id_of(payload) or "")
        stored = credentials.stored_view(doc) if doc is not None else None
    return credentials.verdict(payload, problem, stored)


@api.get(
    "/.well-known/aetherial-credentials-key",
    auth=False,
    summary="The platform's public key for credentials (JWK)",
    response=JWK,
)
async def credentials_key(request: web.Request) -> dict:
    """Public: the Ed25519 key every credential's JWS is signed with, as a JWK; its ``kid``
    is the one in each JWS header."""
    return credentials.public_jwk(signing_key(request.app[CONFIG]))
