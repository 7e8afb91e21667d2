"""The delivery worker: outbox → sinks, with retries, backoff, ordering and grouping.

Guarantees (docs/design/alerts.md):

- **Never lost.** An alert row is written in the same ledger transaction as its violating entry
  (the outbox). It stays ``pending``/``failed`` until *every* configured sink accepted it; only then
  is it marked ``sent``. A crash anywhere in between leaves it pending, and the next process
  delivers it.
- **At-least-once, deduplicable.** Each delivery carries an idempotency key that is the same on
  every retry of that delivery; receivers dedupe by it. After a crash a sink that had already
  accepted an alert may receive it again, with the same key (unless the group it belonged to
  changed membership, see below).
- **Ordered per sink.** Alerts go to each sink in outbox order; a failure stops that sink's round
  (head-of-line) and retries after backoff ``base·2^(n-1)`` capped at ``backoff_max``, with jitter
  (50–100 %). Sinks are independent: one that is down does not delay the others (within the
  ``fetch_limit`` oldest pending rows).
- **Grouping.** The first violation of a (policy, actor, resource) key is delivered at once (with
  any repeats already pending beside it, as one alert with a count). Repeats created within
  ``group_window`` seconds of that first one are held and delivered as one alert with a count when
  the window closes. A group's membership is frozen at its first delivery attempt, so its key never
  changes while the process lives; after a restart, groups are re-formed from what is pending.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from alerts.model import Alert, OutboxAlert
from alerts.settings import AlertsSettings
from alerts.sinks import Sink
from core.errors import AlertError

__all__ = ["DeliveryWorker", "Outbox"]

logger = logging.getLogger(__name__)


class Outbox(Protocol):
    """Where alerts wait. ``LedgerOutbox`` is the real one (the ledger's ``alerts`` table)."""

    def pending(self, limit: int) -> list[OutboxAlert]:
        """Undelivered alerts, oldest first."""
        ...

    def mark(self, alert_ids: Sequence[int], sink: str, status: str, error: str | None = None) -> None:
        """Record ``sent`` (all sinks accepted) or ``failed`` (an attempt failed; ``sink`` says where)."""
        ...


@dataclass
class _Group:
    members: list[OutboxAlert]
    held_until: datetime | None = None

    @property
    def leader(self) -> OutboxAlert:
        return self.members[0]

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(m.alert_id for m in self.members)


@dataclass
class _SinkState:
    attempts: int = 0
    next_at: float = 0.0
    last_error: str | None = None


class DeliveryWorker:
    """Delivers outbox alerts to ``sinks`` on its own thread (or step by step with ``run_once``)."""

    def __init__(
        self,
        outbox: Outbox,
        sinks: Sequence[Sink],
        settings: AlertsSettings | None = None,
        *,
        metrics: Any = None,
        key_prefix: str = "railbook",
        evidence_url: Callable[[OutboxAlert], str | None] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if not sinks:
            raise AlertError("DeliveryWorker needs at least one sink (the log sink is the default)")
        self.outbox = outbox
        self.sinks = list(sinks)
        self.settings = settings or AlertsSettings()
        self.metrics = metrics
        self.key_prefix = key_prefix
        self._evidence_url = evidence_url
        self._now = now
        self._mono = monotonic
        self._jitter = jitter
        self._window = timedelta(seconds=self.settings.group_window_seconds)
        self._done: dict[str, set[str]] = {s.name: set() for s in self.sinks}
        self._frozen: dict[int, tuple[int, ...]] = {}
        self._window_start: dict[tuple[str, str, str], datetime] = {}
        self._state = {s.name: _SinkState() for s in self.sinks}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered = 0
        """Alerts (groups) accepted by every sink since start."""

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> DeliveryWorker:
        self._thread = threading.Thread(target=self._run, name="railbook-alerts", daemon=True)
        self._thread.start()
        return self

    def notify(self) -> None:
        """Wake the worker now (a new violation was committed)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:
                logger.exception("closing alert sink failed sink=%s", sink.name)

    def status(self) -> dict[str, dict[str, Any]]:
        """Per sink: consecutive failed attempts, seconds until the next try, the last error."""
        now = self._mono()
        return {
            name: {
                "attempts": st.attempts,
                "retry_in": max(0.0, st.next_at - now) if st.attempts else 0.0,
                "last_error": st.last_error,
            }
            for name, st in self._state.items()
        }

    def _run(self) -> None:
        logger.info("alert worker started sinks=%s", ",".join(s.name for s in self.sinks))
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                logger.exception("alert worker round failed; retrying")
            self._wake.wait(self._sleep())
            self._wake.clear()
        logger.info("alert worker stopped delivered=%d", self.delivered)

    def _sleep(self) -> float:
        now = self._mono()
        waits = [self.settings.poll_seconds]
        waits += [st.next_at - now for st in self._state.values() if st.attempts and st.next_at > now]
        return max(0.01, min(waits))

    # --- one round -----------------------------------------------------------------------------

    def _groups(self, rows: list[OutboxAlert]) -> list[_Group]:
        by_id = {r.alert_id: r for r in rows}
        groups: list[_Group] = []
        used: set[int] = set()
        for leader, ids in list(self._frozen.items()):
            if all(i in by_id for i in ids):
                groups.append(_Group([by_id[i] for i in ids]))
                used.update(ids)
            else:  # delivered (or removed) meanwhile
                del self._frozen[leader]
        fresh: dict[tuple[str, str, str], _Group] = {}
        held: dict[tuple[tuple[str, str, str], datetime], _Group] = {}
        for r in sorted(rows, key=lambda r: r.alert_id):
            if r.alert_id in used:
                continue
            key = r.group_key
            start = self._window_start.get(key)
            if self._window and start is not None and r.created_at < start + self._window:
                g = held.get((key, start))
                if g is None:
                    g = held[(key, start)] = _Group([], held_until=start + self._window)
                    groups.append(g)
                g.members.append(r)
                continue
            g = fresh.get(key)
            if self._window and g is not None and r.created_at < g.leader.created_at + self._window:
                g.members.append(r)
                continue
            g = fresh[key] = _Group([r])
            groups.append(g)
        groups.sort(key=lambda g: g.leader.alert_id)
        return groups

    def _alert(self, g: _Group) -> Alert:
        first, last = g.members[0], g.members[-1]
        key = f"{self.key_prefix}:{first.alert_id}"
        if len(g.members) > 1:
            key += f"-{last.alert_id}x{len(g.members)}"
        url = self._evidence_url(first) if self._evidence_url else None
        return Alert(
            idempotency_key=key,
            first=first,
            count=len(g.members),
            alert_ids=g.ids,
            last_event_id=last.event_id,
            last_occurred_at=last.occurred_at,
            evidence_url=url,
        )

    def run_once(self) -> int:
        """One round: read pending alerts, deliver what is due; returns groups fully delivered."""
        rows = self.outbox.pending(self.settings.fetch_limit)
        if self.metrics is not None:
            self.metrics.alerts_pending.set(len(rows))
        if not rows:
            return 0
        now = self._now()
        groups = [g for g in self._groups(rows) if g.held_until is None or now >= g.held_until]
        alerts = {g.leader.alert_id: self._alert(g) for g in groups}
        mono = self._mono()
        for sink in self.sinks:
            st = self._state[sink.name]
            if st.attempts and mono < st.next_at:
                continue
            done = self._done[sink.name]
            for g in groups:
                alert = alerts[g.leader.alert_id]
                if alert.idempotency_key in done:
                    continue
                self._freeze(g)
                try:
                    sink.send(alert)
                except Exception as exc:
                    self._failed(sink, st, g, exc)
                    break
                done.add(alert.idempotency_key)
                st.attempts, st.last_error = 0, None
                self._count(sink.name, "sent")
                logger.info(
                    "alert sent sink=%s key=%s count=%d", sink.name, alert.idempotency_key, alert.count
                )
        complete = marked = 0
        names = ",".join(s.name for s in self.sinks)
        for g in groups:
            key = alerts[g.leader.alert_id].idempotency_key
            if all(key in self._done[s.name] for s in self.sinks):
                self.outbox.mark(g.ids, names, "sent")
                for s in self.sinks:
                    self._done[s.name].discard(key)
                self._frozen.pop(g.leader.alert_id, None)
                complete += 1
                marked += len(g.members)
        self.delivered += complete
        if self.metrics is not None:
            self.metrics.alerts_pending.set(len(rows) - marked)
        return complete

    def _freeze(self, g: _Group) -> None:
        if g.leader.alert_id not in self._frozen:
            self._frozen[g.leader.alert_id] = g.ids
            if g.held_until is None:
                self._window_start[g.leader.group_key] = g.leader.created_at

    def _failed(self, sink: Sink, st: _SinkState, g: _Group, exc: Exception) -> None:
        st.attempts += 1
        base = self.settings.backoff_base_seconds * (2 ** min(st.attempts - 1, 30))
        delay = min(self.settings.backoff_max_seconds, base) * (0.5 + 0.5 * self._jitter())
        st.next_at = self._mono() + delay
        st.last_error = str(exc)
        self._count(sink.name, "failed")
        logger.warning(
            "alert delivery failed sink=%s alert_id=%d attempts=%d retry_in=%.1fs error=%s",
            sink.name,
            g.leader.alert_id,
            st.attempts,
            delay,
            exc,
        )
        try:
            self.outbox.mark([g.leader.alert_id], sink.name, "failed", str(exc)[:1000])
        except Exception:
            logger.exception("recording a failed delivery failed alert_id=%d", g.leader.alert_id)

    def _count(self, sink: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.alert_deliveries.labels(sink, outcome).inc()
