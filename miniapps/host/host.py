"""The mini-program host, composed of its parts (each in a module of its own):

- ``apps_catalogue``: the apps on this server, which an admin switched off, which are active where;
- ``identity``: per-app user ids, app secrets, per-app uids;
- ``installs``: which apps a conversation has (``do_install`` / ``do_uninstall``);
- ``consent``: users' answers per scope, asked when a capability needs one;
- ``invoker``: processes and remote transports, the per-app gate, replies and failures;
- ``router``: slash commands and card presses (on posted cards and on ephemeral ones), and the
  messages addressed to an app (privacy mode: ``route_message``);
- ``grants``: what a conversation let an app read (``messages.read_history``), by its admins;
- ``capabilities``: the effects of each capability (the contract itself is ``sdk.capabilities``);
- ``remote``: remote apps (registration, signed callbacks) and web-view launch tokens.
- ``webhooks``: the key and public address of the apps' inbound webhook URLs
  (``capabilities.webhooks``: ``webhooks.url`` and the deliveries).
- ``ai``: the platform's model for every app (``ai.chat``): budgets, background answers
  streamed into chat messages, ``ai.completed`` events.
- ``streams``: streaming messages (``messages.stream_*``, the ``ai`` runner's answers), their
  buffered, throttled writes and their stop.

``MiniappHost`` only wires them and offers the calls the gateway makes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from messaging.calls.service import CallService
from messaging.context import Messaging
from miniapps.host import capabilities
from miniapps.host.ai.service import Ai
from miniapps.host.calls import CallRegistry
from miniapps.host.capabilities.webhooks import WebhookUrls
from miniapps.host.catalogue import Catalogue
from miniapps.host.consent import ConsentDesk
from miniapps.host.fetch import Resolver
from miniapps.host.grants import GrantDesk
from miniapps.host.identity import Identity
from miniapps.host.installs import InstallDesk
from miniapps.host.invoker import Invoker
from miniapps.host.registry import AppEntry
from miniapps.host.remote import Remote
from miniapps.host.routing import Router
from miniapps.host.sandbox import SandboxConfig
from miniapps.host.store.app_calls import AppCalls
from miniapps.host.store.app_storage import AppStorage
from miniapps.host.store.app_uids import AppUids
from miniapps.host.store.app_users import AppUsers
from miniapps.host.store.audit import Audit
from miniapps.host.store.consents import Consents
from miniapps.host.store.conversation_grants import ConversationGrants
from miniapps.host.store.disabled_apps import DisabledApps
from miniapps.host.store.ephemeral_cards import EphemeralCards
from miniapps.host.store.group_state import GroupState
from miniapps.host.store.installs import Installs
from miniapps.host.streams import Streams
from wallet.context import Wallet

log = logging.getLogger(__name__)


class MiniappHost:
    def __init__(
        self,
        messaging: Messaging,
        apps: dict[str, AppEntry],
        *,
        data_dir: Path,
        sandbox: SandboxConfig,
        id_key: bytes,
        wallet: Wallet | None = None,
        public_url: str = "",
    ) -> None:
        db = messaging.db
        self.messaging = messaging
        self.audit = Audit(db)
        self.group_state = GroupState(db)
        self.storage = AppStorage(db)
        self.consents = Consents(db)
        self.apps_catalogue = Catalogue(apps, DisabledApps(db), Installs(db))
        self.identity = Identity(id_key, AppUsers(db), AppUids(db), uid_base=sandbox.uid_base)
        self.calls = CallRegistry(AppCalls(db))
        self.installs = InstallDesk(messaging, self.apps_catalogue)
        self.consent = ConsentDesk(messaging, self.apps_catalogue, self.consents)
        self.resolver = Resolver()
        self.remote = Remote(
            messaging, self.apps_catalogue, self.installs, self.identity, self.serve
        )
        self.invoker = Invoker(
            messaging,
            self.apps_catalogue,
            self.identity,
            self.calls,
            data_dir=data_dir,
            sandbox=sandbox,
            serve=self.serve,
            remote_transport=self.remote.client,
        )
        # Ephemeral cards with buttons, kept an hour for their presses (messages.reply_ephemeral).
        self.ephemeral_cards = EphemeralCards(db)
        self.router = Router(messaging, self.installs, self.invoker, self.ephemeral_cards)
        # What a conversation let an app read beyond what is addressed to it (its admins grant
        # ``messages.read_history`` for ``messages.history``).
        self.grants = GrantDesk(messaging, self.apps_catalogue, ConversationGrants(db))
        # The wallet, when money is on this server: ``payments.*`` capabilities need it.
        self.wallet = wallet
        # The call service, set by the composition root (gateway/app.py calls_ctx): calls.start.
        self.call_service: CallService | None = None
        # Inbound webhooks (webhooks.url): the key signing their URLs, and the platform's public
        # address (PUBLIC_URL) they start with; empty: the URLs are paths only.
        self.webhooks = WebhookUrls(db, public_url)
        # Streaming messages (messages.stream_*, and the ai runner's answers): buffered appends,
        # throttled writes, the stop; open streams left idle are stopped by a sweep.
        self.streams = Streams(messaging)
        # The platform's model (ai.chat): settings, budgets, the runner of background answers.
        self.ai = Ai(self, messaging.config)

    async def serve(self, app_id: str, method: str, params: dict) -> Any:
        """Answer one capability call of an app (from its sandbox or its remote server)."""
        return await capabilities.handle(self, app_id, method, params)

    async def close(self) -> None:
        await self.ai.close()  # first: running answers end and their apps are told
        await self.streams.close()
        await self.invoker.close()
        await self.remote.close()
        self.resolver.close()

    # --- what the gateway asks ------------------------------------------------------------

    @property
    def apps(self) -> dict[str, AppEntry]:
        return self.apps_catalogue.apps

    @property
    def degraded(self) -> bool:
        return self.invoker.sandbox.degraded

    def catalogue(self) -> list[dict]:
        return self.apps_catalogue.views("degraded" if self.degraded else "isolated")

    def status(self) -> dict[str, dict]:
        return self.invoker.status()

    async def load(self) -> None:
        """Start-up: registered remote apps join the catalogue; admins' switches are loaded."""
        await self.remote.load()
        await self.apps_catalogue.load_disabled(self.messaging.pubsub)
        await self.streams.start()

    async def set_enabled(self, app_id: str, enabled: bool, by: str, reason: str) -> bool:
        return await self.apps_catalogue.set_enabled(app_id, enabled, by, reason)

    async def route_command(
        self,
        user_id: str,
        conversation_id: str,
        text: str,
        reply_to: dict | None = None,
        catch_up_from: int | None = None,
    ) -> str | None:
        return await self.router.route_command(
            user_id, conversation_id, text, reply_to, catch_up_from
        )

    async def do_action(
        self, user_id: str, conversation_id: str, message_id: str, action_id: str, value
    ) -> str:
        return await self.router.do_action(user_id, conversation_id, message_id, action_id, value)

    async def service_app(self, conversation_id: str) -> str | None:
        """The app whose service chat this is, when it takes its person's messages."""
        return await self.router.service_app(conversation_id)

    def route_message(self, user_id: str, message: dict, app_mentions: list[str]) -> None:
        """Hand a message just sent to the apps it is addressed to (privacy mode), in the
        background: the sender's ack never waits for it."""
        self.invoker.spawn(self._route_message(user_id, message, app_mentions))

    async def _route_message(self, user_id: str, message: dict, app_mentions: list[str]) -> None:
        try:
            await self.router.route_message(
                user_id, message, app_mentions, self.remote.launch_secret
            )
        except Exception:  # a message is sent whatever becomes of its routing
            log.exception("routing message %s to apps failed", message.get("id"))

    async def do_consent(self, user_id: str, app_id: str, scope: str, granted: bool) -> None:
        await self.consent.do_consent(user_id, app_id, scope, granted)

    async def do_install(self, user_id: str, conversation_id: str, app_id: str) -> dict:
        return await self.installs.do_install(user_id, conversation_id, app_id)

    async def do_uninstall(self, user_id: str, conversation_id: str, app_id: str) -> None:
        await self.installs.do_uninstall(user_id, conversation_id, app_id)

    async def get_installed(self, user_id: str, conversation_id: str) -> list[dict]:
        return await self.installs.get_installed(user_id, conversation_id)
