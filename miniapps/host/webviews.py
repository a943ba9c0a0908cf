"""What a web view may ask of the host through the user's chat client (``sdk/js/bridge.js``).

A web view's page never holds the user's session: it asks the chat client over ``postMessage``,
the client asks the *user* (a contact picker, "share into which chat?", the payment sheet) and
then calls these actions with the user's own bearer token **and** the launch token the page was
opened with. The launch token says which app is asking (it is signed with that app's secret), and
for whom (its per-app user id must be the caller's): a token launched by one user cannot be used
by another, and an expired or forged one is refused.

Each action is the same capability the app's server could call (``messages.send_card``,
``payments.request``), checked against the app's manifest permissions and the same params
schema, performed by the host.

The page may also call its own app (``Aetherial.call(name, params)`` → ``do_call_view``): the
host invokes the app's ``@app.view(name)`` handler for that user and the chat the view was opened
from, and the handler's answer is the page's.
"""

from __future__ import annotations

import json
import re
from base64 import urlsafe_b64decode
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from messaging.actions import cards
from messaging.actions.conversations import check_member
from miniapps.host.sandbox import AppCallError, CallTimeout, Overloaded, SandboxError, Unavailable
from sdk.capabilities import CAPABILITIES, check_call
from sdk.errors import HostError, SignatureError
from sdk.manifest import WEB_FOLDER
from sdk.protocol import (
    UNKNOWN_VIEW,
    VIEW_FAILURES,
    VIEW_PARAMS_MAX_BYTES,
    VIEW_RESULT_MAX_BYTES,
    json_size,
)
from sdk.signing import verify_launch_token
from storage.errors import AppError
from wallet.actions import payments

if TYPE_CHECKING:
    from miniapps.host.host import MiniappHost


@dataclass(frozen=True)
class Launch:
    """A checked launch token: the app, the caller's per-app id, the chat it was opened in."""

    app_id: str
    app_user_id: str
    conversation_id: str
    exp: int


def _bad_token(message: str = "the web view's launch token is not valid") -> AppError:
    return AppError("bad_launch_token", message, status=401)


def _claimed_app(token: object) -> str:
    """The app a token names, read before its signature is checked (to find the secret)."""
    if not isinstance(token, str) or token.count(".") != 1 or len(token) > 4096:
        raise _bad_token()
    part = token.split(".")[0]
    try:
        payload = json.loads(urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise _bad_token() from None
    app_id = payload.get("app_id") if isinstance(payload, dict) else None
    if not isinstance(app_id, str) or not app_id:
        raise _bad_token()
    return app_id


async def check_launch(host: MiniappHost, user_id: str, token: object) -> Launch:
    """The launch token, when it is genuine, unexpired, was issued to ``user_id`` and its app
    exists and is switched on (``bad_launch_token`` / ``launch_expired`` / ``app_disabled``)."""
    app_id = _claimed_app(token)
    entry = host.apps.get(app_id)
    if entry is None:
        raise _bad_token()
    try:
        payload = verify_launch_token(token, await host.remote.launch_secret(app_id))
    except SignatureError as exc:
        if exc.code == "expired":
            raise AppError(
                "launch_expired", "the web view's launch token expired: open it again", status=401
            ) from None
        raise _bad_token() from None
    if payload["app_id"] != app_id or payload["user_id"] != host.identity.app_user_id(
        app_id, user_id
    ):
        raise _bad_token("this launch token was issued to someone else")
    host.apps_catalogue.check_enabled(entry)
    return Launch(app_id, payload["user_id"], payload["conversation_id"], int(payload["exp"]))


def _check_capability(host: MiniappHost, launch: Launch, method: str, params: dict) -> dict:
    """The capability's own checks: in the manifest's permissions, params valid."""
    try:
        _, clean = check_call(method, host.apps[launch.app_id].permissions, params)
    except HostError as exc:
        status = 403 if exc.code == "permission_denied" else 400
        raise AppError(exc.code, exc.message, status=status) from None
    return clean


async def do_share_card(
    host: MiniappHost, user_id: str, token: object, conversation_id: object, card: object
) -> dict[str, Any]:
    """Post the app's card into a chat the user picked and confirmed (any chat of theirs that
    has the app installed, not only the one the view was opened from) → ``{message_id,
    conversation_id}``."""
    launch = await check_launch(host, user_id, token)
    clean = _check_capability(host, launch, "messages.send_card", {"card": card})
    await check_member(host.messaging, conversation_id, user_id)
    assert isinstance(conversation_id, str)
    # ``app_not_installed`` when that chat does not have the app: it cannot post where it
    # was never added (the client lists only chats that have it).
    await host.apps_catalogue.check_active(launch.app_id, conversation_id)
    view = await cards.do_post_card(host.messaging, conversation_id, launch.app_id, clean["card"])
    return {"message_id": view["id"], "conversation_id": conversation_id}


async def do_pick_contact(
    host: MiniappHost, user_id: str, token: object, contact_id: object
) -> dict[str, Any]:
    """The per-app id of a contact the user picked in the client's own picker (the app never
    sees the contact list, nor anyone's platform id) → ``{user_id}``."""
    launch = await check_launch(host, user_id, token)
    if not isinstance(contact_id, str) or contact_id not in set(
        await host.messaging.contacts.get_friend_ids(user_id)
    ):
        raise AppError("not_a_contact", "pick one of your contacts", status=404)
    return {"user_id": await host.identity.app_user(launch.app_id, contact_id)}


async def do_request_payment(
    host: MiniappHost, user_id: str, token: object, params: object, *, capture: bool = True
) -> dict[str, Any]:
    """A payment the page asks for, recorded exactly as ``payments.request`` from the app's
    server would (same permission, same params, the order bound to the chat the view was
    opened in); the client then shows the host's payment sheet → ``{payment_id, status}``.

    ``capture=False`` (``requestHold``) asks for a hold, captured or voided later by the app's
    server (``payments.capture`` / ``payments.void``); ``holds_unavailable`` on a server whose
    contract has no holds."""
    launch = await check_launch(host, user_id, token)
    if not isinstance(params, dict):
        raise AppError("invalid_params", "params must be an object")
    has_holds = "capture" in CAPABILITIES["payments.request"].params.get("properties", {})
    if not capture and not has_holds:
        raise AppError("holds_unavailable", "holding money for later capture is not available")
    asked = {**params, "capture": capture} if has_holds else dict(params)
    clean = _check_capability(host, launch, "payments.request", asked)
    if host.wallet is None:
        raise AppError("payments_unavailable", "payments are not available on this server")
    await check_member(host.messaging, launch.conversation_id, user_id)
    entry = await host.apps_catalogue.check_active(launch.app_id, launch.conversation_id)
    return await payments.do_request(
        host.wallet,
        app_id=launch.app_id,
        app_name=entry.manifest["name"],
        user_id=user_id,
        app_user_id=launch.app_user_id,
        conversation_id=launch.conversation_id,
        params=clean,
    )


# Calls from pages per person and app: a page may load several things at once, but cannot fill
# the app's queue (MAX_WAITING_CALLS) for everybody else — like presses (routing.py).
VIEW_RATE_MAX = 30
VIEW_RATE_WINDOW = 10  # seconds
# An app's own refusal code reaches the page only when it looks like a code.
_CODE = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")


def check_view_params(params: object) -> dict:
    """The page's params: a JSON object of at most ``VIEW_PARAMS_MAX_BYTES``."""
    if not isinstance(params, dict):
        raise AppError("invalid_params", "params must be an object")
    try:
        size = json_size(params)
    except (TypeError, ValueError) as exc:
        raise AppError("invalid_params", f"params: {exc}") from None
    if size > VIEW_PARAMS_MAX_BYTES:
        raise AppError(
            "invalid_params",
            f"params may not exceed {VIEW_PARAMS_MAX_BYTES} bytes of JSON",
            status=413,
        )
    return params


def _view_failure(exc: SandboxError, name: str) -> AppError:
    """What a failed ``view`` call means to the page: the app's own refusal (its ``ViewError``,
    400 with its code and message), ``unknown_view`` (404), or the app failed (502, 503 when it
    is busy or restarting, 504 when it did not answer in time)."""
    if isinstance(exc, AppCallError):
        if exc.app_code == UNKNOWN_VIEW:
            return AppError(UNKNOWN_VIEW, f"this mini-program has no view {name!r}", status=404)
        if exc.app_code not in VIEW_FAILURES and _CODE.match(exc.app_code):
            return AppError(exc.app_code, exc.message[:1000] or exc.app_code)
        return AppError("app_error", f"the mini-program failed to answer {name!r}", status=502)
    if isinstance(exc, CallTimeout):
        return AppError(exc.code, f"the mini-program did not answer {name!r} in time", status=504)
    status = 503 if isinstance(exc, Overloaded | Unavailable) else 502
    return AppError(exc.code, f"the mini-program could not answer {name!r}", status=status)


async def do_call_view(
    host: MiniappHost, user_id: str, token: object, name: object, params: object
) -> dict[str, Any]:
    """The page calls its app: the app's ``@app.view(name)`` handler runs for this user in the
    chat the view was opened from (its capability calls bound to them, as in an action) →
    ``{result}``, the handler's JSON object (at most ``VIEW_RESULT_MAX_BYTES``)."""
    launch = await check_launch(host, user_id, token)
    if not isinstance(name, str) or not name:
        raise AppError("invalid_params", "name: the view's name")
    params = check_view_params(params)
    await check_member(host.messaging, launch.conversation_id, user_id)
    entry = await host.apps_catalogue.check_active(launch.app_id, launch.conversation_id)
    verdict = await host.messaging.limiter.hit(
        f"view:{entry.app_id}:{user_id}", VIEW_RATE_MAX, VIEW_RATE_WINDOW
    )
    if not verdict.allowed:
        raise AppError(
            "rate_limited",
            f"too many calls to this mini-program; try again in {verdict.retry_after} seconds",
            status=429,
            details={"retry_after": verdict.retry_after},
        )
    try:
        result = await host.invoker.call_view(entry, user_id, launch.conversation_id, name, params)
    except SandboxError as exc:
        raise _view_failure(exc, name) from None
    except AppError as exc:  # the invoker's queue for this app is full
        raise AppError(exc.code, exc.message, status=503) from None
    if not isinstance(result, dict) or json_size(result) > VIEW_RESULT_MAX_BYTES:
        # A remote app's answer (a hosted app's runtime already refuses to send one).
        raise AppError(
            "app_error",
            f"the mini-program's answer to {name!r} is not a JSON object of at most "
            f"{VIEW_RESULT_MAX_BYTES} bytes",
            status=502,
        )
    return {"result": result}


# --- the pages of hosted apps -------------------------------------------------------------------

# What a hosted page may do (served with every file of an app's web/ folder): its own files
# only, no network (it reaches its app and the host through the chat, sdk/js/bridge.js), framed
# only by the chat. ``sandbox allow-scripts`` puts the page in an opaque origin even when someone
# opens its URL in a tab of its own, so it can never read the chat's storage on this origin.
PAGE_CSP = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data: blob:",
        "style-src 'self' 'unsafe-inline'",
        "script-src 'self'",
        "connect-src 'none'",
        "frame-ancestors 'self'",
        # Forms work in script (their submit event fires) but can post nowhere. Downloads: the
        # page may save a file it made (a blob: link, on the user's click: an export, an .ics).
        "form-action 'none'",
        "sandbox allow-scripts allow-forms allow-downloads",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def get_page_file(host: MiniappHost, app_id: str, name: str) -> Path:
    """The file ``name`` of a hosted app's ``web/`` folder — only a regular file directly in
    it (no directory, no hidden file, no symlink leading out of it); ``not_found`` otherwise,
    alike for an app that does not exist, a remote app, or an app switched off."""
    entry = host.apps.get(app_id)
    missing = AppError("not_found", "no such page", status=404)
    if entry is None or entry.folder is None or app_id in host.apps_catalogue.disabled:
        raise missing
    if not name or name.startswith(".") or "/" in name or "\\" in name or "\0" in name:
        raise missing
    web = (Path(entry.folder) / WEB_FOLDER).resolve()
    path = (web / name).resolve()
    if not path.is_relative_to(web) or not path.is_file():
        raise missing
    return path
