"""System messages: membership and settings changes, posted through the same ordered path as text.

They carry structured ``system`` data for clients ({event, actor_id, user_ids?, title?}) and a
plain-language ``text`` fallback.
"""

from __future__ import annotations

from typing import Any

from messaging.context import Messaging
from storage.mongo import new_id

_TEMPLATES = {
    "group_created": "{actor} created the group “{title}”",
    "members_added": "{actor} added {users}",
    "member_removed": "{actor} removed {users}",
    "member_left": "{actor} left",
    "renamed": "{actor} renamed the group to “{title}”",
    "role_changed": "{actor} made {users} {role}",
    "owner_changed": "{actor} made {users} the owner",
    # An app granted the chat's history (miniapps.host.grants): {title} is the app's name.
    "app_history_granted": "{actor} let {title} read this chat's history",
    "app_history_revoked": "{actor} stopped {title} from reading this chat's history",
}


async def post_system(
    ctx: Messaging, conversation_id: str, actor_id: str, kind: str, **data: Any
) -> dict[str, Any]:
    user_ids = data.get("user_ids", [])
    names = {
        u["_id"]: u.get("display_name") or u["username"]
        for u in await ctx.users.get_users([actor_id, *user_ids])
    }
    text = _TEMPLATES[kind].format(
        actor=names.get(actor_id, "someone"),
        users=", ".join(names.get(u, "someone") for u in user_ids) or "nobody",
        title=data.get("title", ""),
        role=data.get("role", ""),
    )
    message, _ = await ctx.writer.submit(
        {
            "_id": new_id(),
            "conversation_id": conversation_id,
            "sender_id": actor_id,
            "client_msg_id": f"system:{new_id()}",
            "type": "system",
            "text": text,
            "system": {"event": kind, "actor_id": actor_id, **data},
        }
    )
    return message
