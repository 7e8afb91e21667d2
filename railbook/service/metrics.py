"""Prometheus metrics for the service (one registry per app, so tests and apps never collide).

Names are stable; labels are low-cardinality (source, outcome, rail, reason, sink, route):

- ``railbook_events_received_total{source}``: records accepted by intake, per source.
- ``railbook_decisions_total{outcome,rail}``: appended entries by outcome (``allow``/``deny``) and
  rail (``1``–``4``; ``none`` for an allow). A deny of two rails counts once per rail.
- ``railbook_dead_letters_total{reason}``: records dead-lettered by this process, by reason code.
- ``railbook_duplicates_total``: events skipped because their event_id was already recorded.
- ``railbook_ledger_entries``: the ledger's tree size.
- ``railbook_checkpoint_age_seconds``: seconds since the newest signed checkpoint (NaN before one).
- ``railbook_alert_deliveries_total{sink,outcome}``: delivery attempts (``sent``/``failed``).
- ``railbook_alerts_pending``: alerts in the outbox not yet delivered to every sink.
- ``railbook_consumer_lag{topic,partition}``: Kafka consumer lag (set by ``railbook serve``; empty here).
- ``railbook_writer_queue_depth``: jobs waiting for the single writer.
- ``railbook_http_requests_total{route,status}`` and ``railbook_http_request_seconds{route}``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from railbook.pipeline import BatchSummary

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    """The service's metrics on their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events_received = Counter(
            "railbook_events_received", "Records accepted by intake, per source.", ["source"], registry=r
        )
        self.decisions = Counter(
            "railbook_decisions",
            "Appended entries by outcome and rail.",
            ["outcome", "rail"],
            registry=r,
        )
        self.dead_letters = Counter(
            "railbook_dead_letters",
            "Records dead-lettered by this process, by reason.",
            ["reason"],
            registry=r,
        )
        self.duplicates = Counter("railbook_duplicates", "Events skipped as already recorded.", registry=r)
        self.ledger_entries = Gauge("railbook_ledger_entries", "The ledger's tree size.", registry=r)
        self.checkpoint_age = Gauge(
            "railbook_checkpoint_age_seconds", "Seconds since the newest signed checkpoint.", registry=r
        )
        self.alert_deliveries = Counter(
            "railbook_alert_deliveries",
            "Alert delivery attempts by sink and outcome.",
            ["sink", "outcome"],
            registry=r,
        )
        self.alerts_pending = Gauge(
            "railbook_alerts_pending", "Alerts not yet delivered to every sink.", registry=r
        )
        self.consumer_lag = Gauge(
            "railbook_consumer_lag",
            "Kafka consumer lag (Kafka mode only).",
            ["topic", "partition"],
            registry=r,
        )
        self.writer_queue = Gauge(
            "railbook_writer_queue_depth", "Jobs waiting for the single writer.", registry=r
        )
        self.http_requests = Counter(
            "railbook_http_requests",
            "HTTP requests by route and status.",
            ["route", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "railbook_http_request_seconds", "HTTP request latency by route.", ["route"], registry=r
        )
        self._checkpoint_at: float | None = None
        self.checkpoint_age.set_function(self._age)

    def _age(self) -> float:
        return math.nan if self._checkpoint_at is None else max(0.0, time.time() - self._checkpoint_at)

    def checkpoint_seen(self, at: float) -> None:
        """Record that a checkpoint was signed at ``at`` (``time.time()`` seconds)."""
        if self._checkpoint_at is None or at > self._checkpoint_at:
            self._checkpoint_at = at

    def queue_depth_from(self, fn: Callable[[], int]) -> None:
        self.writer_queue.set_function(lambda: float(fn()))

    def observe_batch(self, summary: BatchSummary, mode: str = "detect") -> None:
        """Count a committed batch's decisions and duplicates; update the tree size."""
        for seq, _event, decision in summary.entries:
            if decision.outcome == "deny" and decision.rails:
                for rail in decision.rails:
                    self.decisions.labels(decision.outcome, str(rail)).inc()
            else:
                self.decisions.labels(decision.outcome, "none").inc()
            self.ledger_entries.set(seq + 1)
        if summary.duplicates:
            self.duplicates.inc(summary.duplicates)

    def render(self) -> bytes:
        return generate_latest(self.registry)
