"""Leave with your data: a ZIP of everything the platform keeps about you, built in the
background, announced by a notification and an email, downloadable once by a link.

Flow: ``do_request_export`` (password, and a code with two-factor sign-in) stores a ``pending``
row (``messaging.store.exports``) and returns → the task ``EXPORTS_RUN_DUE`` (in the gateway, or
on a Celery worker) claims due rows: builds the ZIP into a temporary file
(``messaging.actions.export_zip``), stores it in the blob store, marks the row ``ready`` with the
SHA-256 of a fresh download token, then notifies and mails the link
``/api/v1/exports/{id}/download?token=…`` → the first download with that token takes the row
(``ready → downloaded``, one conditional update: of concurrent downloads one wins), streams the
blob and deletes it. An unused export expires after ``LINK_TTL`` (the same task deletes its blob);
rows are kept ``KEEP_ROWS`` so the daily limit can count them, then deleted.

Limits: one export in progress per person (a unique index decides), ``EXPORTS_PER_DAY`` requests
a day.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from messaging.actions import export_zip
from messaging.actions.limits import rate_limited
from messaging.actions.notifications import do_notify
from messaging.actions.reauth import check_reauth
from messaging.context import Messaging
from messaging.store import exports as rows
from storage.errors import AppError
from storage.mongo import iso, new_id, now_ms

log = logging.getLogger(__name__)

EXPORTS_PER_DAY = 3
DAY_MS = 86_400_000
LINK_TTL_MS = DAY_MS  # a ready export can be downloaded for this long
BUILD_LEASE_MS = 30 * 60_000  # a build not finished by then is taken over by another worker
NOTIFY_LEASE_MS = 60_000
DOWNLOAD_LEASE_MS = 60 * 60_000  # a download still streaming after this has its blob dropped
KEEP_ROWS_MS = 7 * DAY_MS
MAX_ATTEMPTS = 3  # builds tried before an export is marked failed
RETRY_MS = 60_000  # a failed build is tried again after this
DUE_BATCH = 20
LIST_LIMIT = 20


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def export_view(row: dict[str, Any]) -> dict[str, Any]:
    """An export as its owner sees it (never the token or the blob key)."""
    return {
        "id": row["_id"],
        "status": row["status"],
        "created_at": iso(row["created_at"]),
        "ready_at": iso(row.get("ready_at")),
        "expires_at": iso(row.get("expires_at")) if row["status"] == rows.READY else None,
        "downloaded_at": iso(row.get("downloaded_at")),
        "size": row.get("size"),
    }


def download_path(export_id: str, token: str) -> str:
    return f"/api/v1/exports/{export_id}/download?token={token}"


# --- asking for one -----------------------------------------------------------------------------


async def check_export_rate(ctx: Messaging, user_id: str, now: int) -> None:
    since = now - DAY_MS
    if await ctx.exports.count_since(user_id, since) >= EXPORTS_PER_DAY:
        oldest = await ctx.exports.oldest_since(user_id, since) or now
        retry_after = max(1, (oldest + DAY_MS - now) // 1000)
        raise rate_limited(retry_after, f"exports (at most {EXPORTS_PER_DAY} a day)")


async def do_request_export(
    ctx: Messaging, user: dict[str, Any], password: str, code: Any = None
) -> dict[str, Any]:
    """Queue an export of ``user``'s data (their password again, and ``code`` with two-factor
    sign-in); returns its view (``pending``). Nothing is queued when a check fails."""
    await check_reauth(ctx, user, password, code)
    now = now_ms()
    await check_export_rate(ctx, user["_id"], now)
    row = {
        "_id": new_id(),
        "user_id": user["_id"],
        "status": rows.PENDING,
        "active_user": user["_id"],
        "created_at": now,
        "due_at": now,
        "attempts": 0,
    }
    if not await ctx.exports.add_export(row):
        raise AppError(
            "export_in_progress",
            "an export of your data is being prepared already; you will be told when it is ready",
            status=409,
        )
    return export_view(row)


async def get_exports(ctx: Messaging, user_id: str) -> list[dict[str, Any]]:
    return [export_view(r) for r in await ctx.exports.get_user_exports(user_id, LIST_LIMIT)]


async def _own_ready(ctx: Messaging, user_id: str, export_id: str) -> dict[str, Any]:
    row = await ctx.exports.get_export(export_id)
    if row is None or row["user_id"] != user_id:
        raise AppError("export_not_found", "no such export of yours", status=404)
    if row["status"] != rows.READY or row["expires_at"] <= now_ms():
        raise AppError(
            "export_not_ready",
            f"this export is {row['status']}: only a ready one can be downloaded",
            status=409,
            details={"status": row["status"]},
        )
    return row


async def do_new_link(ctx: Messaging, user_id: str, export_id: str) -> dict[str, Any]:
    """A fresh download link for your ready export (the mailed one stops working): for the
    web client's Download button."""
    row = await _own_ready(ctx, user_id, export_id)
    token = secrets.token_urlsafe(32)
    if not await ctx.exports.set_token(row["_id"], rows.READY, _hash(token)):
        raise AppError("export_not_ready", "this export was downloaded meanwhile", status=409)
    return {"url": download_path(row["_id"], token), "expires_at": iso(row["expires_at"])}


# --- downloading it -------------------------------------------------------------------------


def _not_found() -> AppError:
    return AppError("export_not_found", "no such export, or the link is not right", status=404)


async def do_take_download(ctx: Messaging, export_id: str, token: Any) -> dict[str, Any]:
    """The export a link names, taken for its one download: 404 ``export_not_found`` (no such
    export, or the token does not match — the same answer, so a guess learns nothing), 410
    ``gone`` (already downloaded, or expired)."""
    if not isinstance(token, str) or not token:
        raise _not_found()
    token_hash = _hash(token)
    row = await ctx.exports.get_export(export_id)
    if (
        row is None
        or not row.get("token_hash")
        or not secrets.compare_digest(row["token_hash"], token_hash)
    ):
        raise _not_found()
    now = now_ms()
    taken = await ctx.exports.take_download(export_id, token_hash, now, now + DOWNLOAD_LEASE_MS)
    if taken is None:
        raise AppError(
            "gone",
            "this link was used already, or it expired: ask for a new export",
            status=410,
        )
    return taken


def read_download(ctx: Messaging, row: dict[str, Any]) -> AsyncIterator[bytes]:
    return ctx.blobs.read(row["blob"], 0, row["size"])


async def do_finish_download(ctx: Messaging, row: dict[str, Any], *, completed: bool) -> None:
    """After the stream: the blob goes (the export was delivered), or — cut short — the export
    is ready again and its link works once more."""
    if not completed and await ctx.exports.give_back(
        row["_id"], row["downloaded_at"], row["expires_at"]
    ):
        return
    await _drop_blob(ctx, row, row["created_at"] + KEEP_ROWS_MS)


async def release_blob(ctx: Messaging, key: str | None, *, export_id: str) -> None:
    """Delete an export's blob unless something else uses it: a media (blobs are
    content-addressed: someone may have uploaded the very same bytes) or another export."""
    if not key or await ctx.media.blob_in_use(key):
        return
    if not await ctx.exports.blob_used_elsewhere(key, export_id):
        await ctx.blobs.delete(key)


async def _drop_blob(ctx: Messaging, row: dict[str, Any], next_due: int) -> None:
    await ctx.exports.clear_blob(row["_id"], row["status"], next_due)
    await release_blob(ctx, row.get("blob"), export_id=row["_id"])


# --- the task: build, announce, expire, clean up --------------------------------------------


async def do_run_due(ctx: Messaging) -> dict[str, int]:
    """Do every due export job (safe on every node and worker at once: each row is claimed by
    a conditional update). Returns how many jobs of each kind were done."""
    done: dict[str, int] = {}
    for row in await ctx.exports.get_due(now_ms(), DUE_BATCH):
        job = _job_of(row)
        lease = now_ms() + _LEASES[job]
        if not await ctx.exports.claim(row, lease):
            continue
        row = {**row, "due_at": lease, "attempts": row.get("attempts", 0) + 1}
        try:
            await _JOBS[job](ctx, row)
        except Exception:
            log.exception("export %s: %s failed (attempt %d)", row["_id"], job, row["attempts"])
            continue
        done[job] = done.get(job, 0) + 1
    return done


def _job_of(row: dict[str, Any]) -> str:
    status = row["status"]
    if status in rows.IN_PROGRESS:
        return "build"
    if status == rows.READY:
        return "expire" if row.get("notified") else "announce"
    if row.get("blob"):
        return "drop_blob"  # a download that never finished
    return "delete_row"


_LEASES = {
    "build": BUILD_LEASE_MS,
    "announce": NOTIFY_LEASE_MS,
    "expire": NOTIFY_LEASE_MS,
    "drop_blob": NOTIFY_LEASE_MS,
    "delete_row": NOTIFY_LEASE_MS,
}


async def _fail(ctx: Messaging, row: dict[str, Any], error: str) -> None:
    await ctx.exports.finish_job(
        row["_id"],
        row["due_at"],
        rows.FAILED,
        {"active_user": row["_id"], "error": error, "due_at": row["created_at"] + KEEP_ROWS_MS},
    )


async def _build(ctx: Messaging, row: dict[str, Any]) -> None:
    user = await ctx.users.get_user(row["user_id"])
    if user is None or user.get("deleted_at") or user.get("deleting_at"):
        await _fail(ctx, row, "account deleted")
        return
    if row["attempts"] > MAX_ATTEMPTS:
        await _fail(ctx, row, "could not be built")
        return
    await ctx.exports.finish_job(row["_id"], row["due_at"], rows.BUILDING, {})
    folder = Path(tempfile.mkdtemp(dir=_scratch(ctx)))
    try:
        path = folder / "export.zip"
        await export_zip.write_export(ctx, user, row, path)
        size = path.stat().st_size
        blob = await ctx.blobs.put_file(path)
    except asyncio.CancelledError:
        # This process is stopping: the build starts over at once elsewhere (or at restart),
        # not after its lease.
        with contextlib.suppress(Exception):
            await ctx.exports.reschedule(row["_id"], row["due_at"], now_ms())
        raise
    except Exception:
        # Tried again soon (a database hiccup), up to MAX_ATTEMPTS builds.
        await ctx.exports.reschedule(row["_id"], row["due_at"], now_ms() + RETRY_MS)
        raise
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)
    now = now_ms()
    token = secrets.token_urlsafe(32)
    announce_by = now + NOTIFY_LEASE_MS
    ready = await ctx.exports.finish_job(
        row["_id"],
        row["due_at"],
        rows.READY,
        {
            "active_user": row["_id"],
            "blob": blob,
            "size": size,
            "ready_at": now,
            "expires_at": now + LINK_TTL_MS,
            "token_hash": _hash(token),
            "notified": False,
            "due_at": announce_by,
        },
    )
    if not ready:  # our lease ran out (another worker took over), or the account went
        await release_blob(ctx, blob, export_id=row["_id"])
        return
    await _announce(ctx, {**row, "due_at": announce_by, "expires_at": now + LINK_TTL_MS}, token)


def _scratch(ctx: Messaging) -> Path:
    folder = ctx.config.data_dir / "exports" / "building"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def _announce(ctx: Messaging, row: dict[str, Any], token: str | None = None) -> None:
    """Tell the person the export is ready: a notification, and an email with the link. A
    crash before this finished leaves the row due: the next run makes a new link and tells
    them (the unsent link never reached anyone)."""
    if token is None:
        token = secrets.token_urlsafe(32)
        if not await ctx.exports.set_token(row["_id"], rows.READY, _hash(token)):
            return
    user = await ctx.users.get_user(row["user_id"])
    if user is None or user.get("deleted_at"):
        return
    expires = iso(row["expires_at"])
    await do_notify(
        ctx,
        user["_id"],
        "service",
        title="Your data export is ready",
        body=f"Download it from Settings → Your data, or with the link we emailed, before "
        f"{expires}.",
        source=f"export:{row['_id']}",
    )
    url = ctx.config.public_base_url + download_path(row["_id"], token)
    from messaging.actions.mail import do_queue_mail

    await do_queue_mail(
        ctx, user, "export_ready", {"url": url, "expires_at": expires}, key=f"export:{row['_id']}"
    )
    await ctx.exports.reschedule(row["_id"], row["due_at"], row["expires_at"], notified=True)


async def _expire(ctx: Messaging, row: dict[str, Any]) -> None:
    if row["expires_at"] > now_ms():  # a cut-short download gave it back: not yet
        await ctx.exports.reschedule(row["_id"], row["due_at"], row["expires_at"])
        return
    if await ctx.exports.finish_job(row["_id"], row["due_at"], rows.EXPIRED, {}):
        await _drop_blob(ctx, {**row, "status": rows.EXPIRED}, row["created_at"] + KEEP_ROWS_MS)


async def _drop_leftover(ctx: Messaging, row: dict[str, Any]) -> None:
    await _drop_blob(ctx, row, row["created_at"] + KEEP_ROWS_MS)


async def _delete_row(ctx: Messaging, row: dict[str, Any]) -> None:
    await ctx.exports.delete_if_due(row["_id"], row["due_at"])


_JOBS = {
    "build": _build,
    "announce": _announce,
    "expire": _expire,
    "drop_blob": _drop_leftover,
    "delete_row": _delete_row,
}


# --- an account deleted -------------------------------------------------------------------


async def do_forget_exports(ctx: Messaging, user_id: str) -> None:
    """Delete every export of ``user_id`` and its blob (an account deleted). A build running
    meanwhile finds its row gone and drops what it made."""
    for row in await ctx.exports.get_all_of(user_id):
        await ctx.exports.delete_export(row["_id"])
        await release_blob(ctx, row.get("blob"), export_id=row["_id"])
