"""The real outbox: the ledger's ``alerts`` table, read and written on the single writer thread.

DuckDB admits one writer, and ``railbook up``'s writer thread owns the connection, so every read
and mark here is a job on that thread (``writer.call``). Outbox rows are joined with their ledger
entries to say who did what to which resource.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from alerts.model import OutboxAlert

__all__ = ["LedgerOutbox", "outbox_alert"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class _WriterLike(Protocol):
    def call(self, fn: Callable[[Any], T]) -> Any: ...


def _utc(t: Any) -> datetime:
    if isinstance(t, datetime):
        return t if t.tzinfo else t.replace(tzinfo=UTC)
    return datetime.now(UTC)


def outbox_alert(row: dict[str, Any], entry: Any) -> OutboxAlert:
    """An outbox row (``Ledger.pending_alerts``) plus its ``ledger.Entry`` (``None`` if missing)."""
    base = dict(
        alert_id=int(row["alert_id"]),
        seq=int(row["seq"]),
        created_at=_utc(row["created_at"]),
        event_id=str(row["event_id"]),
        rails=tuple(int(r) for r in (row.get("rails") or ())),
        severity=row.get("severity"),
        policies=tuple(str(p) for p in (row.get("policies") or ())),
    )
    if entry is None:
        return OutboxAlert(**base)  # type: ignore[arg-type]
    ev, dec = entry.event, entry.decision
    titles = {r.policy_id: r.title for r in dec.reasons}
    return OutboxAlert(
        **base,  # type: ignore[arg-type]
        titles=tuple(titles.get(p, p) for p in base["policies"]),  # type: ignore[union-attr]
        actor=ev.actor.id,
        actor_kind=ev.actor.kind,
        on_behalf_of=ev.actor.on_behalf_of,
        action=ev.action,
        resource=ev.resource.id,
        environment=ev.resource.environment,
        source=ev.source,
        occurred_at=ev.occurred_at,
    )


class LedgerOutbox:
    """``Outbox`` over ``Ledger.pending_alerts`` / ``Ledger.mark_alert`` through the writer."""

    def __init__(self, writer: _WriterLike, *, timeout: float = 60.0) -> None:
        self.writer = writer
        self.timeout = timeout

    def pending(self, limit: int) -> list[OutboxAlert]:
        def read(pipeline: Any) -> list[OutboxAlert]:
            ledger = pipeline.ledger
            return [outbox_alert(r, ledger.get_seq(int(r["seq"]))) for r in ledger.pending_alerts(limit)]

        result: list[OutboxAlert] = self.writer.call(read).result(self.timeout)
        return result

    def mark(self, alert_ids: Sequence[int], sink: str, status: str, error: str | None = None) -> None:
        ids = list(alert_ids)

        def write(pipeline: Any) -> None:
            for alert_id in ids:
                pipeline.ledger.mark_alert(alert_id, sink, status, error)

        self.writer.call(write).result(self.timeout)
