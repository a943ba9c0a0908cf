"""Prometheus metrics: one ``Metrics`` per process, owning its own registry and every metric.

The domains call small methods (``metrics.messages_sent(n)``, ``metrics.app_call(app_id)``)
and never import ``prometheus_client``: what is measured, and under which name, is decided here.
Each ``Metrics`` has a registry of its own, never the library's global default one: the tests run
many apps in one process, and two gateways must not add into each other's counters.

Hot paths (the chat path is benchmarked) pay a counter increment or a histogram observation, no
allocation: labelled children are looked up once and kept (``_child``), and values that already
exist elsewhere (sockets held, calls hosted, an app's restarts) are read at scrape time through
callbacks instead of being kept in step by every change.

Names are prefixed ``aetherial_``; counters get ``_total`` from the exposition format. The Grafana
dashboard in docs/grafana-dashboard.json uses them; README.md lists them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from pymongo import monitoring

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Seconds. The send->ack path is a few milliseconds on an idle node; the tail matters most.
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)  # the writer's MAX_BATCH is 1000

# Label values come from our own code (command names, app ids, transaction kinds), but a bound
# keeps a bug or an unexpected driver command from growing the registry without end.
MAX_LABEL_VALUES = 200
OTHER = "other"

Counts = Callable[[], int]
CountsBy = Callable[[], Mapping[str, int]]


class _LabelledCallbacks(Collector):
    """A labelled counter whose values are read from callbacks at scrape time (an app's
    restarts live in its supervisor; copying every change here would be a second truth)."""

    def __init__(self, name: str, documentation: str, label: str) -> None:
        self.name, self.documentation, self.label = name, documentation, label
        self.sources: list[CountsBy] = []

    def describe(self) -> Iterable[Any]:
        yield CounterMetricFamily(self.name, self.documentation, labels=[self.label])

    def collect(self) -> Iterable[Any]:
        family = CounterMetricFamily(self.name, self.documentation, labels=[self.label])
        totals: dict[str, int] = {}
        for source in self.sources:
            try:
                for value, count in source().items():
                    totals[value] = totals.get(value, 0) + count
            except Exception:  # a scrape must not fail because one source did
                log.exception("reading %s failed", self.name)
        for value, count in sorted(totals.items()):
            family.add_metric([value], count)
        yield family


class StoreTimer(monitoring.CommandListener):
    """Times every MongoDB command by name, from the driver's own command monitoring
    (``AsyncMongoClient(event_listeners=[...])``): the round trip the driver measured, with no
    clock of ours around each call site."""

    def __init__(self, histogram: Histogram) -> None:
        self._histogram = histogram
        self._children: dict[str, Any] = {}

    def _observe(self, command: str, micros: int) -> None:
        child = self._children.get(command)
        if child is None:
            if len(self._children) >= MAX_LABEL_VALUES:
                command = OTHER
            child = self._children.get(command) or self._histogram.labels(command)
            self._children[command] = child
        child.observe(micros / 1_000_000)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass  # the succeeded/failed events carry the duration

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._observe(event.command_name, event.duration_micros)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._observe(event.command_name, event.duration_micros)


class Metrics:
    """Every metric of one process, in its own ``registry``; ``exposition()`` is the text a
    scrape of ``GET /metrics`` returns."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self._sockets = Gauge(
            "aetherial_sockets_connected",
            "Socket.IO connections signed in on this node.",
            registry=registry,
        )
        self._sent = Counter(
            "aetherial_messages_sent",
            "Messages committed by this node's message writer (stored with their seq; retries of "
            "a stored message are not counted again).",
            registry=registry,
        )
        self._delivered = Counter(
            "aetherial_messages_delivered",
            "message.new events handed to this node's sockets (one per receiving socket).",
            registry=registry,
        )
        self._ack = Histogram(
            "aetherial_message_send_ack_seconds",
            "Socket.IO message.send: from receiving the event to its ok ack (stored durably).",
            buckets=ACK_BUCKETS,
            registry=registry,
        )
        self._batch = Histogram(
            "aetherial_writer_batch_size",
            "Sends the message writer committed together in one batch (group commit).",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self._store = Histogram(
            "aetherial_store_command_seconds",
            "MongoDB round trips by command name, as timed by the driver.",
            ["command"],
            buckets=STORE_BUCKETS,
            registry=registry,
        )
        self._app_calls = Counter(
            "aetherial_miniapp_calls",
            "Calls the host made to a mini-program (commands, actions, events, views, tools).",
            ["app_id"],
            registry=registry,
        )
        self._app_errors = Counter(
            "aetherial_miniapp_errors",
            "Calls to a mini-program that failed other than by timing out (crash, error answer, "
            "unavailable).",
            ["app_id"],
            registry=registry,
        )
        self._app_timeouts = Counter(
            "aetherial_miniapp_timeouts",
            "Calls to a mini-program that passed their deadline (a hosted app is then restarted).",
            ["app_id"],
            registry=registry,
        )
        self._app_restarts = _LabelledCallbacks(
            "aetherial_miniapp_restarts",
            "Restarts of a hosted mini-program's sandboxed process by its supervisor.",
            "app_id",
        )
        registry.register(self._app_restarts)
        self._ledger = Counter(
            "aetherial_ledger_transactions",
            "Ledger transactions posted, by kind (transfer, red_packet, payment...).",
            ["kind"],
            registry=registry,
        )
        self._calls_active = Gauge(
            "aetherial_calls_active",
            "Calls this node hosts (ringing or in progress).",
            registry=registry,
        )
        self._calls_relayed = Gauge(
            "aetherial_call_participants_relayed",
            "Call participants whose media this node's relay carries.",
            registry=registry,
        )
        self._queue_depth = Gauge(
            "aetherial_task_queue_depth",
            "Background work waiting: due rows per job collection, and with Celery the broker "
            "queue's length (queue=celery). Refreshed every JOBS_INTERVAL (at least 1 s).",
            ["queue"],
            registry=registry,
        )
        self.store_timer = StoreTimer(self._store)
        self._children: dict[tuple[str, str], Any] = {}

    # -- exposition -------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)

    def _child(self, metric: Any, name: str, value: str) -> Any:
        """The labelled child, created once (``labels()`` takes a lock and builds a tuple)."""
        child = self._children.get((name, value))
        if child is None:
            if len(self._children) >= MAX_LABEL_VALUES * 8:
                value = OTHER
            child = self._children.get((name, value)) or metric.labels(value)
            self._children[(name, value)] = child
        return child

    # -- chat -------------------------------------------------------------------------------

    def track_sockets(self, count: Counts) -> None:
        """Read the number of connected sockets from ``count`` at each scrape."""
        self._sockets.set_function(count)

    def writer_batch(self, size: int) -> None:
        """The message writer took ``size`` queued sends as one batch."""
        self._batch.observe(size)

    def messages_sent(self, stored: int) -> None:
        """``stored`` new messages are durable (retries answered with the original: not)."""
        self._sent.inc(stored)

    def messages_delivered(self, sockets: int) -> None:
        if sockets:
            self._delivered.inc(sockets)

    def message_acked(self, seconds: float) -> None:
        self._ack.observe(seconds)

    # -- mini-programs ----------------------------------------------------------------------

    def app_call(self, app_id: str) -> None:
        self._child(self._app_calls, "calls", app_id).inc()

    def app_call_failed(self, app_id: str, error: BaseException) -> None:
        """A call to the app failed: a timeout (the sandbox's ``CallTimeout``, a remote app's
        deadline) or any other failure."""
        if getattr(error, "code", None) == "timeout":
            self._child(self._app_timeouts, "timeouts", app_id).inc()
        else:
            self._child(self._app_errors, "errors", app_id).inc()

    def track_app_restarts(self, restarts: CountsBy) -> None:
        """Read each app's restart count (app id -> restarts) from ``restarts`` at each scrape."""
        self._app_restarts.sources.append(restarts)

    # -- wallet -----------------------------------------------------------------------------

    def ledger_posted(self, kind: str) -> None:
        self._child(self._ledger, "ledger", kind).inc()

    # -- calls ------------------------------------------------------------------------------

    def track_calls(self, active: Counts, relayed: Counts) -> None:
        """Read the calls this node hosts and the participants it relays at each scrape."""
        self._calls_active.set_function(active)
        self._calls_relayed.set_function(relayed)

    # -- background work --------------------------------------------------------------------

    def queue_depth(self, queue: str, waiting: int) -> None:
        self._child(self._queue_depth, "queue", queue).set(waiting)
