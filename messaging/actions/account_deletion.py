"""Deleting your account: ``DELETE /api/v1/me`` with the password, ``confirm: "DELETE"`` (and a
code when two-factor sign-in is on).

Checks first, and a refused deletion changes nothing: the confirmation text, the password (and
code), then every domain's ``deletion_checks`` (the wallet: no money left, nothing pending that
would move money later — ``wallet_not_empty`` lists it).

Then the account is marked ``deleting_at`` (a conditional update: of two concurrent deletions
one goes on, the other is told ``deletion_in_progress``) and erased step by step, each step
idempotent, in an order that keeps a retry possible: the password, the sign-in names and the
sessions go last, so a deletion interrupted by a crash is finished by sending it again (a
``deleting_at`` older than ``DELETION_LEASE_MS`` is taken over).

1. every domain's ``deletion_hooks``: mini-programs forget the person's per-app ids and
   consents (they can never link them again); exports and their files are deleted;
2. friendships, friend requests (both ways), blocks (both ways), browser push subscriptions,
   notifications are deleted; the other side of a friendship or request is told;
3. every media the person uploaded is deleted with its bytes (unless someone else uploaded the
   very same bytes): messages that carried it show it gone, as for any missing media;
4. the profile is shown as "Deleted account" (no picture, no bio) — in others' chats, where
   their messages stay, and in the system message of 5;
5. they leave every group ("Deleted account left"; ownership passes as when anyone leaves),
   so they no longer count as a member. Direct chats keep both members, so the other person
   still has the conversation, with "Deleted account" as its peer;
6. the account's document is replaced by its anonymised remains: username
   ``deleted-<8 hex>`` and an ``@deleted.invalid`` address (unique, so the unique indexes hold,
   and the old username and email are free to sign up again), no password hash, no settings,
   ``deleted_at``;
7. every session is revoked (its sockets disconnect at once) and deleted with its refresh
   tokens; second-factor secrets, pending email links are voided; the deletion is recorded in
   the admin audit (by user id only).

What stays: the messages the person sent (shown from "Deleted account"), their reactions, the
wallet's ledger entries (bookkeeping), abuse reports about them.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from typing import Any

from pymongo.errors import DuplicateKeyError

from messaging.actions import data_export, members
from messaging.actions.reauth import check_reauth
from messaging.context import Messaging
from messaging.events import event
from messaging.store.contacts import FRIENDS, other_of
from messaging.store.email_tokens import RESET_PASSWORD, VERIFY_EMAIL
from storage.errors import AppError
from storage.mongo import now_ms

log = logging.getLogger(__name__)

CONFIRM_TEXT = "DELETE"
DELETED_NAME = "Deleted account"
DELETED_EMAIL_DOMAIN = "deleted.invalid"  # .invalid: reserved, never deliverable (RFC 2606)
DELETION_LEASE_MS = 120_000  # a deletion that stopped longer ago than this is taken over
PAGE = 200


def check_confirm(confirm: Any) -> None:
    if confirm != CONFIRM_TEXT:
        raise AppError(
            "confirmation_required",
            f"type {CONFIRM_TEXT} (in capitals) as confirm to delete your account",
            details={"field": "confirm"},
        )


async def check_delete(
    ctx: Messaging, user: dict[str, Any], password: str, confirm: Any, code: Any
) -> None:
    """Everything that may refuse the deletion; nothing is written (but a wrong password's
    count)."""
    check_confirm(confirm)
    await check_reauth(ctx, user, password, code)
    for check in list(ctx.deletion_checks):
        await check(user)


async def do_delete_account(
    ctx: Messaging, user_id: str, *, password: str, confirm: Any, code: Any = None
) -> None:
    user = await ctx.users.get_user(user_id)
    if user is None:
        raise AppError("session_revoked", "this account no longer exists", status=401)
    if user.get("deleted_at"):
        # Deleted, but a crash came before its sessions were ended (this caller holds one).
        await _end_sessions(ctx, user_id)
        return
    await check_delete(ctx, user, password, confirm, code)
    now = now_ms()
    if not await ctx.users.claim_deletion(user_id, now, now - DELETION_LEASE_MS):
        raise AppError("deletion_in_progress", "your account is being deleted already", status=409)
    for hook in list(ctx.deletion_hooks):
        await hook(user)
    await data_export.do_forget_exports(ctx, user_id)
    await _forget_contacts(ctx, user_id)
    await _forget_devices_and_feed(ctx, user_id)
    await _forget_media(ctx, user_id)
    await ctx.users.update_user(
        user_id,
        {
            "display_name": DELETED_NAME,
            "bio": "",
            "avatar_url": None,
            "avatar_media_id": None,
            "updated_at": now_ms(),
        },
    )
    await _leave_groups(ctx, user_id)
    await _anonymise(ctx, user)
    await _end_sessions(ctx, user_id)


async def _forget_contacts(ctx: Messaging, user_id: str) -> None:
    while True:
        contacts = await ctx.contacts.get_user_contacts(user_id, PAGE)
        for contact in contacts:
            other = other_of(contact, user_id)
            removed = await ctx.contacts.delete_contact(user_id, other)
            if removed is None:
                continue  # removed meanwhile by the other side
            if removed["state"] == FRIENDS:
                kind = "contact.removed"
            elif removed["requester_id"] == user_id:
                kind = "contact.request_cancelled"
            else:
                kind = "contact.request_declined"
            await ctx.events.emit(event(kind, {"user": other}, {"user_id": user_id}))
        if len(contacts) < PAGE:
            break
    await ctx.blocks.delete_user_blocks(user_id)


async def _forget_devices_and_feed(ctx: Messaging, user_id: str) -> None:
    while subscriptions := await ctx.push_subscriptions.get_user_subscriptions(user_id, PAGE):
        for subscription in subscriptions:
            await ctx.push_outbox.delete_for_subscription(subscription["_id"])
        await ctx.push_subscriptions.delete_subscriptions([s["_id"] for s in subscriptions])
    await ctx.notifications.delete_user_notifications(user_id)


async def _forget_media(ctx: Messaging, user_id: str) -> None:
    """Each media: who may fetch it, its document, then its bytes when no other media shares
    them (a media is deleted before its blob, so a reader finds no document rather than a
    document without bytes)."""
    while page := await ctx.media.get_owned_page(user_id, None, PAGE):
        for doc in page:
            await ctx.media_refs.delete_for_media(doc["_id"])
            await ctx.media.delete_media(doc["_id"])
            for key in {doc.get("blob"), doc.get("thumbnail_blob")} - {None}:
                await data_export.release_blob(ctx, key, export_id="")


async def _leave_groups(ctx: Messaging, user_id: str) -> None:
    for member in await ctx.members.get_memberships(user_id):
        conversation = await ctx.conversations.get_conversation(member["conversation_id"])
        if conversation is None or conversation["type"] != "group":
            continue
        try:
            await members.do_leave(ctx, user_id, conversation["_id"])
        except AppError as exc:  # left meanwhile (a concurrent removal): what we wanted
            log.info("deleting %s: leaving %s: %s", user_id, conversation["_id"], exc.code)


def _deleted_username(user_id: str, length: int) -> str:
    return "deleted-" + hashlib.sha256(user_id.encode()).hexdigest()[:length]


async def _anonymise(ctx: Messaging, user: dict[str, Any]) -> None:
    """Replace the account's document by what stays of it. The new username is derived from
    the id (a retry writes the same); on the rare clash with another deleted account's, a
    longer one is taken."""
    user_id = user["_id"]
    now = now_ms()
    for length in (8, 16, 64):
        username = _deleted_username(user_id, length)
        email = f"{username}.{secrets.token_hex(4)}@{DELETED_EMAIL_DOMAIN}"
        remains = {
            "username": username,
            "username_lower": username,
            "email": email,
            "email_lower": email,
            "password_hash": None,  # (a field sign-in reads: None verifies nothing)
            "display_name": DELETED_NAME,
            "bio": "",
            "avatar_url": None,
            "role": "user",
            "suspended": False,
            "email_verified_at": None,
            "mfa_enabled": False,
            "created_at": user["created_at"],
            "updated_at": now,
            "deleting_at": user.get("deleting_at", now),
            "deleted_at": now,
        }
        try:
            if await ctx.users.replace_deleted(user_id, remains):
                await ctx.admin_audit.record(
                    {
                        "actor_id": user_id,
                        "action": "account.delete",
                        "target": {"user_id": user_id},
                        "reason": "deleted by its owner",
                        "at": now,
                    }
                )
            return
        except DuplicateKeyError:
            continue
    raise RuntimeError(f"no free username for deleted account {user_id}")


async def _end_sessions(ctx: Messaging, user_id: str) -> None:
    """Revoke every session (tokens refused, sockets disconnected), then forget them, the
    second factor, any pending emailed link (a password reset mailed before the deletion
    must not open the account again) and the mail kept for the account."""
    from messaging.actions.auth import do_revoke_all_sessions
    from messaging.actions.mfa import do_forget

    await do_revoke_all_sessions(ctx, user_id, "account_deleted")
    session_ids = await ctx.sessions.get_user_session_ids(user_id)
    await ctx.refresh_tokens.delete_for_sessions(session_ids)
    await ctx.sessions.delete_sessions(session_ids)
    await do_forget(ctx, user_id)
    now = now_ms()
    for purpose in (VERIFY_EMAIL, RESET_PASSWORD):
        await ctx.email_tokens.revoke_user_tokens(user_id, purpose, now)
    await ctx.mail_outbox.delete_for_user(user_id)
