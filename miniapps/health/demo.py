"""Demo practitioners: ``demo.seed {profile?}`` — called by each demo practitioner (role
``practitioner``) — writes that person's practice profile from ``PROFILES`` once (a create-only
write: seeding again changes nothing, and never overwrites a profile the person edited):

- ``gp``: general practice in Europe/Lisbon, free, 20-minute video visits, weekdays
  09:00-12:30 and 14:00-17:00;
- ``cardiology``: cardiology in Asia/Shanghai, 40.00 USD, 30-minute video visits, weekdays
  08:00-12:00 and 13:30-17:30;
- ``paediatrics``: paediatrics in America/New_York, 35.00 USD, 30-minute video visits,
  weekdays 09:00-13:00 and Saturdays 09:00-12:00.

``gateway/demo.py`` (``python run.py seed-demo``) grants the role and calls it for its three
demo practitioners.
"""

from __future__ import annotations

from typing import Any

import clock
import practitioners
from practitioners import as_view
from slots import BookingError

from sdk import Conflict


def _weekdays(*windows: tuple[str, str], days: range = range(5)) -> list[dict[str, Any]]:
    return [{"weekday": d, "start": s, "end": e} for d in days for s, e in windows]


PROFILES: dict[str, dict[str, Any]] = {
    "gp": {
        "name": "Dr. Ana Silva",
        "specialties": ["general practice", "family medicine"],
        "languages": ["pt", "en"],
        "fee": {"amount": 0, "currency": "USD"},
        "zone": "Europe/Lisbon",
        "visit_minutes": 20,
        "visit_type": "video",
        "weekly": _weekdays(("09:00", "12:30"), ("14:00", "17:00")),
    },
    "cardiology": {
        "name": "Dr. Wei Wang",
        "specialties": ["cardiology"],
        "languages": ["zh", "en"],
        "fee": {"amount": 4000, "currency": "USD"},
        "zone": "Asia/Shanghai",
        "visit_minutes": 30,
        "visit_type": "video",
        "weekly": _weekdays(("08:00", "12:00"), ("13:30", "17:30")),
    },
    "paediatrics": {
        "name": "Dr. Grace Miller",
        "specialties": ["paediatrics", "pediatrics"],
        "languages": ["en", "es"],
        "fee": {"amount": 3500, "currency": "USD"},
        "zone": "America/New_York",
        "visit_minutes": 30,
        "visit_type": "video",
        "weekly": _weekdays(("09:00", "13:00")) + _weekdays(("09:00", "12:00"), days=range(5, 6)),
    },
}


async def do_seed(ctx) -> dict[str, Any]:
    """``demo.seed {profile?: gp | cardiology | paediatrics}`` (default ``gp``): the invoking
    practitioner's demo profile, written when they have none. ``{created, profile, name}``."""
    practitioners.check_practitioner(ctx)
    name = ctx.params.get("profile", "gp")
    if name not in PROFILES:
        raise BookingError("invalid_profile", f"profile: one of {', '.join(PROFILES)}.")
    profile = practitioners.check_profile(ctx, PROFILES[name])
    profile["updated_at"] = clock.now_ms()
    try:
        await ctx.storage_update(
            "practitioners", ctx.user_id, profile, expected_version=0, upsert=True
        )
    except Conflict:
        current = await ctx.storage_get("practitioners", ctx.user_id) or {}
        return {"created": False, "profile": name, "name": current.get("name", profile["name"])}
    return {"created": True, "profile": name, "name": profile["name"]}


VIEWS = {"demo.seed": as_view(do_seed)}
