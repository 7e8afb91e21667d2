"""An append transaction sent to DuckDB as one call (internal).

Besides the entries, an append writes interior tree nodes, dead letters, Kafka offsets and alert-
outbox rows. Each goes to DuckDB as an Arrow table registered as a view, and the statements of the
transaction — ``BEGIN``, the inserts, ``COMMIT`` — are one ``execute``, the way bulk appends
already committed (``Ledger.append_many``): DuckDB's Python client releases the GIL for a call and
must win it back afterwards, each time up to the interpreter's switch interval (5 ms) while another
thread runs Python. One code path for every table also replaced three per-table insert helpers.

Measured on 40-event batches with offsets and alerts (serve at 1,000 events/s): about 12 ms per
append alone and 31–36 ms inside serve, both before and after this change: at that size the time
is DuckDB's own per-statement work (entries ~3 ms, the offsets upsert ~2 ms, alerts ~1 ms, commit
~2 ms alone), not GIL hand-overs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

if TYPE_CHECKING:
    from core.deadletter import DeadLetter

__all__ = [
    "INSERT_ALERTS",
    "INSERT_DEAD_LETTERS",
    "INSERT_NODES",
    "UPSERT_OFFSETS",
    "Alert",
    "Transaction",
    "alerts_table",
    "dead_letters_table",
    "offsets_table",
]

#: ``(seq, event_id, rails, severity, policies)`` of a detect-mode deny
Alert = tuple[int, str, list[int], str | None, list[str]]

INSERT_NODES = "INSERT INTO nodes SELECT * FROM {t}"

#: alert-outbox rows from an ``alerts_table`` registered as ``{t}``
INSERT_ALERTS = (
    "INSERT INTO alerts (alert_id, seq, event_id, created_at, rails, severity, policies, status, attempts, "
    "updated_at) SELECT nextval('alert_ids'), seq, event_id, stamped, rails, severity, policies, "
    "'pending', 0, stamped FROM {t}"
)

INSERT_DEAD_LETTERS = (
    'INSERT INTO dead_letters (id, received_at, source, reason, detail, "where", raw, truncated) '
    "SELECT nextval('dead_letter_ids'), received_at, source, reason, detail, where_, raw, truncated FROM {t}"
)

UPSERT_OFFSETS = (
    "INSERT INTO offsets (group_id, topic, part, next_offset, updated_at) "
    "SELECT group_id, topic, part, next_offset, updated_at FROM {t} "
    "ON CONFLICT (group_id, topic, part) DO UPDATE SET next_offset = excluded.next_offset, "
    "updated_at = excluded.updated_at"
)

_STAMP = pa.timestamp("us", tz="UTC")


@dataclass
class Transaction:
    """Statements over registered Arrow tables, run as one ``execute``."""

    statements: list[str] = field(default_factory=list)
    views: dict[str, pa.Table] = field(default_factory=dict)

    def add(self, table: pa.Table, sql: str) -> None:
        """Append ``sql`` (a statement reading ``{t}``) over ``table``."""
        name = f"_railbook_v{len(self.views)}"
        self.views[name] = table
        self.statements.append(sql.format(t=name))

    def run(self, con: duckdb.DuckDBPyConnection) -> None:
        try:
            for name, table in self.views.items():
                con.register(name, table)
            con.execute(";\n".join(self.statements))
        finally:
            for name in self.views:
                # fails in an aborted transaction; the next register replaces the view anyway
                with contextlib.suppress(duckdb.Error):
                    con.unregister(name)


def alerts_table(alerts: Sequence[Alert], now: datetime) -> pa.Table:
    """New alert-outbox rows (``INSERT_ALERTS``), created and updated ``now``."""
    return pa.table(
        {
            "seq": pa.array([a[0] for a in alerts], pa.int64()),
            "event_id": pa.array([a[1] for a in alerts], pa.string()),
            "rails": pa.array([a[2] for a in alerts], pa.list_(pa.int32())),
            "severity": pa.array([a[3] for a in alerts], pa.string()),
            "policies": pa.array([a[4] for a in alerts], pa.list_(pa.string())),
            "stamped": pa.array([now] * len(alerts), _STAMP),
        }
    )


def dead_letters_table(dls: Sequence[DeadLetter]) -> pa.Table:
    """Dead letters (``INSERT_DEAD_LETTERS``)."""
    return pa.table(
        {
            "received_at": pa.array([d.received_at for d in dls], _STAMP),
            "source": pa.array([d.source for d in dls], pa.string()),
            "reason": pa.array([d.reason for d in dls], pa.string()),
            "detail": pa.array([d.detail for d in dls], pa.string()),
            "where_": pa.array([d.where for d in dls], pa.string()),
            "raw": pa.array([d.raw for d in dls], pa.binary()),
            "truncated": pa.array([d.truncated for d in dls], pa.bool_()),
        }
    )


def offsets_table(offsets: Mapping[str, Mapping[tuple[str, int], int]], now: datetime) -> pa.Table:
    """Consumer-group offsets ``group -> (topic, partition) -> next offset`` (``UPSERT_OFFSETS``)."""
    rows = [(g, t, int(p), int(n)) for g, parts in offsets.items() for (t, p), n in parts.items()]
    return pa.table(
        {
            "group_id": pa.array([r[0] for r in rows], pa.string()),
            "topic": pa.array([r[1] for r in rows], pa.string()),
            "part": pa.array([r[2] for r in rows], pa.int32()),
            "next_offset": pa.array([r[3] for r in rows], pa.int64()),
            "updated_at": pa.array([now] * len(rows), _STAMP),
        }
    )
