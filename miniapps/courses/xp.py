"""XP: points for learning, awarded once per reason, and spent on streak freezes.

- ``award(ctx, learner, amount, reason_key)`` gives XP at most once per ``reason_key`` (e.g.
  ``quiz:<course>:<lesson>:<learner>``, ``lesson:<course>:<lesson>:<learner>``): the award is a
  create-only document ``xp_awards/<reason_key>`` (``storage_update(expected_version=0,
  upsert=True)``; a second award of the same reason is a ``Conflict`` → False, whatever the
  concurrency), then the learner's total ``xp/<learner>.total`` grows by ``storage_incr``. A
  crash between the two writes loses that award's XP; it never counts it twice. After an award
  it tells the motivation modules, if they are there: ``streaks.on_activity(ctx, learner)`` and
  ``leagues.on_xp(ctx, learner, amount)``.
- ``spend(ctx, learner, amount, reason_key)`` takes XP once per ``reason_key`` (a streak freeze):
  ``storage_incr`` with ``min=0``, so a total never goes below 0 under concurrent spends —
  short → ``NotEnoughXp`` (code ``not_enough_xp``), nothing taken.
- ``total(ctx, learner)``; ``/course xp`` answers the invoker's own.
"""

from __future__ import annotations

import time

from sdk import Conflict, HostError, Reply

AMOUNT_MAX = 10_000  # one award or spend
REASON_MAX = 256  # a storage key's length


class NotEnoughXp(Exception):
    """A spend larger than the learner's XP: nothing was taken."""

    code = "not_enough_xp"

    def __init__(self, needed: int, have: int) -> None:
        self.needed, self.have = needed, have
        self.message = f"That costs {needed} XP; you have {have} XP."
        super().__init__(self.message)


def _check(learner: str, amount: int, reason_key: str) -> None:
    if not isinstance(learner, str) or not learner:
        raise ValueError("learner: a per-app user id")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= AMOUNT_MAX:
        raise ValueError(f"amount: a whole number of XP, 1 to {AMOUNT_MAX}")
    if not isinstance(reason_key, str) or not 0 < len(reason_key) <= REASON_MAX:
        raise ValueError(f"reason_key: 1 to {REASON_MAX} characters")


async def total(ctx, learner: str) -> int:
    """The learner's XP (0 for none)."""
    stored = await ctx.storage_get("xp", learner) or {}
    return int(stored.get("total") or 0)


async def award(ctx, learner: str, amount: int, reason_key: str) -> bool:
    """Give ``learner`` ``amount`` XP for ``reason_key``, once ever: True when this call gave
    it, False when that reason was already awarded (nothing changes). Then, after a real award,
    ``streaks.on_activity`` and ``leagues.on_xp``."""
    _check(learner, amount, reason_key)
    try:
        await ctx.storage_update(
            "xp_awards",
            reason_key,
            {"learner": learner, "amount": amount, "at": int(time.time() * 1000)},
            expected_version=0,
            upsert=True,
        )
    except Conflict:
        return False
    await ctx.storage_incr("xp", learner, "total", amount)
    import leagues  # here: streaks and leagues import this module
    import streaks

    await streaks.on_activity(ctx, learner)
    await leagues.on_xp(ctx, learner, amount)
    return True


async def spend(ctx, learner: str, amount: int, reason_key: str) -> bool:
    """Take ``amount`` XP from ``learner`` for ``reason_key`` (e.g. ``freeze:<learner>:<n>``),
    once: True when this call took it, False when that reason was already paid (nothing
    taken again). ``NotEnoughXp`` when the learner has less (nothing taken, and the reason may
    be paid later)."""
    _check(learner, amount, reason_key)
    try:
        await ctx.storage_update(
            "xp_awards",
            reason_key,
            {"learner": learner, "amount": -amount, "at": int(time.time() * 1000)},
            expected_version=0,
            upsert=True,
        )
    except Conflict:
        return False
    try:
        await ctx.storage_incr("xp", learner, "total", -amount, min=0)
    except HostError as exc:
        if exc.code != "limit_reached":
            raise
        await ctx.storage_delete("xp_awards", reason_key)  # unpaid: the reason may be paid later
        raise NotEnoughXp(amount, await total(ctx, learner)) from None
    return True


async def xp_command(ctx, args: list[str]) -> Reply:
    """``/course xp``: the invoker's XP, privately."""
    if args:
        return Reply(ephemeral="Usage: /course xp — your XP")
    return Reply(ephemeral=f"You have {await total(ctx, ctx.user_id)} XP.")


SUBCOMMANDS = {"xp": xp_command}
