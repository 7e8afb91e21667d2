"""A synthetic tree for proof benchmarks at sizes too large to append in a benchmark run (internal).

Appending ten million real entries takes longer than a benchmark should, and proof latency does
not depend on what the leaves say, only on how the tree is stored. So this builds, with set-wise
DuckDB SQL, the two tables a proof reads — ``entries`` (``seq``, ``leaf_hash``, small placeholder
columns) and ``nodes`` (the complete interior subtrees of the stored levels 8, 16, … — see
``ledger.proofs.is_stored`` — in ``ledger.proofs.node_position`` order)
— with the ledger's own DDL and indexes, and real RFC 6962 hashes: ``leaf = SHA-256(0x00 ||
entry)``, ``node = SHA-256(0x01 || left || right)``, computed by DuckDB's ``sha256``. The
benchmark then checks proofs built from it with ``ledger.merkle.verify_inclusion`` against
leaves hashed in Python, so a wrong table cannot pass for a right one.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import duckdb

from ledger._results import first_row
from ledger._schema import NODES_LAYOUT, SCHEMA
from ledger.proofs import is_stored

__all__ = ["build_synthetic_tree", "synthetic_entry"]

logger = logging.getLogger(__name__)


def synthetic_entry(seq: int) -> bytes:
    """The placeholder entry bytes of leaf ``seq`` (what its leaf hash is the hash of)."""
    return f"synthetic:{seq}".encode()


def build_synthetic_tree(path: Path, size: int) -> float:
    """Create a ledger file at ``path`` holding a tree of ``size`` leaves; returns the seconds taken."""
    started = time.perf_counter()
    con = duckdb.connect(str(path))
    try:
        con.execute("SET enable_progress_bar = false")
        for stmt in SCHEMA:
            con.execute(stmt)
        con.execute(
            "INSERT INTO entries (seq, event_id, occurred_at, ingested_at, entry, leaf_hash, chain_hash) "
            "SELECT i, 'synthetic:' || i, TIMESTAMPTZ '2026-01-01 00:00:00+00', "
            "TIMESTAMPTZ '2026-01-01 00:00:00+00', e, unhex(sha256('\\x00'::BLOB || e)), ''::BLOB "
            f"FROM (SELECT i, CAST('synthetic:' || i AS BLOB) AS e FROM range({int(size)}) t(i)) ORDER BY i"
        )
        con.execute("CREATE TEMP TABLE lvl AS SELECT seq AS idx, leaf_hash AS hash FROM entries")
        level = 0
        while True:
            level += 1
            con.execute(
                "CREATE OR REPLACE TEMP TABLE nxt AS "
                "SELECT a.idx // 2 AS idx, unhex(sha256('\\x01'::BLOB || a.hash || b.hash)) AS hash "
                "FROM lvl a JOIN lvl b ON b.idx = a.idx + 1 WHERE a.idx % 2 = 0"
            )
            row = first_row(con.execute("SELECT count(*) FROM nxt"))
            if not row or int(row[0]) == 0:
                break
            if is_stored(level):
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE lvl_{level} AS "
                    f"SELECT {level}::TINYINT AS level, idx, hash FROM nxt"
                )
            con.execute("CREATE OR REPLACE TEMP TABLE lvl AS SELECT idx, hash FROM nxt")
        stored = [k for k in range(1, level) if is_stored(k)]
        union = " UNION ALL ".join(f"SELECT * FROM lvl_{k}" for k in stored) or (
            "SELECT 0::TINYINT AS level, 0::BIGINT AS idx, ''::BLOB AS hash WHERE false"
        )
        # pos = (m - 1) - popcount(m - 1) + (level - 1), m = (idx + 1) * 2^level (ledger.proofs.node_position)
        con.execute(
            "INSERT INTO nodes SELECT "
            "((idx + 1) << level) - 1 - bit_count(((idx + 1) << level) - 1) + level - 1 "
            f"AS pos, level, idx, hash FROM ({union}) ORDER BY pos"
        )
        con.execute("INSERT OR REPLACE INTO ledger_meta VALUES ('nodes_layout', ?)", [NODES_LAYOUT])
        con.execute("CHECKPOINT")
    finally:
        con.close()
    seconds = time.perf_counter() - started
    logger.info("synthetic tree built size=%d seconds=%.1f", size, seconds)
    return seconds
