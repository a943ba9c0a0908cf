"""One module per collection; ``INDEXES`` maps each collection to the indexes declared beside it."""

from messaging.store import (
    active_calls,
    blocks,
    call_participants,
    calls,
    contacts,
    conversations,
    direct_pairs,
    hidden_messages,
    members,
    messages,
    reactions,
    refresh_tokens,
    sessions,
    users,
)

INDEXES = {
    users.COLLECTION: users.INDEXES,
    sessions.COLLECTION: sessions.INDEXES,
    refresh_tokens.COLLECTION: refresh_tokens.INDEXES,
    contacts.COLLECTION: contacts.INDEXES,
    blocks.COLLECTION: blocks.INDEXES,
    conversations.COLLECTION: conversations.INDEXES,
    members.COLLECTION: members.INDEXES,
    messages.COLLECTION: messages.INDEXES,
    reactions.COLLECTION: reactions.INDEXES,
    hidden_messages.COLLECTION: hidden_messages.INDEXES,
    direct_pairs.COLLECTION: direct_pairs.INDEXES,
    calls.COLLECTION: calls.INDEXES,
    active_calls.COLLECTION: active_calls.INDEXES,
    call_participants.COLLECTION: call_participants.INDEXES,
}
