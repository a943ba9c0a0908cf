"""Verifiable credentials end to end, through a real gateway: the ``badger`` test app (a real
sandboxed process) issues an Open Badges 3.0 credential to the invoker; anyone, signed in or
not, verifies it over HTTP (``GET /credentials/<id>``, ``POST /api/v1/credentials/verify``,
the key at ``/.well-known/aetherial-credentials-key``) — checked here independently of the
platform's code too, with the published JWK; one changed character makes it invalid; the
subject is the per-app id, never the platform's; another app (``rival``) cannot revoke it; the
issuing app can, and the public answers then say so."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from aiohttp import ClientSession

from gateway.keys import MINIAPPS
from miniapps.host.registry import discover
from tests.conftest import base_url, make_config
from tests.messaging.chat_helpers import close_all, group, people
from tests.miniapps.conftest import APPS_DIR
from tests.miniapps.test_capabilities import _world_readable
from tests.miniapps.test_locale_e2e import answer

pytestmark = pytest.mark.timeout(120)

APPS = ("badger", "rival")


async def command(person, cid: str, text: str, client_msg_id: str, app_id: str) -> None:
    ack = await person.socket.call(
        "message.send", {"conversation_id": cid, "client_msg_id": client_msg_id, "text": text}
    )
    assert ack == {"ok": True, "routed_to": {"app_id": app_id}}, ack


def altered(token: str, index: int) -> str:
    """``token`` with the character at ``index`` replaced by another base64url character."""
    replacement = "A" if token[index] != "A" else "B"
    return token[:index] + replacement + token[index + 1 :]


async def test_issue_verify_tamper_revoke(aiohttp_server, mongo_url, mongo_db_name, tmp_path):
    from gateway.app import create_app

    config = make_config(mongo_url, mongo_db_name, tmp_path / "var", jobs_interval=0.05)
    server = await aiohttp_server(create_app(config))
    apps, refused = discover(APPS_DIR)
    assert not refused, refused
    for app_id in APPS:
        _world_readable(APPS_DIR / app_id)
        server.app[MINIAPPS].apps[app_id] = apps[app_id]
    ann, bea = await people(base_url(server), 2)
    public = ClientSession(base_url(server))  # no account, no token
    try:
        cid = await group(ann, [bea], "Badges")
        for app_id in APPS:
            status, body = await ann.api.post(
                f"/api/v1/conversations/{cid}/apps", json={"app_id": app_id}
            )
            assert status == 201, body

        await command(ann, cid, "/earn Python 101", "e1", "badger")
        (said,) = await answer(bea, cid, "badge: ", 1)
        badge = json.loads(said.removeprefix("badge: "))
        credential_id, url, token = badge["credential_id"], badge["url"], badge["jwt"]
        assert url == f"/credentials/{credential_id}"

        # the public page: the credential, its JWS, valid
        async with public.get(url) as response:
            assert response.status == 200
            page = await response.json()
        assert page["status"] == "valid" and page["jwt"] == token
        credential = page["credential"]
        assert credential["@context"] == [
            "https://www.w3.org/ns/credentials/v2",
            "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
        ]
        assert credential["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
        assert credential["issuer"]["name"] == "Badger"
        assert credential["credentialStatus"]["id"] == url
        achievement = credential["credentialSubject"]["achievement"]
        assert (achievement["name"], achievement["type"]) == ("Python 101", ["Achievement"])
        assert credential["evidence"][0]["narrative"] == "/earn Python 101"

        # the subject is ann's per-app id, never her platform id
        per_app = server.app[MINIAPPS].identity.app_user_id("badger", ann.user_id)
        assert credential["credentialSubject"]["id"] == f"urn:aetherial:user:{per_app}"
        assert ann.user_id not in json.dumps(page)

        # anyone can check the JWS with the published key, without the platform's code
        async with public.get("/.well-known/aetherial-credentials-key") as response:
            assert response.status == 200
            jwk = await response.json()
        assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("OKP", "Ed25519", "EdDSA")
        header = jwt.get_unverified_header(token)
        assert header == {"alg": "EdDSA", "kid": jwk["kid"], "typ": "vc+jwt"}
        key = jwt.PyJWK(jwk).key
        assert jwt.decode(token, key, algorithms=["EdDSA"]) == credential

        async def verify(candidate: str) -> dict:
            async with public.post(
                "/api/v1/credentials/verify", json={"jwt": candidate}
            ) as response:
                assert response.status == 200
                return await response.json()

        assert await verify(token) == {
            "valid": True,
            "status": "valid",
            "credential_id": credential_id,
        }

        # one changed character — in the header, the payload or the signature — is invalid
        header_end, payload_end = token.index("."), token.rindex(".")
        for index in (3, header_end + 10, (header_end + payload_end) // 2, payload_end + 5):
            verdict = await verify(altered(token, index))
            assert verdict["valid"] is False and verdict["status"] == "invalid", (index, verdict)
            assert verdict["reason"] == "bad_signature", (index, verdict)
        assert (await verify("not a jwt"))["reason"] == "malformed"

        # signed by another key (a forged credential claiming this id): bad_signature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        forged = jwt.encode(
            credential, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers=header
        )
        assert (await verify(forged))["reason"] == "bad_signature"

        # another app cannot revoke it (not_found: it learns nothing of other apps' badges)
        await command(bea, cid, f"/steal {credential_id}", "r1", "rival")
        assert await answer(bea, cid, "rival ", 1) == ["rival refused: not_found"]
        assert (await verify(token))["valid"] is True

        # the issuing app revokes it: the public answers say so, with the app's reason
        await command(ann, cid, f"/revoke {credential_id} Exam was retaken", "r2", "badger")
        assert await answer(bea, cid, "revoked: ", 1) == ['revoked: {"revoked": true}']
        async with public.get(url) as response:
            page = await response.json()
        assert page["status"] == "revoked" and page["reason"] == "Exam was retaken"
        assert page["revoked_at"].endswith("Z")
        verdict = await verify(token)
        assert verdict["valid"] is False and verdict["status"] == "revoked", verdict
        assert verdict["revocation_reason"] == "Exam was retaken"

        # revoking again keeps the first reason; an unknown id is not_found
        await command(ann, cid, f"/revoke {credential_id} Second thoughts", "r3", "badger")
        assert len(await answer(bea, cid, "revoked: ", 2)) == 2
        async with public.get(url) as response:
            assert (await response.json())["reason"] == "Exam was retaken"
        await command(ann, cid, "/revoke 0123456789abcdef01234567 x", "r4", "badger")
        assert await answer(bea, cid, "refused: ", 1) == ["refused: not_found"]
        for missing in ("/credentials/0123456789abcdef01234567", "/credentials/..%2Fetc"):
            async with public.get(missing) as response:
                assert response.status == 404
                body = await response.json()
                assert body["error"]["code"] == "credential_not_found"
    finally:
        await public.close()
        await close_all([ann, bea])


def test_the_key_is_generated_once_and_kept_private(tmp_path):
    from miniapps.host.capabilities.credentials import KEY_FILE, load_or_create_key
    from sdk.credentials import public_jwk

    first = load_or_create_key(tmp_path / KEY_FILE)
    again = load_or_create_key(tmp_path / KEY_FILE)
    assert public_jwk(first) == public_jwk(again)
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o077 == 0
    x = base64.urlsafe_b64decode(public_jwk(first)["x"] + "=")
    assert len(x) == 32


def test_the_key_can_be_given_so_every_node_signs_alike(tmp_path):
    """CREDENTIALS_PRIVATE_KEY (PEM, one line with \\n escapes allowed) is used in place of the
    DATA_DIR file; a key of another kind is refused at start with the setting's name."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    from miniapps.host.capabilities.credentials import KEY_FILE, signing_key
    from sdk.credentials import private_pem, public_jwk
    from storage.config import Config
    from storage.errors import ConfigError

    key = Ed25519PrivateKey.generate()
    one_line = private_pem(key).decode().replace("\n", "\\n")
    env = {"DATA_DIR": str(tmp_path), "CREDENTIALS_PRIVATE_KEY": one_line}
    config = Config.from_env(env)
    assert public_jwk(signing_key(config)) == public_jwk(key)
    assert not (tmp_path / KEY_FILE).exists()  # nothing generated beside the given key

    p256 = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    for bad in ("not a key", p256.decode()):
        with pytest.raises(ConfigError, match="CREDENTIALS_PRIVATE_KEY"):
            Config.from_env({**env, "CREDENTIALS_PRIVATE_KEY": bad})
