"""One module per collection; ``INDEXES`` maps each collection to the indexes declared beside it."""

from messaging.store import blocks, contacts, refresh_tokens, sessions, users

INDEXES = {
    users.COLLECTION: users.INDEXES,
    sessions.COLLECTION: sessions.INDEXES,
    refresh_tokens.COLLECTION: refresh_tokens.INDEXES,
    contacts.COLLECTION: contacts.INDEXES,
    blocks.COLLECTION: blocks.INDEXES,
}
