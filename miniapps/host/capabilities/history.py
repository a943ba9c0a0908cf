"""``messages.history``: a chat's messages, for an app the chat let read them.

Privacy mode keeps an app's ears shut (``routing``: only what is addressed to it reaches it);
reading a chat's history takes the conversation's grant ``messages.read_history``, made by a
group admin (``miniapps.host.grants``). The page is what the invoking user could read
themself: nothing from before they joined, nothing recalled, hidden by an administrator or
deleted for them. People are named by their per-app ids, as everywhere an app looks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from messaging.views import MEDIA_TYPES
from sdk._capability_services import HISTORY_GRANT, HISTORY_NOT_GRANTED
from sdk.addressing import app_of_bot
from sdk.errors import InvalidParams, PermissionDenied, host_error

if TYPE_CHECKING:
    from miniapps.host.calls import Call
    from miniapps.host.host import MiniappHost


def _text(message: dict[str, Any]) -> str:
    """What a model reads of a message: its text (a card's title and text), a media message's
    caption or its kind in brackets; empty for what was taken back."""
    if message.get("recalled") or message.get("moderated"):
        return ""
    text = message.get("text") or ""
    if not text and message["type"] in MEDIA_TYPES:
        return f"[{message['type']}]"
    return text


async def history(host: MiniappHost, call: Call, params: dict) -> dict:
    ctx = host.messaging
    conversation_id, user_id = call.conversation_id, call.user_id
    if not user_id:  # what that person can see: there must be one
        raise InvalidParams("this invocation has no user")
    if not await host.grants.has_grant(conversation_id, call.app_id, HISTORY_GRANT):
        raise host_error("history_not_granted", HISTORY_NOT_GRANTED)
    membership = await ctx.membership.get(conversation_id)
    if membership is None or membership.role_of(user_id) is None:
        raise PermissionDenied("the invoking user is not a member of this chat")
    floor = membership.joined_seq.get(user_id, 0)
    if params["since_read"]:
        member = await ctx.members.get_member(conversation_id, user_id)
        floor = max(floor, (member or {}).get("last_read_seq", 0))
    if params.get("after") is not None:  # never below what they joined at: only the range
        floor = max(floor, params["after"])
    limit = params["limit"]
    page = await ctx.messages.get_page(
        conversation_id,
        after=floor,
        before=params.get("before"),
        limit=limit + 1,
        newest_first=True,
    )
    has_more = len(page) > limit
    page = list(reversed(page[:limit]))
    if not page:
        return {"messages": [], "from_seq": None, "to_seq": None, "has_more": False}
    hidden = await ctx.hidden.get_hidden_seqs(
        user_id, conversation_id, page[0]["seq"], page[-1]["seq"]
    )
    shown = [m for m in page if m["seq"] not in hidden and _text(m)]
    people = [m["sender_id"] for m in shown if app_of_bot(m["sender_id"]) is None]
    names = {
        u["_id"]: u.get("display_name") or u["username"]
        for u in await ctx.users.get_users(list(set(people)))
    }
    rows = []
    for message in shown:
        sender_id = message["sender_id"]
        bot = app_of_bot(sender_id)
        if bot is not None:
            entry = host.apps_catalogue.apps.get(bot)
            sender, name = sender_id, entry.manifest["name"] if entry else bot
        else:
            sender = host.identity.app_user_id(call.app_id, sender_id)
            name = names.get(sender_id, "someone")
        rows.append(
            {
                "id": message["_id"],
                "text": _text(message),
                "sender": sender,
                "sender_name": name,
                "at": message["created_at"],
            }
        )
    return {
        "messages": rows,
        "from_seq": page[0]["seq"],
        "to_seq": page[-1]["seq"],
        "has_more": has_more,
    }


EFFECTS = {"messages.history": history}
