"""Aggregate read queries for the dashboard (internal; nothing here writes).

The same relation ``ledger._query`` reads (the ``entries`` table of an open ``Ledger``, or the
view over published Parquet segments of a ``SegmentReader``), grouped in DuckDB so that the
Overview of a ledger of millions of entries is a few column scans, not a Python loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import duckdb

from ledger import _query
from ledger._query import VIOLATION_SQL
from ledger._results import first_row
from ledger.entry import Entry

__all__ = [
    "active_agents",
    "daily_counts",
    "distinct_values",
    "latest_time",
    "supports",
    "totals",
    "violation_entries",
]

_DISTINCT = {"source": "source", "action": "action", "environment": "environment", "actor_kind": "actor_kind"}


def _relation(reader: Any) -> tuple[duckdb.DuckDBPyConnection, str] | None:
    """The connection and relation name behind ``reader``, if it is one of the ledger's readers."""
    rel = getattr(reader, "relation", None) or getattr(reader, "_rel", None)
    con = getattr(reader, "_con", None)
    if con is None:
        connection = getattr(reader, "connection", None)
        con = connection() if callable(connection) else None
    if not isinstance(con, duckdb.DuckDBPyConnection):
        return None
    return con, (rel if isinstance(rel, str) else "entries")


def supports(reader: Any) -> bool:
    return _relation(reader) is not None


def _rel(reader: Any) -> tuple[duckdb.DuckDBPyConnection, str]:
    found = _relation(reader)
    if found is None:
        raise TypeError(f"{type(reader).__name__} is not a ledger reader with a DuckDB relation")
    return found


def _since(since: datetime | None) -> tuple[str, list[Any]]:
    return ("WHERE occurred_at >= ?", [since]) if since is not None else ("", [])


def daily_counts(
    reader: Any, *, since: datetime | None = None
) -> list[tuple[date, str, int | None, str | None, int]]:
    """``(day, outcome, rail, severity, count)`` per UTC day: rail/severity NULL rows count every entry
    once per (day, outcome); for violations, one more row per (day, rail, severity)."""
    con, rel = _rel(reader)
    where, params = _since(since)
    day = "CAST(timezone('UTC', occurred_at) AS DATE)"
    cond = where + " AND" if where else "WHERE"
    sql = (
        f"SELECT {day} AS d, outcome, NULL::INTEGER AS rail, NULL::VARCHAR AS severity, count(*) FROM {rel} "
        f"{where} GROUP BY d, outcome "
        f"UNION ALL "
        f"SELECT d, outcome, rail, severity, count(*) FROM ("
        f"  SELECT {day} AS d, outcome, unnest(rails) AS rail, severity FROM {rel} "
        f"  {cond} {VIOLATION_SQL}"
        f") GROUP BY d, outcome, rail, severity ORDER BY 1, 2, 3 NULLS FIRST, 4"
    )
    rows = con.execute(sql, params + params).fetchall()
    return [(r[0], str(r[1]), None if r[2] is None else int(r[2]), r[3], int(r[4])) for r in rows]


def active_agents(
    reader: Any, *, since: datetime | None = None, limit: int = 50
) -> list[tuple[str, str | None, int, int, datetime]]:
    """``(actor, on_behalf_of, events, violations, last_seen)`` of agents, most recently active first."""
    con, rel = _rel(reader)
    where, params = _since(since)
    cond = where + " AND" if where else "WHERE"
    rows = con.execute(
        f"SELECT actor_id, any_value(on_behalf_of) FILTER (on_behalf_of IS NOT NULL), count(*), "
        f"count(*) FILTER ({VIOLATION_SQL}), max(occurred_at) FROM {rel} {cond} actor_kind = 'agent' "
        f"GROUP BY actor_id ORDER BY 5 DESC, 1 LIMIT ?",
        [*params, int(limit)],
    ).fetchall()
    return [(str(r[0]), r[1], int(r[2]), int(r[3]), r[4]) for r in rows]


def totals(reader: Any) -> tuple[int, int]:
    """``(entries, violations)``."""
    con, rel = _rel(reader)
    row = first_row(con.execute(f"SELECT count(*), count(*) FILTER ({VIOLATION_SQL}) FROM {rel}"))
    return (int(row[0]), int(row[1])) if row else (0, 0)


def latest_time(reader: Any) -> datetime | None:
    """The newest ``occurred_at`` (Parquet min/max statistics make this cheap)."""
    con, rel = _rel(reader)
    row = first_row(con.execute(f"SELECT max(occurred_at) FROM {rel}"))
    return row[0] if row else None


def distinct_values(reader: Any, column: str, *, limit: int = 500) -> list[str]:
    """Values present in one of the filterable columns (source, action, environment, actor_kind)."""
    col = _DISTINCT.get(column)
    if col is None:
        raise ValueError(f"distinct_values: column {column!r} is not one of {sorted(_DISTINCT)}")
    con, rel = _rel(reader)
    rows = con.execute(
        f"SELECT DISTINCT {col} FROM {rel} WHERE {col} IS NOT NULL ORDER BY 1 LIMIT ?", [int(limit)]
    ).fetchall()
    return [str(r[0]) for r in rows]


def violation_entries(
    reader: Any,
    *,
    rail: int | None = None,
    severity: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    exclude: Sequence[str] = (),
    limit: int = 50,
    offset: int = 0,
) -> list[Entry]:
    """Violations newest first, filtered by rail, severity, actor (or the human it acts for) and
    time, leaving out the event ids in ``exclude`` (e.g. the acknowledged ones)."""
    con, rel = _rel(reader)
    where = [VIOLATION_SQL]
    params: list[Any] = []
    if rail is not None:
        where.append("list_contains(rails, ?)")
        params.append(int(rail))
    if severity is not None:
        where.append("severity = ?")
        params.append(severity)
    if actor is not None:
        where.append("(actor_id = ? OR on_behalf_of = ?)")
        params += [actor, actor]
    if since is not None:
        where.append("occurred_at >= ?")
        params.append(since)
    if exclude:
        where.append("NOT list_contains(?, event_id)")
        params.append(list(exclude))
    rows = con.execute(
        f"SELECT {_query.ENTRY_COLUMNS} FROM {rel} WHERE {' AND '.join(where)} "
        "ORDER BY seq DESC LIMIT ? OFFSET ?",
        [*params, int(limit), int(offset)],
    ).fetchall()
    return _query._rows_to_entries(rows)
