"""What messaging actions need, built once per app and passed explicitly (no globals)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from messaging.events import EventSink
from messaging.membership import Membership, MembershipCache
from messaging.passwords import Passwords
from messaging.store.admin_audit import AdminAudit
from messaging.store.blocks import Blocks
from messaging.store.contacts import Contacts
from messaging.store.conversations import Conversations
from messaging.store.daily_active import DailyActive
from messaging.store.daily_stats import DailyStats
from messaging.store.direct_pairs import DirectPairs
from messaging.store.email_tokens import EmailTokens
from messaging.store.exports import Exports
from messaging.store.hidden_messages import HiddenMessages
from messaging.store.mail_outbox import MailOutbox
from messaging.store.media import MediaStore
from messaging.store.media_refs import MediaRefs
from messaging.store.members import Members
from messaging.store.message_reports import MessageReports
from messaging.store.messages import Messages
from messaging.store.mfa_factors import MfaFactors
from messaging.store.mfa_recovery_codes import MfaRecoveryCodes
from messaging.store.notifications import Notifications
from messaging.store.push_outbox import PushOutbox
from messaging.store.push_subscriptions import PushSubscriptions
from messaging.store.reactions import Reactions
from messaging.store.refresh_tokens import RefreshTokens
from messaging.store.sessions import Sessions
from messaging.store.users import Users
from messaging.tokens import TokenService
from messaging.writer import MessageWriter
from storage.blobs import BlobStore, UrlSigner, make_blob_store
from storage.config import Config
from storage.metrics import Metrics
from storage.presence import PresenceCounter
from storage.pubsub import PubSub
from storage.ratelimit import RateLimiter

MEMBERSHIP_CHANNEL = "membership"

# What happens to a commit batch once it is durable (deliver it to members' devices): given by
# whoever builds the context, so this module needs none of the actions that use it.
OnCommit = Callable[["Messaging", str, list[dict[str, Any]], Membership], Awaitable[None]]


@dataclass
class Messaging:
    config: Config
    users: Users
    sessions: Sessions
    refresh_tokens: RefreshTokens
    contacts: Contacts
    blocks: Blocks
    conversations: Conversations
    members: Members
    messages: Messages
    reactions: Reactions
    hidden: HiddenMessages
    direct_pairs: DirectPairs
    membership: MembershipCache
    passwords: Passwords
    tokens: TokenService
    limiter: RateLimiter
    pubsub: PubSub
    presence: PresenceCounter
    events: EventSink
    reports: MessageReports
    admin_audit: AdminAudit
    daily_stats: DailyStats
    daily_active: DailyActive
    notifications: Notifications = field(init=False)
    push_subscriptions: PushSubscriptions = field(init=False)
    push_outbox: PushOutbox = field(init=False)
    # Prometheus metrics of this process (storage/metrics.py), given by the composition root.
    metrics: Metrics = field(init=False)
    # Mail to send, and the tokens of mailed links (messaging/actions/mail.py, email.py).
    mail_outbox: MailOutbox = field(init=False)
    email_tokens: EmailTokens = field(init=False)
    # Two-factor sign-in (actions/mfa.py): authenticators and hashed recovery codes.
    mfa_factors: MfaFactors = field(init=False)
    mfa_recovery_codes: MfaRecoveryCodes = field(init=False)
    # The database, for collections other domains keep beside ours (the mini-program host's).
    db: AsyncDatabase = field(repr=False)
    writer: MessageWriter = field(init=False)
    # Media (photos, files, voice notes): documents, where each was shared, the bytes, and the
    # signer of their short-lived URLs (its key is loaded in ``start``).
    media: MediaStore = field(init=False)
    media_refs: MediaRefs = field(init=False)
    blobs: BlobStore = field(init=False, repr=False)
    media_urls: UrlSigner = field(init=False, repr=False)
    # Awaited with each stored notification (its NOTIF view plus ``user_id``) once it is
    # durable, e.g. Web Push; a failing hook is logged and never fails the action.
    notification_hooks: list[Callable[[dict[str, Any]], Awaitable[None]]] = field(
        default_factory=list
    )
    # Leaving with your data (issue 21): exports of a person's data, and what the other domains
    # (wallet, mini-program host) add, registered where they are composed — messaging imports
    # none of them. ``export_sections(user)`` give {path in the ZIP: bytes};
    # ``deletion_checks(user)`` raise AppError to refuse a deletion (money left);
    # ``deletion_hooks(user)`` forget what that domain keeps about the person (idempotent).
    exports: Exports = field(init=False)
    export_sections: list[Callable[[dict[str, Any]], Awaitable[dict[str, bytes]]]] = field(
        default_factory=list
    )
    deletion_checks: list[Callable[[dict[str, Any]], Awaitable[None]]] = field(default_factory=list)
    deletion_hooks: list[Callable[[dict[str, Any]], Awaitable[None]]] = field(default_factory=list)
    # Web Push in a process that sends pushes (messaging.webpush.WebPush; None: push is off).
    web_push: Any = None
    # Mail in a process that sends it (storage.mail.MailQueue; None: rows wait for a tick).
    mail: Any = None
    # Ephemeral per-node state (typing throttles): losing it on restart is harmless.
    typing_sent: dict[tuple[str, str], float] = field(default_factory=dict)
    # (day, user id) pairs this node already recorded as active (see actions/stats.py).
    active_seen: set[tuple[str, str]] = field(default_factory=set)
    # Message counts for the admin charts, written off the delivery path (messaging.actions.stats).
    messages_to_count: dict[str, int] = field(default_factory=dict)
    senders_to_count: set[str] = field(default_factory=set)
    stats_flush: asyncio.Task | None = None

    @classmethod
    def build(
        cls,
        config: Config,
        db: AsyncDatabase,
        *,
        jwt_secret: str,
        limiter: RateLimiter,
        pubsub: PubSub,
        presence: PresenceCounter,
        events: EventSink,
        on_commit: OnCommit,
        metrics: Metrics,
    ) -> Messaging:
        conversations, members = Conversations(db), Members(db)
        ctx = cls(
            config=config,
            users=Users(db),
            sessions=Sessions(db),
            refresh_tokens=RefreshTokens(db),
            contacts=Contacts(db),
            blocks=Blocks(db),
            conversations=conversations,
            members=members,
            messages=Messages(db),
            reactions=Reactions(db),
            hidden=HiddenMessages(db),
            direct_pairs=DirectPairs(db),
            # Invalidations come over pub/sub: while it is down, entries expire in a second.
            membership=MembershipCache(
                conversations, members, invalidations_live=lambda: pubsub.connected
            ),
            passwords=Passwords(
                memory_kib=config.password_hash_memory_kib,
                time_cost=config.password_hash_time_cost,
            ),
            tokens=TokenService(jwt_secret, config.access_token_ttl),
            limiter=limiter,
            pubsub=pubsub,
            presence=presence,
            events=events,
            reports=MessageReports(db),
            admin_audit=AdminAudit(db),
            daily_stats=DailyStats(db),
            daily_active=DailyActive(db),
            db=db,
        )

        async def committed(conversation_id: str, messages: list, membership: Membership) -> None:
            await on_commit(ctx, conversation_id, messages, membership)

        ctx.notifications = Notifications(db)
        ctx.push_subscriptions, ctx.push_outbox = PushSubscriptions(db), PushOutbox(db)
        ctx.mail_outbox, ctx.email_tokens = MailOutbox(db), EmailTokens(db)
        ctx.mfa_factors, ctx.mfa_recovery_codes = MfaFactors(db), MfaRecoveryCodes(db)
        ctx.media, ctx.media_refs = MediaStore(db), MediaRefs(db)
        ctx.exports = Exports(db)
        ctx.blobs = make_blob_store(config, db)
        ctx.media_urls = UrlSigner(db, config.media_url_ttl)
        ctx.writer = MessageWriter(ctx.messages, conversations, members, ctx.membership, committed)
        ctx.metrics = ctx.writer.metrics = metrics
        return ctx

    async def start(self) -> None:
        await self.media_urls.load()
        self.pubsub.on_reconnect(self._on_pubsub_reconnect)
        await self.pubsub.subscribe(MEMBERSHIP_CHANNEL, self._on_membership_message)

    async def close(self) -> None:
        """Drain the writer and stop the pending stats write; the counts it had gathered stay
        in ``messages_to_count`` for the owner to write (``messaging.actions.stats``)."""
        await self.writer.close()
        if self.stats_flush is not None:
            self.stats_flush.cancel()
            await asyncio.gather(self.stats_flush, return_exceptions=True)

    async def membership_changed(self, conversation_id: str) -> None:
        """Drop every node's cached member list of the conversation."""
        self.membership.invalidate(conversation_id)
        await self.pubsub.publish(MEMBERSHIP_CHANNEL, {"conversation_id": conversation_id})

    async def _on_membership_message(self, message: dict[str, Any]) -> None:
        self.membership.invalidate(message["conversation_id"])

    async def _on_pubsub_reconnect(self) -> None:
        # Invalidations published while the subscriber was away are lost: trust no entry.
        self.membership.invalidate_all()
