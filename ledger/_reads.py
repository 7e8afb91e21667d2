"""The read API the writer (``Ledger``) and the segment reader (``SegmentReader``) share.

Both hold a DuckDB connection with an ``entries`` relation (a table in the live file, a view over
the Parquet segments for readers), so the queries are the same; only where the rows live differs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import duckdb

from core.errors import LedgerError
from ledger import _query
from ledger.entry import Entry

__all__ = ["EntryReads"]


class EntryReads:
    """Mixin: entry queries over ``self._con``'s ``entries`` relation."""

    _con: duckdb.DuckDBPyConnection

    def get(self, event_id: str) -> Entry | None:
        return _query.get(self._con, "entries", event_id)

    def iter_records(self, *, from_seq: int = 0, actions: Sequence[str] | None = None) -> Iterator[Entry]:
        """Stream entries in seq order (rebuild approval state, replay policies)."""
        return _query.iter_entries(self._con, "entries", from_seq=from_seq, actions=actions)

    def entries(self, **filters: Any) -> list[Entry]:
        """Filtered entries, newest first: source, actor, kind, action, environment, outcome, mode,
        rail, since, until, text, limit, offset (see ``ledger._query.entries``)."""
        return _query.entries(self._con, "entries", **filters)

    def violations(
        self, *, rail: int | None = None, since: datetime | None = None, limit: int = 1000
    ) -> list[Entry]:
        """Detect-mode denies, newest first."""
        return _query.violations(self._con, "entries", rail=rail, since=since, limit=limit)

    def find(self, **filters: Any) -> list[Entry]:
        """Entries by commit / pull_request / resource / since / until, plus the approvals they used."""
        try:
            return _query.find(self._con, "entries", **filters)
        except ValueError as exc:
            raise LedgerError(str(exc)) from None
