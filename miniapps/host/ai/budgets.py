"""The ``ai`` budgets: model tokens per app per UTC day (``AI_APP_TOKENS_PER_DAY``), per
conversation per UTC day (``AI_CONVERSATION_TOKENS_PER_DAY``, every app of it together) and per
user per UTC hour (``AI_USER_TOKENS_PER_HOUR``, the requests made on their behalf). 0: no limit.

**Before** a request starts, its estimate (``sdk._capability_services.ai_estimate``: prompt
characters / 4, images, plus ``max_tokens`` — the most it can cost) must fit in what is left of
each budget, else ``ai_quota_exceeded`` naming the budget, what is left and when it resets;
nothing is sent to the model. **After** it ends, what it actually used — the server's reported
``usage``, else the estimate of its prompt and of what it wrote — is added to the three counters
(``store.ai_usage``, ``$inc``). Requests running at the same time are each checked against the
counters before any of them is added, so a budget can be passed by at most what those requests
use (at most ``AI_RUNNING_MAX`` per app per conversation).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from miniapps.host.ai.settings import AiSettings
from miniapps.host.store.ai_usage import AiUsage
from sdk.errors import host_error
from storage.mongo import iso

DAY_KEEP_MS = 400 * 24 * 3600 * 1000  # the per-day counters are kept over a year
HOUR_KEEP_MS = 35 * 24 * 3600 * 1000  # the per-hour ones a month


@dataclass(frozen=True)
class Periods:
    """The UTC day (``2025-06-01``) and hour (``2025-06-01T13``) of a moment, and when each
    ends (epoch ms: when the budgets counted in them reset)."""

    day: str
    hour: str
    day_ends: int
    hour_ends: int

    @classmethod
    def at(cls, now_ms: int) -> Periods:
        moment = datetime.fromtimestamp(now_ms / 1000, UTC)
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        hour = moment.replace(minute=0, second=0, microsecond=0)
        return cls(
            day=day.strftime("%Y-%m-%d"),
            hour=hour.strftime("%Y-%m-%dT%H"),
            day_ends=int((day + timedelta(days=1)).timestamp() * 1000),
            hour_ends=int((hour + timedelta(hours=1)).timestamp() * 1000),
        )


@dataclass(frozen=True)
class Budget:
    kind: str  # app, conversation, user: the counter's kind in ai_usage
    key: str
    period: str
    limit: int
    resets_at: int
    what: str  # "this app's daily budget" …


class Budgets:
    def __init__(self, usage: AiUsage, settings: AiSettings) -> None:
        self.usage = usage
        self.settings = settings

    def budgets(self, app_id: str, conversation_id: str, user_id: str, now: int) -> list[Budget]:
        periods = Periods.at(now)
        settings = self.settings
        return [
            Budget(
                "app",
                app_id,
                periods.day,
                settings.app_tokens_per_day,
                periods.day_ends,
                "this app's daily AI budget (AI_APP_TOKENS_PER_DAY)",
            ),
            Budget(
                "conversation",
                conversation_id,
                periods.day,
                settings.conversation_tokens_per_day,
                periods.day_ends,
                "this conversation's daily AI budget (AI_CONVERSATION_TOKENS_PER_DAY)",
            ),
            Budget(
                "user",
                user_id,
                periods.hour,
                settings.user_tokens_per_hour,
                periods.hour_ends,
                "your hourly AI budget (AI_USER_TOKENS_PER_HOUR)",
            ),
        ]

    async def check(
        self, app_id: str, conversation_id: str, user_id: str, estimate: int, now: int
    ) -> None:
        """Refuse (``ai_quota_exceeded``) a request of ``estimate`` tokens that does not fit
        in what is left of every budget."""
        for budget in self.budgets(app_id, conversation_id, user_id, now):
            if budget.limit <= 0:
                continue
            used = await self.usage.get_total(budget.kind, budget.key, budget.period)
            if used + estimate <= budget.limit:
                continue
            left = max(0, budget.limit - used)
            minutes = max(1, round((budget.resets_at - now) / 60_000))
            raise host_error(
                "ai_quota_exceeded",
                f"{budget.what} is used up: {left} of {budget.limit} tokens left, and this "
                f"request may take up to {estimate} (its prompt and max_tokens); it resets at "
                f"{iso(budget.resets_at)} (in {minutes} min)",
            )

    async def record(
        self,
        app_id: str,
        conversation_id: str,
        user_id: str,
        prompt_tokens: int,
        completion_tokens: int,
        now: int,
    ) -> None:
        """Add a finished request's tokens to its three counters."""
        periods = Periods.at(now)
        counts = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "requests": 1,
        }
        for budget in self.budgets(app_id, conversation_id, user_id, now):
            keep = HOUR_KEEP_MS if budget.kind == "user" else DAY_KEEP_MS
            await self.usage.add_usage(
                budget.kind, budget.key, budget.period, periods.day, counts, now + keep
            )
