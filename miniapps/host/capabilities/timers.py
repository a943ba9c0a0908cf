"""``timers.*``: an app's durable timers, kept in ``app_timers`` and fired by every node's
``miniapps.host.timers.TimerFiring`` at or after their time (``sdk.timers`` says how)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from miniapps.host.store.app_timers import AppTimers
from sdk.timers import TIMERS_PENDING_MAX, check_schedule, too_many_timers
from storage.mongo import now_ms

if TYPE_CHECKING:
    from miniapps.host.calls import Call
    from miniapps.host.host import MiniappHost


def _timers(host: MiniappHost) -> AppTimers:
    return AppTimers(host.messaging.db)


async def schedule(host: MiniappHost, call: Call, params: dict) -> dict:
    now = now_ms()
    manifest = host.apps_catalogue.apps[call.app_id].manifest
    timer = check_schedule(manifest, params, now)
    timers = _timers(host)
    # Moving a pending timer never counts against the cap; a new one must fit under it. (Two
    # new timers scheduled at the same instant may both fit in the last place: the cap is a
    # guard against runaway apps, not an exact quota.)
    if not await timers.has_live(call.app_id, timer["key"]) and (
        await timers.count_live(call.app_id) >= TIMERS_PENDING_MAX
    ):
        raise too_many_timers()
    await timers.put_timer(
        call.app_id,
        timer["key"],
        name=timer["name"],
        due_at=timer["due_at"],
        payload=timer["payload"],
        user_id=call.user_id,
        conversation_id=call.conversation_id,
        now=now,
    )
    return {"key": timer["key"], "due_at": timer["due_at"]}


async def cancel(host: MiniappHost, call: Call, params: dict) -> dict:
    return {"cancelled": await _timers(host).remove_timer(call.app_id, params["key"])}


EFFECTS = {"timers.schedule": schedule, "timers.cancel": cancel}
