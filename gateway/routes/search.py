"""REST routes: Search: messages, people, conversations and apps."""

from __future__ import annotations

from gateway.api import Api

api = Api("search", "Search: messages, people, conversations and apps")
