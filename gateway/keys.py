"""Everything the app holds, as typed ``web.AppKey`` constants (no module globals)."""

from __future__ import annotations

import socketio
from aiohttp import web

from gateway.api import Api
from messaging.calls.service import CallService
from messaging.context import Messaging
from miniapps.host.host import MiniappHost
from miniapps.host.sandbox import SandboxConfig
from storage.config import Config
from storage.metrics import Metrics
from storage.mongo import Database
from storage.presence import PresenceCounter
from storage.pubsub import PubSub
from storage.ratelimit import RateLimiter
from wallet.context import Wallet

CONFIG = web.AppKey("config", Config)
DATABASE = web.AppKey("database", Database)
PUBSUB = web.AppKey("pubsub", PubSub)
LIMITER = web.AppKey("limiter", RateLimiter)
PRESENCE = web.AppKey("presence", PresenceCounter)
SIO = web.AppKey("sio", socketio.AsyncServer)
MESSAGING = web.AppKey("messaging", Messaging)
SANDBOX = web.AppKey("sandbox", SandboxConfig)
MINIAPPS = web.AppKey("miniapps", MiniappHost)
WALLET = web.AppKey("wallet", Wallet)
CALLS = web.AppKey("calls", CallService)
APIS = web.AppKey("apis", list[Api])
METRICS = web.AppKey("metrics", Metrics)
