"""Reading a one-row result from DuckDB (internal)."""

from __future__ import annotations

from typing import Any

import duckdb

__all__ = ["first_row"]


def first_row(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row of ``result`` (``None`` if there is none), read to the end of the result.

    Not ``fetchone()``: DuckDB 2's client holds a result read with it open until a fetch comes
    back empty, and until then refuses ``register`` on that connection. A ledger's writer opens
    every multi-statement transaction with ``register`` (``ledger._txn``), so a reopened ledger —
    whose open ends with such a read — failed its first append of 17 to 2,048 entries.
    """
    rows = result.fetchall()
    return rows[0] if rows else None
