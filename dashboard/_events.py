"""Events page logic: filters pushed to the reader, one page at a time, and the detail view."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from core.event import format_time

__all__ = ["EventFilter", "EventPage", "event_detail", "event_row", "fetch_page"]

logger = logging.getLogger(__name__)

#: the most a page may hold (keeps every render bounded, whatever the ledger size)
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class EventFilter:
    """What the Events page filters by; ``None``/empty means "any". All of it goes to the reader."""

    source: str | None = None
    actor: str | None = None
    kind: str | None = None
    action: str | None = None
    environment: str | None = None
    outcome: str | None = None
    """``allow`` or ``deny`` (the decision)."""
    rail: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    """Full-text search over the event (ids, actor, action, resource, task, raw record)."""

    def query(self) -> dict[str, Any]:
        """Keyword arguments for ``reader.entries`` (unset filters left out)."""
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


@dataclass(frozen=True)
class EventPage:
    rows: list[dict[str, Any]]
    entries: list[Any] = field(repr=False)
    page: int
    page_size: int
    has_next: bool

    @property
    def first(self) -> int:
        """1-based position of the first row on this page (0 when empty)."""
        return self.page * self.page_size + 1 if self.rows else 0


def event_row(entry: Any) -> dict[str, Any]:
    """One entry as a table row."""
    e, d = entry.event, entry.decision
    return {
        "seq": entry.seq,
        "occurred_at": format_time(e.occurred_at),
        "source": e.source,
        "actor": e.actor.id,
        "kind": e.actor.kind,
        "action": e.action,
        "resource": e.resource.id,
        "environment": e.resource.environment,
        "decision": d.outcome,
        "rails": ",".join(str(r) for r in d.rails),
        "severity": d.severity or "",
        "event_id": e.event_id,
    }


def fetch_page(reader: Any, flt: EventFilter, *, page: int = 0, page_size: int = 50) -> EventPage:
    """Page ``page`` (0-based) of the entries matching ``flt``; the reader filters and paginates.

    One extra row is asked for to know whether a next page exists, so no count query is needed.
    """
    if page < 0:
        raise ValueError(f"page must be >= 0, got {page}")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
    got = list(reader.entries(**flt.query(), limit=page_size + 1, offset=page * page_size))
    entries = got[:page_size]
    return EventPage([event_row(x) for x in entries], entries, page, page_size, len(got) > page_size)


def _raw(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def event_detail(entry: Any) -> dict[str, Any]:
    """Everything the detail view shows: the canonical event, the decision, reasons, raw record, hashes."""
    canonical = entry.event.to_dict()
    raw = canonical.pop("raw")
    decision = entry.decision.to_dict()
    return {
        "event": canonical,
        "decision": decision,
        "reasons": decision["reasons"],
        "raw": _raw(raw),
        "record": {
            "seq": entry.seq,
            "leaf_hash": entry.leaf_hash.hex(),
            "chain_hash": entry.chain_hash.hex(),
            "entry_bytes": len(entry.entry_bytes),
        },
    }
