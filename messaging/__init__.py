"""People and chats: accounts, sessions, contacts, conversations, messages and their events."""
