"""Exact "is this event already stored" for the writer, over ``ledger._idindex`` (internal).

The index answers with candidates (a 64-bit hash matched); each is confirmed against the entry
stored at its seq (indexed ``seq IN (…)`` reads, up to 2,048 seqs each). New events, nearly all
of any batch, have no candidate and cost no DuckDB query at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb
import numpy as np

from ledger._idindex import U64, EventIdIndex
from ledger._results import first_row
from ledger.entry import GENESIS_CHAIN

__all__ = ["index_path", "open_index", "stored"]

#: seqs per confirming statement (an IN list DuckDB answers from the seq index)
_SEQS_PER_STATEMENT = 2048
#: entries read per batch when the index is built or caught up
_READ_BATCH = 200_000


def index_path(ledger_path: Path) -> Path:
    return ledger_path.with_name(ledger_path.name + ".ids")


def open_index(ledger_path: Path, con: duckdb.DuckDBPyConnection, size: int) -> EventIdIndex:
    """The event-id index of the ledger open on ``con`` (``size`` entries), brought up to date."""

    def chain_at(n: int) -> bytes:
        if n == 0:
            return GENESIS_CHAIN
        row = first_row(con.execute("SELECT chain_hash FROM entries WHERE seq = ?", [n - 1]))
        return bytes(row[0]) if row else b""

    def entry_ids(start: int) -> Iterator[tuple[U64, list[str]]]:
        sql = f"SELECT seq, event_id FROM entries WHERE seq >= {int(start)} ORDER BY seq"
        reader = con.sql(sql).to_arrow_reader(_READ_BATCH)
        for batch in reader:
            seqs = batch.column(0).to_numpy().astype(np.uint64)
            yield seqs, batch.column(1).to_pylist()

    return EventIdIndex.open(index_path(ledger_path), size, chain_at, entry_ids)


def stored(con: duckdb.DuckDBPyConnection, index: EventIdIndex, ids: Sequence[str], keys: U64) -> set[str]:
    """Which of ``ids`` (hashed to ``keys``) are stored entries, exactly."""
    at, seqs = index.candidates(keys)
    if not at.size:
        return set()
    wanted = sorted({int(s) for s in seqs})
    found: dict[int, str] = {}
    for k in range(0, len(wanted), _SEQS_PER_STATEMENT):
        part = wanted[k : k + _SEQS_PER_STATEMENT]
        marks = ", ".join("?" * len(part))
        rows = con.execute(f"SELECT seq, event_id FROM entries WHERE seq IN ({marks})", part).fetchall()
        found.update((int(s), str(e)) for s, e in rows)
    return {ids[i] for i, s in zip(at.tolist(), seqs.tolist(), strict=True) if found.get(s) == ids[i]}
