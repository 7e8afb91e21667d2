"""Counts for the Overview charts and the filter choices.

When the reader can answer in SQL (``ledger._reader_aggregates`` knows it), the counting happens in
DuckDB over the Parquet segments; otherwise (small readers, test fakes) it is done here over at
most ``scan_limit`` entries, newest first. Results are plain frozen values.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

__all__ = [
    "AgentActivity",
    "DayCount",
    "Totals",
    "active_agents",
    "daily_counts",
    "distinct_values",
    "latest_time",
    "totals",
]

logger = logging.getLogger(__name__)

#: how many entries the pure-Python fallback looks at
SCAN_LIMIT = 50_000

#: columns the dashboard offers as filter choices
DISTINCT_COLUMNS = ("source", "action", "environment", "actor_kind")


@dataclass(frozen=True)
class DayCount:
    """Entries on one UTC day with one outcome (rail and severity ``None``: all of them), or violations
    of one rail with one severity."""

    day: date
    outcome: str
    rail: int | None
    severity: str | None
    count: int


@dataclass(frozen=True)
class AgentActivity:
    """One agent identity seen since a time."""

    actor: str
    on_behalf_of: str | None
    events: int
    violations: int
    last_seen: datetime


@dataclass(frozen=True)
class Totals:
    entries: int
    violations: int


def _sql() -> Any:
    try:
        from ledger import _reader_aggregates
    except ImportError:  # the ledger package is older than this dashboard
        return None
    return _reader_aggregates


def _sql_for(reader: Any) -> Any:
    mod = _sql()
    if mod is not None and mod.supports(reader):
        return mod
    return None


def _scan(reader: Any, since: datetime | None = None) -> list[Any]:
    return list(reader.entries(since=since, limit=SCAN_LIMIT))


def daily_counts(reader: Any, *, since: datetime | None = None) -> list[DayCount]:
    """Entries per UTC day: one row per (day, outcome) with rail and severity ``None`` (every entry
    once), plus, for violations, one row per (day, rail, severity) (a violation counts once per rail)."""
    sql = _sql_for(reader)
    if sql is not None:
        return [DayCount(*row) for row in sql.daily_counts(reader, since=since)]
    counter: Counter[tuple[date, str, int | None, str | None]] = Counter()
    for e in _scan(reader, since):
        day = e.event.occurred_at.date()
        d = e.decision
        counter[(day, d.outcome, None, None)] += 1
        if d.is_violation:
            for rail in d.rails:
                counter[(day, d.outcome, rail, d.severity)] += 1
    return [
        DayCount(k[0], k[1], k[2], k[3], n) for k, n in sorted(counter.items(), key=lambda kv: str(kv[0]))
    ]


def active_agents(reader: Any, *, since: datetime | None = None, limit: int = 50) -> list[AgentActivity]:
    """Agent identities with events since ``since``, most recently active first."""
    sql = _sql_for(reader)
    if sql is not None:
        return [AgentActivity(*row) for row in sql.active_agents(reader, since=since, limit=limit)]
    seen: dict[str, list[Any]] = {}
    for e in _scan(reader, since):
        a = e.event.actor
        if a.kind != "agent":
            continue
        row = seen.setdefault(a.id, [a.on_behalf_of, 0, 0, e.event.occurred_at])
        row[1] += 1
        row[2] += 1 if e.decision.is_violation else 0
        row[3] = max(row[3], e.event.occurred_at)
        row[0] = row[0] or a.on_behalf_of
    rows = [AgentActivity(k, v[0], v[1], v[2], v[3]) for k, v in seen.items()]
    rows.sort(key=lambda r: r.last_seen, reverse=True)
    return rows[:limit]


def totals(reader: Any) -> Totals:
    """Entries and violations in the whole ledger."""
    sql = _sql_for(reader)
    if sql is not None:
        n, v = sql.totals(reader)
        return Totals(int(n), int(v))
    stats = reader.stats()
    n = _stat(stats, "size", "entries", "tree_size")
    v = _stat(stats, "violations")
    if n is None or v is None:
        scanned = _scan(reader)
        n = len(scanned) if n is None else n
        v = sum(1 for e in scanned if e.decision.is_violation) if v is None else v
    return Totals(int(n), int(v))


def _stat(stats: Any, *names: str) -> int | None:
    for name in names:
        value = stats.get(name) if isinstance(stats, dict) else getattr(stats, name, None)
        if isinstance(value, int):
            return value
    return None


def distinct_values(reader: Any, column: str, *, limit: int = 500) -> list[str]:
    """The values of ``column`` (one of ``DISTINCT_COLUMNS``) present in the ledger, sorted."""
    if column not in DISTINCT_COLUMNS:
        raise ValueError(f"distinct_values: column {column!r} is not one of {DISTINCT_COLUMNS}")
    sql = _sql_for(reader)
    if sql is not None:
        return [str(v) for v in sql.distinct_values(reader, column, limit=limit)]
    getter: Callable[[Any], Any] = {
        "source": lambda e: e.event.source,
        "action": lambda e: e.event.action,
        "environment": lambda e: e.event.resource.environment,
        "actor_kind": lambda e: e.event.actor.kind,
    }[column]
    return sorted({str(getter(e)) for e in _scan(reader)})[:limit]


def latest_time(reader: Any) -> datetime | None:
    """When the newest event in the ledger happened (``None`` for an empty ledger)."""
    sql = _sql_for(reader)
    if sql is not None:
        t = sql.latest_time(reader)
        return t if isinstance(t, datetime) else None
    newest = list(reader.entries(limit=1))
    return newest[0].event.occurred_at if newest else None
