"""Per-caller rate limits shared by the account and chat actions, and how a refusal looks."""

from __future__ import annotations

import ipaddress

from messaging.context import Messaging
from storage.errors import AppError

# Socket events that write nothing durable but fan out to others or read a lot.
TYPING_RATE_MAX = 30  # `typing` events (true and false alike) per person...
TYPING_RATE_WINDOW = 10  # ...per this many seconds, over all their devices and chats
SYNC_RATE_MAX = 30  # `sync` calls per person...
SYNC_RATE_WINDOW = 60  # ...per this many seconds


def rate_limited(retry_after: int, doing: str) -> AppError:
    """The one shape of a refusal: 429 ``rate_limited``, ``details.retry_after``, Retry-After."""
    return AppError(
        "rate_limited",
        f"too many {doing}; try again in {retry_after} seconds",
        status=429,
        details={"retry_after": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


async def check_limit(ctx: Messaging, key: str, limit: int, window: int, doing: str) -> None:
    """Count this attempt, then refuse it if it is past ``limit`` in the window. Counting first
    is what makes the limit hold under concurrency: each of a burst of attempts sees its own
    count, none can pass between another's check and its count."""
    verdict = await ctx.limiter.hit(key, limit, window)
    if not verdict.allowed:
        raise rate_limited(verdict.retry_after, doing)


def address_bucket(address: str) -> str:
    """The unit an address limit counts: an IPv4 address, or an IPv6 /64 (one subscriber's
    usual allocation: otherwise a client would rotate through its 2^64 addresses)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
