"""Friends, friend requests, blocks and user search."""

from __future__ import annotations

from gateway.api import Api

api = Api("contacts", "Friends, friend requests, blocks and user search")
