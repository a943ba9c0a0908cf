"""The host's side of the capability contract: the *effects* of each capability, one module per
group. What a capability takes, its limits, scope and errors are the contract's
(``sdk.capabilities``), shared with the simulator, so both answer alike.

``handle`` answers one capability call: the call id binds it to an invocation; the method must
exist and be in the manifest's permissions; the app must still be active in that conversation;
the params must satisfy the contract; the user must have granted its scope. Every call, allowed
or refused, is recorded in the app's audit log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from miniapps.host.capabilities import (
    ai,
    app_setup,
    apps,
    calls,
    credentials,
    events,
    group_state,
    history,
    http,
    media,
    messages,
    notifications,
    payments,
    storage,
    timers,
    users,
    webhooks,
)
from sdk.capabilities import CAPABILITIES, check_params
from sdk.errors import HostError, InvalidParams, PermissionDenied, UnknownMethod, host_error
from sdk.tools import check_read_only
from storage.errors import AppError
from storage.mongo import now_ms

if TYPE_CHECKING:
    from miniapps.host.calls import Call
    from miniapps.host.host import MiniappHost

Effect = Callable[["MiniappHost", "Call", dict], Awaitable[dict]]

EFFECTS: dict[str, Effect] = {
    "messages.send_text": messages.send_text,
    "messages.send_card": messages.send_card,
    "messages.reply_ephemeral": messages.reply_ephemeral,
    "messages.update_card": messages.update_card,
    "group_state.get": group_state.get_state,
    "group_state.set": group_state.set_state,
    "users.profile": users.profile,
    "storage.get": storage.get,
    "storage.put": storage.put,
    "storage.delete": storage.delete,
    "storage.find": storage.find,
    "notifications.send": notifications.send,
    "events.emit": events.emit,
    "http.fetch": http.fetch,
    "payments.request": payments.request,
    "payments.refund": payments.refund,
    "media.upload": media.upload,
    **payments.EFFECTS,
    **storage.EFFECTS,
    **timers.EFFECTS,
    **calls.EFFECTS,
    **notifications.EFFECTS,
    **app_setup.EFFECTS,
    **media.EFFECTS,
    **credentials.EFFECTS,
    **webhooks.EFFECTS,
    **ai.EFFECTS,
    **messages.EFFECTS,
    **history.EFFECTS,
    **apps.EFFECTS,
}


async def handle(host: MiniappHost, app_id: str, method: str, params: dict) -> Any:
    entry = host.apps_catalogue.apps.get(app_id)
    remote = entry is not None and entry.kind == "remote"
    call = await host.calls.get(params.get("call_id"), remote=remote)
    record: dict[str, Any] = {
        "app_id": app_id,
        "method": method,
        "at": now_ms(),
        "ok": False,
        "user_id": call.user_id if call else None,
        "conversation_id": call.conversation_id if call else None,
    }
    try:
        if entry is None or call is None or call.app_id != app_id:
            raise InvalidParams("missing or expired call_id")
        capability, effect = CAPABILITIES.get(method), EFFECTS.get(method)
        if capability is None or effect is None:
            raise UnknownMethod(f"no capability {method!r}")
        if method not in entry.permissions:
            raise PermissionDenied(f"{method} is not in this app's manifest permissions")
        await host.apps_catalogue.check_active(app_id, call.conversation_id)
        clean = check_params(method, {k: v for k, v in params.items() if k != "call_id"})
        check_read_only(method, call.read_only)  # a tool's invocation only reads
        if capability.scope is not None:
            await host.consent.check_scope(call, capability.scope)
        result = await effect(host, call, clean)
        record["ok"] = True
        return result
    except HostError as exc:
        record["error"] = exc.code
        raise
    except AppError as exc:  # a domain refusal (not_found, payments_unavailable …)
        record["error"] = exc.code
        raise host_error(exc.code, exc.message) from None
    finally:
        await host.audit.record(record)
