"""One module per collection; ``INDEXES`` maps each collection to the indexes declared beside it."""

from messaging.store import refresh_tokens, sessions, users

INDEXES = {
    users.COLLECTION: users.INDEXES,
    sessions.COLLECTION: sessions.INDEXES,
    refresh_tokens.COLLECTION: refresh_tokens.INDEXES,
}
