"""How the domains are put together, the same way in every process that runs them: the gateway
(``gateway/app.py``) and the Celery worker (``gateway/worker.py``).

The domains do not wire themselves: the messaging context is handed what to do with a committed
batch (deliver it) and the wallet its ledger hooks and, where apps are hosted, how to tell an app
about its payment. Building them here keeps ``messaging.context`` and ``wallet.context`` free of
imports of their own actions (which import them), and keeps the two processes from drifting.
"""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from messaging.actions import stats
from messaging.actions.messages import deliver_committed
from messaging.context import Messaging
from messaging.events import EventSink
from messaging.notifier import Notifier
from storage.config import Config
from storage.metrics import Metrics
from storage.presence import PresenceCounter
from storage.pubsub import PubSub
from storage.ratelimit import RateLimiter
from storage.secrets import jwt_secret
from wallet.context import NotifyApp, Wallet
from wallet.hooks import register_hooks


def build_messaging(
    config: Config,
    db: AsyncDatabase,
    *,
    limiter: RateLimiter,
    pubsub: PubSub,
    presence: PresenceCounter,
    events: EventSink,
    metrics: Metrics,
) -> Messaging:
    """The messaging context over ``db``; ``start()`` it, and close it with ``close_messaging``.
    Its events pass through the ``Notifier``, which derives the notification center's entries
    (mentions, replies, friend requests, missed calls, payment results) from them."""
    notifier = Notifier(events)
    messaging = Messaging.build(
        config,
        db,
        jwt_secret=jwt_secret(config),
        limiter=limiter,
        pubsub=pubsub,
        presence=presence,
        events=notifier,
        on_commit=deliver_committed,
        metrics=metrics,
    )
    notifier.attach(messaging)
    return messaging


async def close_messaging(messaging: Messaging) -> None:
    """Drain the writer, then write the admin chart counts gathered so far (the last commits'
    included), so a clean shutdown loses none."""
    await messaging.close()
    if isinstance(messaging.events, Notifier):
        await messaging.events.drain()
    await stats.flush_counts(messaging)


def build_wallet(
    config: Config, messaging: Messaging, *, notify_app: NotifyApp | None = None
) -> Wallet:
    """The wallet with its ledger hooks. ``notify_app``: how this process tells a mini-program
    about its payment (a gateway hosting the apps); None leaves it in the order's outbox."""
    wallet = Wallet.build(config, messaging, notify_app=notify_app)
    register_hooks(wallet)
    return wallet
