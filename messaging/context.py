"""What messaging actions need, built once per app and passed explicitly (no globals)."""

from __future__ import annotations

from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase

from messaging.events import EventSink
from messaging.passwords import Passwords
from messaging.store.blocks import Blocks
from messaging.store.contacts import Contacts
from messaging.store.refresh_tokens import RefreshTokens
from messaging.store.sessions import Sessions
from messaging.store.users import Users
from messaging.tokens import TokenService
from storage.config import Config
from storage.ratelimit import RateLimiter


@dataclass
class Messaging:
    config: Config
    users: Users
    sessions: Sessions
    refresh_tokens: RefreshTokens
    contacts: Contacts
    blocks: Blocks
    passwords: Passwords
    tokens: TokenService
    limiter: RateLimiter
    events: EventSink

    @classmethod
    def build(
        cls,
        config: Config,
        db: AsyncDatabase,
        *,
        jwt_secret: str,
        limiter: RateLimiter,
        events: EventSink,
    ) -> Messaging:
        return cls(
            config=config,
            users=Users(db),
            sessions=Sessions(db),
            refresh_tokens=RefreshTokens(db),
            contacts=Contacts(db),
            blocks=Blocks(db),
            passwords=Passwords(
                memory_kib=config.password_hash_memory_kib,
                time_cost=config.password_hash_time_cost,
            ),
            tokens=TokenService(jwt_secret, config.access_token_ttl),
            limiter=limiter,
            events=events,
        )
