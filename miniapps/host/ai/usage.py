"""What administrators read of the ``ai`` usage (``GET /api/v1/admin/ai/usage?day=``): one UTC
day's tokens per app, per conversation and per person (their hourly counters added up), the
biggest first, beside the budgets in force and whether a model is configured at all."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from storage.errors import AppError
from storage.mongo import now_ms

if TYPE_CHECKING:
    from miniapps.host.ai.service import Ai

TOP = 100  # conversations and people listed per day, the biggest users first


def check_day(day: str | None, now_ms: int) -> str:
    """``day`` as ``YYYY-MM-DD`` (a real date), or today (UTC) when None; ``invalid_field``."""
    if day is None:
        moment = datetime.datetime.fromtimestamp(now_ms / 1000, datetime.UTC)
        return moment.strftime("%Y-%m-%d")
    try:
        parsed = datetime.date.fromisoformat(day)
    except ValueError:
        parsed = None
    if parsed is None or parsed.isoformat() != day:
        raise AppError(
            "invalid_field",
            "query.day must be a date YYYY-MM-DD (UTC)",
            details={"field": "query.day"},
        )
    return day


def _row(name: str, key: str, counts: dict[str, int]) -> dict[str, Any]:
    return {
        name: key,
        "prompt_tokens": counts["prompt_tokens"],
        "completion_tokens": counts["completion_tokens"],
        "total_tokens": counts["total_tokens"],
        "requests": counts["requests"],
    }


async def get_usage(ai: Ai, day: str | None) -> dict[str, Any]:
    """The usage of ``day`` (``YYYY-MM-DD``; None: today, UTC): ``{day, configured, model,
    budgets, totals, apps, conversations, users}`` (each list ``[{app_id|conversation_id|
    user_id, prompt_tokens, completion_tokens, total_tokens, requests}]``, biggest first;
    conversations and users the top ``TOP``). ``invalid_field`` for a bad day."""
    day = check_day(day, now_ms())
    sums: dict[str, dict[str, dict[str, int]]] = {"app": {}, "conversation": {}, "user": {}}
    for doc in await ai.usage.get_day(day):
        kind = sums.get(doc.get("kind", ""))
        if kind is None:
            continue
        counts = kind.setdefault(
            doc["key"],
            {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "requests": 0},
        )
        for name in counts:
            counts[name] += int(doc.get(name, 0))

    def ranked(kind: str, name: str, limit: int | None = None) -> list[dict[str, Any]]:
        rows = sorted(sums[kind].items(), key=lambda item: (-item[1]["total_tokens"], item[0]))
        return [_row(name, key, counts) for key, counts in rows[:limit]]

    apps = ranked("app", "app_id")
    totals = {
        name: sum(row[name] for row in apps)
        for name in ("prompt_tokens", "completion_tokens", "total_tokens", "requests")
    }
    settings = ai.settings
    return {
        "day": day,
        "configured": settings.configured,
        "model": settings.model if settings.configured else None,
        "budgets": {
            "app_tokens_per_day": settings.app_tokens_per_day,
            "conversation_tokens_per_day": settings.conversation_tokens_per_day,
            "user_tokens_per_hour": settings.user_tokens_per_hour,
        },
        "totals": totals,
        "apps": apps,
        "conversations": ranked("conversation", "conversation_id", TOP),
        "users": ranked("user", "user_id", TOP),
    }
