"""Group membership: add, remove, leave, roles, ownership. Each change is a system message.

Order matters for who hears what: a removal is announced *before* the member goes (so they see
it), an addition *after* the members are in (so they see it too).
"""

from __future__ import annotations

from messaging.actions.conversations import (
    check_member,
    check_not_blocked,
    check_users_exist,
    new_member,
)
from messaging.actions.system import post_system
from messaging.context import Messaging
from messaging.events import event
from messaging.membership import Membership
from storage.errors import AppError
from storage.mongo import now_ms

RANK = {"owner": 0, "admin": 1, "member": 2}


async def _check_group_admin(ctx: Messaging, conversation_id: str, user_id: str) -> Membership:
    membership = await check_member(ctx, conversation_id, user_id)
    if membership.type != "group":
        raise AppError("not_a_group", "direct chats have exactly two members")
    if not membership.is_admin(user_id):
        raise AppError("not_allowed", "only the owner and admins can do this", status=403)
    return membership


async def do_add_members(
    ctx: Messaging, user_id: str, conversation_id: str, user_ids: list[str]
) -> list[str]:
    membership = await _check_group_admin(ctx, conversation_id, user_id)
    new_ids = [u for u in dict.fromkeys(user_ids) if membership.role_of(u) is None]
    if not new_ids:
        return []
    await check_users_exist(ctx, new_ids)
    await check_not_blocked(ctx, user_id, new_ids)
    limit = ctx.config.group_max_members
    # Reserve the places first with a conditional $inc, so concurrent adds cannot overfill.
    reserved = await ctx.conversations.reserve_places(conversation_id, len(new_ids), limit)
    if reserved is None:
        raise AppError(
            "group_full",
            f"a group has at most {limit} members",
            status=409,
            details={"limit": limit},
        )
    now = now_ms()
    added = await ctx.members.add_members(
        [new_member(conversation_id, u, "member", reserved["last_seq"], now) for u in new_ids]
    )
    conversation = await ctx.conversations.update_conversation(
        conversation_id, {}, member_delta=len(added) - len(new_ids), membership_changed=True
    )
    await ctx.membership_changed(conversation_id)
    if added:
        from messaging.actions.conversations import announce_new

        await announce_new(ctx, conversation, added)
        await post_system(ctx, conversation_id, user_id, "members_added", user_ids=added)
    return added


async def _remove(ctx: Messaging, conversation_id: str, user_id: str, reason: str) -> None:
    if await ctx.members.remove_member(conversation_id, user_id):
        await ctx.conversations.update_conversation(
            conversation_id, {}, member_delta=-1, membership_changed=True
        )
    await ctx.membership_changed(conversation_id)
    await ctx.events.emit(
        event(
            "conversation.removed",
            {"user": user_id},
            {"conversation_id": conversation_id, "reason": reason},
        )
    )


async def do_remove_member(
    ctx: Messaging, user_id: str, conversation_id: str, target_id: str
) -> None:
    """An admin removes someone of lower rank; removing yourself is leaving."""
    if target_id == user_id:
        await do_leave(ctx, user_id, conversation_id)
        return
    membership = await _check_group_admin(ctx, conversation_id, user_id)
    target_role = membership.role_of(target_id)
    if target_role is None:
        raise AppError("member_not_found", "that user is not in this group", status=404)
    if RANK[target_role] <= RANK[membership.role_of(user_id)]:
        raise AppError("not_allowed", "you can only remove members of lower rank", status=403)
    await post_system(ctx, conversation_id, user_id, "member_removed", user_ids=[target_id])
    await _remove(ctx, conversation_id, target_id, "removed")


async def do_leave(ctx: Messaging, user_id: str, conversation_id: str) -> None:
    membership = await check_member(ctx, conversation_id, user_id)
    if membership.type != "group":
        raise AppError("cannot_leave_direct", "you cannot leave a direct chat")
    if membership.role_of(user_id) == "owner":
        # Hand the group to the longest-standing admin, else the longest-standing member.
        members = [
            m for m in await ctx.members.get_members(conversation_id) if m["user_id"] != user_id
        ]
        if members:
            heir = min(members, key=lambda m: (RANK[m["role"]], m["joined_at"]))
            await _set_role(ctx, conversation_id, heir["user_id"], "owner")
            await post_system(
                ctx, conversation_id, user_id, "owner_changed", user_ids=[heir["user_id"]]
            )
    await post_system(ctx, conversation_id, user_id, "member_left")
    await _remove(ctx, conversation_id, user_id, "left")


async def _set_role(ctx: Messaging, conversation_id: str, user_id: str, role: str) -> None:
    await ctx.members.set_role(conversation_id, user_id, role)
    await ctx.conversations.update_conversation(conversation_id, {}, membership_changed=True)
    await ctx.membership_changed(conversation_id)


async def do_set_role(
    ctx: Messaging, user_id: str, conversation_id: str, target_id: str, role: str
) -> None:
    membership = await _check_group_admin(ctx, conversation_id, user_id)
    if membership.role_of(user_id) != "owner":
        raise AppError("not_allowed", "only the owner changes roles", status=403)
    if role not in {"admin", "member"}:
        raise AppError(
            "invalid_field",
            "role must be admin or member (use transfer for owner)",
            details={"field": "role"},
        )
    current = membership.role_of(target_id)
    if current is None:
        raise AppError("member_not_found", "that user is not in this group", status=404)
    if current == "owner":
        raise AppError("not_allowed", "transfer ownership instead", status=403)
    if current == role:
        return
    await _set_role(ctx, conversation_id, target_id, role)
    await post_system(
        ctx, conversation_id, user_id, "role_changed", user_ids=[target_id], role=role
    )


async def do_transfer_ownership(
    ctx: Messaging, user_id: str, conversation_id: str, target_id: str
) -> None:
    membership = await _check_group_admin(ctx, conversation_id, user_id)
    if membership.role_of(user_id) != "owner":
        raise AppError("not_allowed", "only the owner can transfer ownership", status=403)
    if target_id == user_id:
        return
    if membership.role_of(target_id) is None:
        raise AppError("member_not_found", "that user is not in this group", status=404)
    await _set_role(ctx, conversation_id, target_id, "owner")
    await _set_role(ctx, conversation_id, user_id, "admin")
    await post_system(ctx, conversation_id, user_id, "owner_changed", user_ids=[target_id])
