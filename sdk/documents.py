"""Stored documents, safe under concurrency: ``update_doc`` (read, edit, write one) and
``find_all`` (every match of a filter, page after page)."""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import Callable
from typing import Any

from sdk.errors import Conflict, HostError

ATTEMPTS = 40  # re-reads after a Conflict (each one: someone else's write won) before giving up


async def update_doc(
    ctx,
    collection: str,
    key: str,
    edit: Callable[[dict | None], Any],
    *,
    attempts: int = ATTEMPTS,
    busy: str = "Busy: please try again.",
) -> tuple[Any, dict | None]:
    """Read ``key``, let ``edit(doc)`` change a copy in place (``doc`` is None when there is
    none) and return an outcome; write the top-level fields it changed only if nobody wrote in
    between (``expected_version``), else read again and redo. A copy left unchanged writes
    nothing. Returns ``(outcome, doc)`` — the document as written, or as read. After
    ``attempts`` lost races: ``HostError(busy, code="busy")``."""
    for attempt in range(attempts):
        current, version = await ctx.storage_get_versioned(collection, key)
        doc = copy.deepcopy(current)
        outcome = edit(doc)
        if doc is None or doc == current:
            return outcome, current
        changed = {k: v for k, v in doc.items() if current is None or current.get(k) != v}
        removed = [k for k in current or {} if k not in doc]
        try:
            await ctx.storage_update(
                collection,
                key,
                set=changed or None,
                unset=removed or None,
                expected_version=version,
                upsert=current is None,
            )
        except Conflict:
            await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
            continue
        return outcome, doc
    raise HostError(busy, code="busy")


FIND_ALL_CAP = 1000  # items find_all gathers at the most, unless told otherwise


async def find_all(
    ctx, collection: str, filter: dict[str, Any] | None = None, *, cap: int = FIND_ALL_CAP
) -> list[dict[str, Any]]:
    """Every item ``{"key", "value", "version"}`` whose value matches ``filter``, by key,
    following ``storage.find``'s ``next`` page after page (a page may be short, even empty, and
    still have a next one) — at most ``cap`` of them."""
    items: list[dict[str, Any]] = []
    after = None
    while len(items) < cap:
        page = await ctx.storage_page(collection, filter, after=after, limit=100)
        items.extend(page["items"])
        after = page.get("next")
        if not after:
            break
    return items[:cap]
