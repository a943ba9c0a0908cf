"""Care circle: a person (the owner) lets family members read chosen records, with consent,
revocably, audited; and keeps dependents (a child, a parent without an account) to book for.

- **Invite**: ``/health circle invite <scopes…|all>`` in a chat with the family member (a direct
  chat or a group; not the service chat) posts an invite card with **Accept**. Scopes:
  ``vitals``, ``medications``, ``allergies``, ``appointments``, ``reminders`` (missed-dose
  messages). Another member of that chat pressing Accept joins the owner's circle with those
  scopes (an invite is used once, expires after 7 days; pressing your own is refused). Only
  someone who shares a chat with the owner can press, so a circle member is always a contact.
- ``/health circle share <member> <scopes…>`` adds scopes to a member; ``/health circle revoke
  <member> [scopes…]`` removes scopes, or the whole membership. A member is named by their
  display name (as they accepted) or per-app id; anyone else is ``not_in_circle`` ("not one of
  your contacts in the care circle") and nothing is written.
- **Reading**: a member reads the owner's shared records in the web view — view
  ``circle.records {owner, what?}`` (the sections the member's scopes allow). Every read checks
  the membership again (a revoked scope is unreadable at once: ``not_in_circle`` /
  ``not_shared``) and appends to ``access_log``; a refused read writes nothing. ``reminders``: a
  missed dose is also sent to the member (``notify_missed``, logged too).
- ``/health circle`` (members, and who shares with you), ``/health circle log`` (who read
  what), ``/health circle shared`` (whose records you can read).
- **Dependents**: ``/health dependent add <name> <YYYY-MM-DD> <relationship>``, ``/health
  dependent`` (list), ``/health dependent remove <name or id>``; ``dependent_of(ctx, guardian,
  dependent_id)`` for booking (FHIR RelatedPerson in the export).

Views: ``circle.list``, ``circle.grant {member, scopes}``, ``circle.revoke {member, scopes?}``,
``circle.log {limit?}``, ``circle.records {owner, what?}``, ``dependents.list``,
``dependent.add {name, birth_date, relationship}``, ``dependent.remove {dependent_id}``.

Data: ``circle`` key ``<owner>:<member>`` ``{owner, owner_name, member, member_name, scopes,
since, updated_at}``; ``circle_invites`` key ``ci-<hex>`` ``{id, owner, owner_name, scopes,
conversation_id, message_id, state: open|accepted, created_at, expires_at, accepted_by?}``;
``access_log`` key ``<owner>:<at>:<rand>`` ``{owner, reader, reader_name, what, at}``;
``dependents`` key ``dp-<hex>`` ``{id, guardian, name, birth_date, relationship, created_at}``.
"""

from __future__ import annotations

import contextlib
import re
from datetime import date, datetime
from typing import Any

import adherence
import clock
import records
import units
from records import HealthError, change_doc, command, find_all, private, view
from texts import DISCLAIMER

from sdk import Button, Card, Field, HostError, NotFound, Reply, ScopeDenied

CIRCLE, INVITES, ACCESS_LOG, DEPENDENTS = "circle", "circle_invites", "access_log", "dependents"
SCOPES = ("vitals", "medications", "allergies", "appointments", "reminders")
READABLE = ("vitals", "medications", "allergies", "appointments")
INVITE_TTL_MS = 7 * 86_400_000
MEMBERS_MAX, DEPENDENTS_MAX, LOG_SHOWN = 20, 20, 15
INVITE_ID_RE = re.compile(r"^ci-[0-9a-f]{12}$")
DEPENDENT_ID_RE = re.compile(r"^dp-[0-9a-f]{12}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# The relationships a dependent may have, with their FHIR (v3 RoleCode) code.
RELATIONSHIPS = {
    "child": ("CHILD", "child"),
    "parent": ("PRN", "parent"),
    "spouse": ("SPS", "spouse"),
    "partner": ("DOMPART", "domestic partner"),
    "sibling": ("SIB", "sibling"),
    "grandparent": ("GRPRN", "grandparent"),
    "grandchild": ("GRNDCHILD", "grandchild"),
    "other": ("FAMMEM", "family member"),
}
NOT_IN_CIRCLE = "not one of your contacts in the care circle"
USAGE = (
    "Usage: /health circle · /health circle invite <scopes|all> · /health circle share <member> "
    "<scopes> · /health circle revoke <member> [scopes] · /health circle log · /health circle "
    f"shared. Scopes: {', '.join(SCOPES)}."
)
DEPENDENT_USAGE = (
    "Usage: /health dependent add <name> <YYYY-MM-DD> <relationship> · /health dependent · "
    f"/health dependent remove <name>. Relationships: {', '.join(RELATIONSHIPS)}."
)


# --- scopes and members -------------------------------------------------------------------


def parse_scopes(words: list[str] | Any) -> list[str]:
    """Scope words (commas allowed; ``all``) → the sorted scopes; ``HealthError``."""
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise HealthError("invalid_scope", f"Scopes: {', '.join(SCOPES)} or all.")
    found = [w.strip().lower() for word in words for w in word.split(",") if w.strip()]
    if not found:
        raise HealthError("invalid_scope", f"Name what to share: {', '.join(SCOPES)} or all.")
    if "all" in found:
        return list(SCOPES)
    unknown = [w for w in found if w not in SCOPES]
    if unknown:
        raise HealthError(
            "invalid_scope", f"Unknown scope {unknown[0][:20]!r}: {', '.join(SCOPES)} or all."
        )
    return [s for s in SCOPES if s in found]


def is_scope(word: str) -> bool:
    parts = [w for w in word.lower().split(",") if w]
    return bool(parts) and all(p in (*SCOPES, "all") for p in parts)


async def membership(ctx, owner: str, member: str) -> dict[str, Any] | None:
    doc = await ctx.storage_get(CIRCLE, f"{owner}:{member}")
    return doc if isinstance(doc, dict) and doc.get("scopes") else None


async def members_of(ctx, owner: str) -> list[dict[str, Any]]:
    found = [i["value"] for i in await find_all(ctx, CIRCLE, {"owner": owner})]
    return sorted((m for m in found if m.get("scopes")), key=lambda m: m.get("since", 0))


async def sharing_with(ctx, member: str) -> list[dict[str, Any]]:
    found = [i["value"] for i in await find_all(ctx, CIRCLE, {"member": member})]
    return sorted((m for m in found if m.get("scopes")), key=lambda m: m.get("since", 0))


async def resolve_member(ctx, owner: str, ref: str) -> dict[str, Any]:
    """A member of ``owner``'s circle by per-app id or display name; ``not_in_circle``."""
    ref = " ".join(str(ref or "").split())
    members = await members_of(ctx, owner)
    found = [m for m in members if m["member"] == ref]
    if not found:
        found = [m for m in members if m.get("member_name", "").lower() == ref.lower()]
    if not found:
        raise HealthError("not_in_circle", f"{ref[:40] or 'That person'} is {NOT_IN_CIRCLE}.")
    if len(found) > 1:
        raise HealthError(
            "ambiguous_member", "Several members have that name: use the web view to choose."
        )
    return found[0]


def public_member(doc: dict[str, Any]) -> dict[str, Any]:
    keep = ("owner", "owner_name", "member", "member_name", "scopes", "since")
    return {k: doc.get(k) for k in keep}


async def log_access(ctx, owner: str, reader: str, reader_name: str, what: str) -> None:
    at = clock.now_ms()
    entry = {"owner": owner, "reader": reader, "reader_name": reader_name, "what": what, "at": at}
    await ctx.storage_put(ACCESS_LOG, f"{owner}:{at:013d}:{records.token()}", entry)


async def access_log(ctx, owner: str, limit: int = 100) -> list[dict[str, Any]]:
    """``owner``'s access log, newest first."""
    found = [i["value"] for i in await find_all(ctx, ACCESS_LOG, {"owner": owner})]
    found.sort(key=lambda e: e.get("at", 0), reverse=True)
    return found[:limit]


async def display_name(ctx, fallback: str) -> str:
    return await adherence.owner_name(ctx, fallback)


# --- invite and accept --------------------------------------------------------------------


def invite_card(invite: dict[str, Any]) -> Card:
    owner = invite["owner_name"]
    scopes = ", ".join(invite["scopes"])
    if invite["state"] == "open":
        return Card(
            f"🤝 {owner} invites you to their care circle"[:100],
            text=(
                f"Accept to see {owner}'s {scopes}. {owner} can revoke it at any time and sees "
                f"each time you read. {DISCLAIMER}"
            ),
            fields=[Field("Shares", scopes)],
            buttons=[Button("circle.accept", "Accept", value=invite["id"], style="primary")],
        )
    return Card(
        f"🤝 {owner}'s care circle"[:100],
        text=f"Accepted by {invite.get('accepted_name') or 'a member'}. {DISCLAIMER}",
        fields=[Field("Shares", scopes)],
    )


async def invite_command(ctx, args: list[str]) -> Reply:
    if ctx.conversation_type not in ("direct", "group"):
        raise HealthError(
            "not_a_contact_chat", "Invite from a chat with the family member (direct or group)."
        )
    scopes = parse_scopes(args)
    if len(await members_of(ctx, ctx.user_id)) >= MEMBERS_MAX:
        raise HealthError("circle_full", f"A care circle has at most {MEMBERS_MAX} members.")
    now = clock.now_ms()
    invite = {
        "id": f"ci-{records.token()}",
        "owner": ctx.user_id,
        "owner_name": await display_name(ctx, "Someone"),
        "scopes": scopes,
        "conversation_id": ctx.conversation_id,
        "message_id": None,
        "state": "open",
        "created_at": now,
        "expires_at": now + INVITE_TTL_MS,
    }
    await ctx.storage_put(INVITES, invite["id"], invite)
    invite["message_id"] = await ctx.send_card(invite_card(invite))
    await change_doc(
        ctx, INVITES, invite["id"], lambda doc: doc.update(message_id=invite["message_id"])
    )
    return private("Invite posted: the first other member of this chat who accepts joins.")


async def on_accept(ctx) -> Reply:
    """**Accept** on an invite card (value: the invite id)."""
    invite_id = ctx.value or ""
    invite = await ctx.storage_get(INVITES, invite_id) if INVITE_ID_RE.match(invite_id) else None
    now = clock.now_ms()
    if not isinstance(invite, dict) or invite.get("conversation_id") != ctx.conversation_id:
        return private("No such invite in this chat.")
    if invite["owner"] == ctx.user_id:
        return private("This is your own invite: another member of the chat accepts it.")
    if invite["state"] != "open":
        return private("This invite was already used: ask for a new one.")
    if now > invite["expires_at"]:
        return private("This invite expired: ask for a new one.")
    owner, member = invite["owner"], ctx.user_id
    current = await membership(ctx, owner, member)
    if current is None and len(await members_of(ctx, owner)) >= MEMBERS_MAX:
        return private(f"That care circle is full ({MEMBERS_MAX} members).")
    name = await display_name(ctx, "Member")

    def claim(doc: dict) -> str:
        if doc.get("state") != "open":
            return "used"
        doc.update(state="accepted", accepted_by=member, accepted_name=name, accepted_at=now)
        return "claimed"

    outcome, invite = await change_doc(ctx, INVITES, invite_id, claim)
    if outcome != "claimed" or invite is None:
        return private("This invite was already used: ask for a new one.")

    def merge(doc: dict) -> list[str]:
        doc["scopes"] = [s for s in SCOPES if s in set(doc.get("scopes") or []) | set(scopes)]
        doc.update(member_name=name, owner_name=invite["owner_name"], updated_at=now)
        return doc["scopes"]

    scopes = invite["scopes"]

    def create() -> tuple[list[str], dict]:
        doc = {
            "owner": owner,
            "owner_name": invite["owner_name"],
            "member": member,
            "member_name": name,
            "scopes": list(scopes),
            "since": now,
            "updated_at": now,
        }
        return doc["scopes"], doc

    granted, _ = await change_doc(ctx, CIRCLE, f"{owner}:{member}", merge, create)
    with contextlib.suppress(HostError):  # missed-dose messages are service messages
        await ctx.request_subscription()
    reply = private(
        f"You joined {invite['owner_name']}'s care circle: {', '.join(granted)}. "
        "Read them in the Health web view (Care circle)."
    )
    reply.update_card = {"message_id": ctx.message_id, "card": invite_card(invite)}
    return reply


# --- grant and revoke ---------------------------------------------------------------------


async def do_grant(ctx, owner: str, ref: str, scopes: list[str]) -> dict[str, Any]:
    found = await resolve_member(ctx, owner, ref)
    now = clock.now_ms()

    def grant(doc: dict) -> bool:
        if not doc.get("scopes"):
            return False  # revoked meanwhile: sharing needs a new invite
        doc["scopes"] = [s for s in SCOPES if s in set(doc["scopes"]) | set(scopes)]
        doc["updated_at"] = now
        return True

    done, doc = await change_doc(ctx, CIRCLE, f"{owner}:{found['member']}", grant)
    if not done or doc is None:
        raise HealthError("not_in_circle", f"{ref[:40]} is {NOT_IN_CIRCLE}.")
    return public_member(doc)


async def do_revoke(ctx, owner: str, ref: str, scopes: list[str] | None) -> dict[str, Any] | None:
    """Remove ``scopes`` (None: all — the membership ends); the member as it is now (None:
    gone)."""
    found = await resolve_member(ctx, owner, ref)
    key = f"{owner}:{found['member']}"
    remaining = [s for s in found["scopes"] if scopes is not None and s not in scopes]
    if not remaining:
        await ctx.storage_delete(CIRCLE, key)
        return None

    def revoke(doc: dict) -> bool:
        doc["scopes"] = [s for s in doc.get("scopes") or [] if s not in (scopes or SCOPES)]
        doc["updated_at"] = clock.now_ms()
        return True

    _, doc = await change_doc(ctx, CIRCLE, key, revoke)
    if doc is None or not doc.get("scopes"):
        await ctx.storage_delete(CIRCLE, key)
        return None
    return public_member(doc)


def split_member_scopes(words: list[str]) -> tuple[str, list[str]]:
    """``["Bea", "Smith", "vitals"]`` → ``("Bea Smith", ["vitals"])``: trailing scope words."""
    cut = len(words)
    while cut > 1 and is_scope(words[cut - 1]):
        cut -= 1
    return " ".join(words[:cut]), words[cut:]


# --- reading shared records ---------------------------------------------------------------


def appointments_reader():
    """``booking.appointments_of`` when this app's booking module provides it, else None."""
    return records.sibling_function("booking", "appointments_of")


async def read_records(ctx, owner: str, reader: str, what: str | None = None) -> dict[str, Any]:
    """What ``reader`` may read of ``owner``'s records now (re-checked on every read), logged
    in ``owner``'s access log. ``HealthError`` ``not_in_circle`` / ``not_shared``."""
    member = await membership(ctx, owner, reader) if owner != reader else None
    if member is None:
        raise HealthError("not_in_circle", f"You are {NOT_IN_CIRCLE} of that person.")
    readable = [s for s in member["scopes"] if s in READABLE]
    if what is not None:
        if what not in READABLE:
            raise HealthError("invalid_scope", f"what: one of {', '.join(READABLE)}.")
        if what not in readable:
            raise HealthError(
                "not_shared", f"{member['owner_name']} does not share {what} with you."
            )
        readable = [what]
    if not readable:
        raise HealthError("not_shared", f"{member['owner_name']} shares no records with you.")
    data: dict[str, Any] = {
        "owner": owner,
        "owner_name": member["owner_name"],
        "scopes": member["scopes"],
    }
    if "vitals" in readable:
        vitals = await records.vitals_of(ctx, owner)
        data["latest"] = {k: records.point(v) for k, v in records.latest_by_kind(vitals).items()}
        data["series"] = {
            kind: records.series(kind, [v for v in vitals if v["kind"] == kind])
            for kind in units.KINDS
            if any(v["kind"] == kind for v in vitals)
        }
    if "medications" in readable:
        data["medications"] = await records.medications_of(ctx, owner, active_only=True)
        data["today"] = await adherence.today_doses(ctx, owner)
    if "allergies" in readable:
        data["allergies"] = await records.allergies_of(ctx, owner)
    if "appointments" in readable:
        reader_fn = appointments_reader()
        data["appointments"] = list(await reader_fn(ctx, owner)) if reader_fn else []
    await log_access(ctx, owner, reader, member.get("member_name", "Member"), ", ".join(readable))
    return data


async def notify_missed(ctx, owner: str, dose: dict[str, Any]) -> int:
    """Tell the members ``owner`` shares ``reminders`` with that a dose was missed (each one
    logged); how many were told."""
    told = 0
    for member in await members_of(ctx, owner):
        if "reminders" not in member["scopes"]:
            continue
        card = Card(
            f"💊 {member['owner_name']} missed a dose"[:100],
            text=f"{dose['name']} at {dose['time']} was not marked as taken. {DISCLAIMER}",
        )
        try:
            await ctx.send_service_message(member["member"], card=card)
        except (ScopeDenied, NotFound):
            continue  # not opted in to service messages: nothing was read
        await log_access(
            ctx, owner, member["member"], member.get("member_name", "Member"), "reminders"
        )
        told += 1
    return told


# --- dependents ---------------------------------------------------------------------------


def check_dependent(name: Any, birth_date: Any, relationship: Any, today: date) -> dict:
    name = " ".join(str(name or "").split())
    if not 1 <= len(name) <= 60:
        raise HealthError("invalid_name", "The dependent's name is 1-60 characters.")
    text = str(birth_date or "")
    try:
        born = date.fromisoformat(text) if DATE_RE.match(text) else None
    except ValueError:
        born = None
    if born is None:
        raise HealthError("invalid_birth_date", "The birth date is written YYYY-MM-DD.")
    if born > today or born.year < 1900:
        raise HealthError("invalid_birth_date", "The birth date is between 1900 and today.")
    relation = str(relationship or "").strip().lower()
    if relation not in RELATIONSHIPS:
        raise HealthError(
            "invalid_relationship", f"Relationship: one of {', '.join(RELATIONSHIPS)}."
        )
    return {"name": name, "birth_date": born.isoformat(), "relationship": relation}


async def dependents_of(ctx, guardian: str) -> list[dict[str, Any]]:
    found = [i["value"] for i in await find_all(ctx, DEPENDENTS, {"guardian": guardian})]
    return sorted(found, key=lambda d: (d.get("created_at", 0), d["id"]))


async def dependent_of(ctx, guardian: str, dependent_id: str) -> dict[str, Any] | None:
    """The dependent ``dependent_id`` if ``guardian`` keeps it, else None (for booking)."""
    if not isinstance(dependent_id, str) or not DEPENDENT_ID_RE.match(dependent_id):
        return None
    doc = await ctx.storage_get(DEPENDENTS, dependent_id)
    return doc if isinstance(doc, dict) and doc.get("guardian") == guardian else None


async def do_add_dependent(ctx, guardian: str, fields: dict[str, Any]) -> dict[str, Any]:
    existing = await dependents_of(ctx, guardian)
    if len(existing) >= DEPENDENTS_MAX:
        raise HealthError("too_many_dependents", f"At most {DEPENDENTS_MAX} dependents.")
    for other in existing:
        same = other["name"].lower() == fields["name"].lower()
        if same and other["birth_date"] == fields["birth_date"]:
            raise HealthError("duplicate_dependent", f"{fields['name']} is already listed.")
    doc = {
        "id": f"dp-{records.token()}",
        "guardian": guardian,
        **fields,
        "created_at": clock.now_ms(),
    }
    await ctx.storage_put(DEPENDENTS, doc["id"], doc)
    return doc


async def find_dependent(ctx, guardian: str, ref: str) -> dict[str, Any]:
    ref = " ".join(str(ref or "").split())
    found = [
        d
        for d in await dependents_of(ctx, guardian)
        if d["id"] == ref or d["name"].lower() == ref.lower()
    ]
    if len(found) != 1:
        what = "Several dependents have that name: use the id." if found else "No such dependent."
        raise HealthError("unknown_dependent", what)
    return found[0]


def today_in(ctx) -> date:
    return datetime.fromtimestamp(clock.now_ms() / 1000, records.zone_of(ctx.time_zone)).date()


async def dependent_command(ctx, args: list[str]) -> Reply:
    """``/health dependent add <name> <YYYY-MM-DD> <relationship>`` · list · remove."""
    sub = args[0].lower() if args else "list"
    if sub == "add":
        if len(args) < 4:
            raise HealthError("usage", DEPENDENT_USAGE)
        fields = check_dependent(" ".join(args[1:-2]), args[-2], args[-1], today_in(ctx))
        doc = await do_add_dependent(ctx, ctx.user_id, fields)
        return private(f"Added {doc['name']} ({doc['relationship']}, born {doc['birth_date']}).")
    if sub == "remove":
        if len(args) < 2:
            raise HealthError("usage", DEPENDENT_USAGE)
        doc = await find_dependent(ctx, ctx.user_id, " ".join(args[1:]))
        await ctx.storage_delete(DEPENDENTS, doc["id"])
        return private(f"Removed {doc['name']}.")
    if sub != "list" or len(args) > 1:
        raise HealthError("usage", DEPENDENT_USAGE)
    found = await dependents_of(ctx, ctx.user_id)
    card = Card("Your dependents", text="" if found else "None yet. " + DEPENDENT_USAGE)
    for doc in found:
        card.fields.append(Field(doc["name"], f"{doc['relationship']}, born {doc['birth_date']}"))
    return private(card)


# --- /health circle -----------------------------------------------------------------------


def scopes_text(scopes: list[str]) -> str:
    return ", ".join(scopes) or "nothing"


async def circle_command(ctx, args: list[str]) -> Reply:
    sub = args[0].lower() if args else ""
    rest = args[1:]
    owner = ctx.user_id
    if sub == "invite":
        return await invite_command(ctx, rest)
    if sub == "share":
        if len(rest) < 2:
            raise HealthError("usage", USAGE)
        ref, words = split_member_scopes(rest)
        member = await do_grant(ctx, owner, ref, parse_scopes(words))
        return private(f"{member['member_name']} now sees: {scopes_text(member['scopes'])}.")
    if sub == "revoke":
        if not rest:
            raise HealthError("usage", USAGE)
        ref, words = split_member_scopes(rest)
        scopes = parse_scopes(words) if words else None
        member = await do_revoke(ctx, owner, ref, scopes)
        if member is None:
            return private(f"{ref[:40]} is no longer in your care circle.")
        return private(f"{member['member_name']} now sees: {scopes_text(member['scopes'])}.")
    if sub == "log":
        entries = await access_log(ctx, owner, LOG_SHOWN)
        card = Card("Who read your records", text="" if entries else "Nobody yet.")
        for entry in entries:
            card.fields.append(
                Field(records.when(ctx, entry["at"]), f"{entry['reader_name']}: {entry['what']}")
            )
        return private(card)
    if sub == "shared":
        shared = await sharing_with(ctx, owner)
        card = Card("Shared with you", text="" if shared else "Nobody shares records with you.")
        for doc in shared[:20]:
            card.fields.append(Field(doc["owner_name"], scopes_text(doc["scopes"])))
        card.buttons.append(Button.webview("Open care circle", path="#circle"))
        return private(card)
    if sub:
        raise HealthError("usage", USAGE)
    members = await members_of(ctx, owner)
    card = Card(
        "Your care circle",
        text="" if members else "Nobody yet: /health circle invite <scopes> in a chat with them.",
    )
    for doc in members[:20]:
        card.fields.append(Field(doc["member_name"], scopes_text(doc["scopes"])))
    card.buttons.append(Button.webview("Open care circle", path="#circle"))
    return private(card)


# --- views --------------------------------------------------------------------------------


@view
async def view_list(ctx) -> dict:
    return {
        "scopes": list(SCOPES),
        "relationships": list(RELATIONSHIPS),
        "members": [public_member(m) for m in await members_of(ctx, ctx.user_id)],
        "shared_with_me": [public_member(m) for m in await sharing_with(ctx, ctx.user_id)],
        "dependents": await dependents_of(ctx, ctx.user_id),
    }


@view
async def view_grant(ctx) -> dict:
    scopes = parse_scopes(ctx.params.get("scopes"))
    return {"member": await do_grant(ctx, ctx.user_id, str(ctx.params.get("member") or ""), scopes)}


@view
async def view_revoke(ctx) -> dict:
    raw = ctx.params.get("scopes")
    scopes = None if raw is None else parse_scopes(raw)
    member = await do_revoke(ctx, ctx.user_id, str(ctx.params.get("member") or ""), scopes)
    return {"member": member, "removed": member is None}


@view
async def view_log(ctx) -> dict:
    limit = ctx.params.get("limit", 50)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 200:
        raise HealthError("invalid_limit", "limit is 1-200.")
    return {"entries": await access_log(ctx, ctx.user_id, limit)}


@view
async def view_records(ctx) -> dict:
    what = ctx.params.get("what")
    owner = str(ctx.params.get("owner") or "")
    return await read_records(ctx, owner, ctx.user_id, None if what is None else str(what))


@view
async def view_dependents(ctx) -> dict:
    return {"dependents": await dependents_of(ctx, ctx.user_id)}


@view
async def view_dependent_add(ctx) -> dict:
    params = ctx.params
    fields = check_dependent(
        params.get("name"), params.get("birth_date"), params.get("relationship"), today_in(ctx)
    )
    return {"dependent": await do_add_dependent(ctx, ctx.user_id, fields)}


@view
async def view_dependent_remove(ctx) -> dict:
    dependent_id = str(ctx.params.get("dependent_id") or "")
    doc = await dependent_of(ctx, ctx.user_id, dependent_id)
    if doc is None:
        raise HealthError("unknown_dependent", "No such dependent.")
    await ctx.storage_delete(DEPENDENTS, dependent_id)
    return {"removed": dependent_id}


SUBCOMMANDS = {
    "circle": command(circle_command),
    "dependent": command(dependent_command),
    "dependents": command(dependent_command),
}
ACTIONS = {"circle.accept": on_accept}
VIEWS = {
    "circle.list": view_list,
    "circle.grant": view_grant,
    "circle.revoke": view_revoke,
    "circle.log": view_log,
    "circle.records": view_records,
    "dependents.list": view_dependents,
    "dependent.add": view_dependent_add,
    "dependent.remove": view_dependent_remove,
}
