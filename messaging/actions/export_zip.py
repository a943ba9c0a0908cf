"""Writing a person's data export: one ZIP file, entry by entry, on disk.

Memory stays bounded whatever the account holds: messages, friends, notifications and media are
read page by page (``PAGE``) and each page is written out before the next is read; a media file is
copied from the blob store chunk by chunk. Only what another domain adds (``export_sections``:
the wallet's statement, the mini-program consents) arrives as whole bytes, by that interface.

The layout is explained to the reader by ``README.txt`` inside the ZIP.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import re
import time
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

from messaging.actions.accounts import user_view
from messaging.actions.auth import session_view
from messaging.actions.notifications import notification_view
from messaging.context import Messaging
from messaging.store.contacts import other_of
from messaging.views import message_view
from storage.mongo import iso

PAGE = 200  # documents read at once
BIG_WRITE = 64 * 1024  # chunks at least this big are written off the event loop
ZIP64_FROM = 1 << 31  # entries this big need ZIP64 headers
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

README = """Your Aetherial data
===================

This archive holds what Aetherial keeps about your account, as of {created}
(export {export_id}). Dates are ISO 8601 in UTC; amounts of money are integers in the
currency's minor unit (cents for USD: "exponent" says how many decimals).

README.txt              this file
profile.json            your profile: username, display name, bio, email, language, time zone
sessions.json           the devices signed in to your account (browser, address, when)
contacts.json           your friends, friend requests you sent and received, people you blocked
conversations/<id>.json one file per conversation you are in: its title and type, and the
                        messages YOU sent there (others' messages are theirs, not included)
media.json              the photos, files and voice notes you uploaded (name, type, size)
media/<id>-<name>       the files themselves
notifications.json      your notification feed
{sections}
The download link of this archive worked once. Ask for a new export at any time from
Settings -> Your data.
"""

SECTION_DOCS = {
    "wallet/statement.json": "every movement of money in your wallet, and your balances",
    "wallet/statement.csv": "the same statement as a spreadsheet",
    "miniapps/consents.json": "what you let each mini-program do, and the apps that know you",
}


def _safe_name(name: str) -> str:
    cleaned = _UNSAFE.sub("_", name).strip("._")
    return cleaned[:80] or "file"


def media_entry_name(doc: dict[str, Any]) -> str:
    """``media/<id>-<name>``: the uploaded name, else the kind with the type's extension."""
    name = doc.get("name")
    if not name:
        extension = mimetypes.guess_extension(doc.get("content_type") or "") or ""
        name = f"{doc['kind']}{extension}"
    return f"media/{doc['_id']}-{_safe_name(name)}"


class ExportZip:
    """The ZIP being written (``zipfile`` is synchronous: only one entry is open at a time,
    and large chunks are written in a worker thread)."""

    def __init__(self, path: Path) -> None:
        self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)
        self.names: set[str] = set()
        self._date = time.gmtime()[:6]

    def _info(self, name: str, *, compress: bool = True) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self._date)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        self.names.add(name)
        return info

    def add_bytes(self, name: str, data: bytes) -> None:
        self.zip.writestr(self._info(name), data)

    def add_json(self, name: str, value: Any) -> None:
        self.add_bytes(name, _dumps(value).encode())

    def open(self, name: str, *, compress: bool = True, size: int = 0) -> IO[bytes]:
        return self.zip.open(
            self._info(name, compress=compress), "w", force_zip64=size >= ZIP64_FROM
        )

    def close(self) -> None:
        self.zip.close()


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=False)


async def _write(out: IO[bytes], data: bytes) -> None:
    if len(data) >= BIG_WRITE:
        await asyncio.to_thread(out.write, data)
    else:
        out.write(data)


def _item(item: Any, first: bool) -> bytes:
    """One element of a JSON array being written, with its separator."""
    return (("" if first else ",") + "\n  " + json.dumps(item, ensure_ascii=False)).encode()


async def _write_object_with_list(
    out: IO[bytes], head: dict[str, Any], key: str, items: AsyncIterator[Any]
) -> int:
    """``{**head, key: [items…]}`` written item by item; returns how many items."""
    prefix = _dumps(head)[:-1].rstrip()  # the head without its closing brace
    separator = ",\n" if head else "\n"
    out.write(f"{prefix}{separator} {json.dumps(key)}: [".encode())
    count = 0
    async for item in items:
        await _write(out, _item(item, count == 0))
        count += 1
    out.write(("\n ]\n}\n" if count else "]\n}\n").encode())
    return count


async def write_export(
    ctx: Messaging, user: dict[str, Any], export: dict[str, Any], path: Path
) -> None:
    """Write the whole export of ``user`` to ``path`` (a new file)."""
    archive = ExportZip(path)
    try:
        await _write_all(ctx, archive, user, export)
    finally:
        archive.close()


async def _write_all(
    ctx: Messaging, archive: ExportZip, user: dict[str, Any], export: dict[str, Any]
) -> None:
    user_id = user["_id"]
    # The other domains' sections first: a failure there fails the export before the long part.
    sections: dict[str, bytes] = {}
    for section in list(ctx.export_sections):
        for name, data in (await section(user)).items():
            if not _section_path_ok(name):
                raise ValueError(f"export section path {name!r} is not allowed")
            sections.setdefault(name, data)  # (a section registered twice: its first copy)
    listed = "".join(
        f"{name:<23} {SECTION_DOCS.get(name, 'added by another part of Aetherial')}\n"
        for name in sorted(sections)
    )
    archive.add_bytes(
        "README.txt",
        README.format(
            created=iso(export["created_at"]), export_id=export["_id"], sections=listed
        ).encode(),
    )
    archive.add_json("profile.json", _profile(user))
    sessions = await ctx.sessions.get_active_sessions(user_id)
    archive.add_json("sessions.json", {"sessions": [session_view(s, "") for s in sessions]})
    await _write_contacts(ctx, archive, user_id)
    await _write_conversations(ctx, archive, user_id)
    await _write_media(ctx, archive, user_id)
    with archive.open("notifications.json") as out:
        await _write_object_with_list(out, {}, "notifications", _notifications(ctx, user_id))
    for name in sorted(sections):
        archive.add_bytes(name, sections[name])


def _section_path_ok(name: str) -> bool:
    parts = name.split("/")
    reserved = {"README.txt", "profile.json", "sessions.json", "contacts.json", "media.json"}
    return (
        bool(name)
        and name not in reserved
        and parts[0] not in {"conversations", "media"}
        and all(p and p not in {".", ".."} and not _UNSAFE.search(p) for p in parts)
    )


def _profile(user: dict[str, Any]) -> dict[str, Any]:
    profile = user_view(user, private=True)
    profile["role"] = user.get("role", "user")
    profile["updated_at"] = iso(user.get("updated_at"))
    if user.get("email_verified_at"):
        profile["email_verified_at"] = iso(user["email_verified_at"])
    return {"profile": profile}


async def _people(ctx: Messaging, ids: list[str]) -> dict[str, dict[str, Any]]:
    return {u["_id"]: user_view(u) for u in await ctx.users.get_users(list(set(ids)))}


async def _write_contacts(ctx: Messaging, archive: ExportZip, user_id: str) -> None:
    with archive.open("contacts.json") as out:
        out.write(b'{\n "friends": [')
        count, before = 0, None
        while True:
            page = await ctx.contacts.get_friends(user_id, PAGE, before)
            if not page:
                break
            people = await _people(ctx, [other_of(c, user_id) for c in page])
            for contact in page:
                other = other_of(contact, user_id)
                item = {
                    "user": people.get(other, {"id": other}),
                    "since": iso(contact.get("since")),
                }
                out.write(_item(item, count == 0))
                count += 1
            if len(page) < PAGE:
                break
            before = (page[-1]["since"], page[-1]["_id"])
        lists: dict[str, list[dict[str, Any]]] = {}
        for key, incoming in (("requests_received", True), ("requests_sent", False)):
            requests = await ctx.contacts.get_requests(user_id, incoming=incoming, limit=10_000)
            people = await _people(ctx, [other_of(c, user_id) for c in requests])
            lists[key] = [
                {
                    "user": people.get(other_of(c, user_id), {"id": other_of(c, user_id)}),
                    "message": c.get("message", ""),
                    "requested_at": iso(c.get("requested_at")),
                }
                for c in requests
            ]
        blocks = await ctx.blocks.get_blocked_ids(user_id)
        people = await _people(ctx, [b["blocked_id"] for b in blocks])
        lists["blocked"] = [
            {
                "user": people.get(b["blocked_id"], {"id": b["blocked_id"]}),
                "since": iso(b["created_at"]),
            }
            for b in blocks
        ]
        out.write(b"\n ]")
        for key, items in lists.items():
            out.write(f',\n "{key}": {json.dumps(items, ensure_ascii=False)}'.encode())
        out.write(b"\n}\n")


async def _conversation_head(
    ctx: Messaging, conversation: dict[str, Any], member: dict[str, Any], user_id: str
) -> dict[str, Any]:
    title = conversation.get("title") or ""
    if not title and conversation["type"] == "direct":
        others = [m["user_id"] for m in await ctx.members.get_members(conversation["_id"])]
        peers = await ctx.users.get_users([u for u in others if u != user_id])
        if peers:
            title = peers[0].get("display_name") or peers[0]["username"]
    return {
        "conversation": {
            "id": conversation["_id"],
            "type": conversation["type"],
            "title": title,
            "created_at": iso(conversation.get("created_at")),
            "your_role": member.get("role"),
            "you_joined_at": iso(member.get("joined_at")),
        }
    }


async def _sent_messages(
    ctx: Messaging, conversation_id: str, user_id: str
) -> AsyncIterator[dict[str, Any]]:
    after = 0
    while True:
        page = await ctx.messages.get_sent_page(conversation_id, user_id, after=after, limit=PAGE)
        for message in page:
            view = message_view(message)
            view.pop("reactions", None)
            yield view
        if len(page) < PAGE:
            return
        after = page[-1]["seq"]


async def _write_conversations(ctx: Messaging, archive: ExportZip, user_id: str) -> None:
    for member in await ctx.members.get_memberships(user_id):
        conversation = await ctx.conversations.get_conversation(member["conversation_id"])
        if conversation is None:
            continue
        head = await _conversation_head(ctx, conversation, member, user_id)
        with archive.open(f"conversations/{_safe_name(conversation['_id'])}.json") as out:
            messages = _sent_messages(ctx, conversation["_id"], user_id)
            await _write_object_with_list(out, head, "your_messages", messages)


async def _owned_media(ctx: Messaging, user_id: str) -> AsyncIterator[dict[str, Any]]:
    after = None
    while True:
        page = await ctx.media.get_owned_page(user_id, after, PAGE)
        for doc in page:
            yield doc
        if len(page) < PAGE:
            return
        after = (page[-1]["created_at"], page[-1]["_id"])


async def _media_items(ctx: Messaging, user_id: str) -> AsyncIterator[dict[str, Any]]:
    async for doc in _owned_media(ctx, user_id):
        item = {
            "id": doc["_id"],
            "file": media_entry_name(doc),
            "kind": doc["kind"],
            "content_type": doc["content_type"],
            "size": doc["size"],
            "uploaded_at": iso(doc["created_at"]),
        }
        for key in ("name", "width", "height", "duration_ms"):
            if doc.get(key) is not None:
                item[key] = doc[key]
        yield item


async def _write_media(ctx: Messaging, archive: ExportZip, user_id: str) -> None:
    with archive.open("media.json") as out:
        await _write_object_with_list(out, {}, "media", _media_items(ctx, user_id))
    async for doc in _owned_media(ctx, user_id):
        size = await ctx.blobs.size(doc["blob"])
        if size is None:
            continue  # its bytes are gone (listed in media.json all the same)
        # Photos and voice notes are compressed already: stored as they are.
        with archive.open(media_entry_name(doc), compress=doc["kind"] == "file", size=size) as out:
            async for chunk in ctx.blobs.read(doc["blob"], 0, size):
                await _write(out, chunk)


async def _notifications(ctx: Messaging, user_id: str) -> AsyncIterator[dict[str, Any]]:
    before = None
    while True:
        page = await ctx.notifications.get_page(user_id, before=before, limit=PAGE)
        for doc in page:
            yield notification_view(doc)
        if len(page) < PAGE:
            return
        before = page[-1]["_id"]
