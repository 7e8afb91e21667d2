"""DuckDB schema of the ledger file and names of published segments (internal)."""

from __future__ import annotations

import duckdb

from ledger._results import first_row
from ledger.proofs import TILE_HEIGHT

__all__ = ["NODES_LAYOUT", "SCHEMA", "SEGMENT_GLOB", "migrate", "parse_segment_name", "segment_name"]

#: ``ledger_meta`` value of ``nodes_layout``: the node table holds the interior nodes of levels 8,
#: 16, 24, … only (``ledger.proofs.TILE_HEIGHT``); ledgers without it stored every level
NODES_LAYOUT = "tiles-8"

SCHEMA: tuple[str, ...] = (
    # Entries: seq is the RFC 6962 leaf index; rows are appended in seq order. event_id is unique,
    # kept so by the writer's event-id index (ledger._idindex), not by a UNIQUE constraint: that is
    # an ART DuckDB holds whole in memory. Ledgers made before 2026-11-25 keep theirs (harmless).
    """CREATE TABLE IF NOT EXISTS entries (
        seq BIGINT NOT NULL,
        event_id VARCHAR NOT NULL,
        occurred_at TIMESTAMPTZ NOT NULL,
        ingested_at TIMESTAMPTZ NOT NULL,
        source VARCHAR, actor_id VARCHAR, actor_kind VARCHAR, on_behalf_of VARCHAR, credential VARCHAR,
        action VARCHAR, resource_id VARCHAR, resource_type VARCHAR, environment VARCHAR,
        outcome VARCHAR, mode VARCHAR, rails INTEGER[], policies VARCHAR[], severity VARCHAR,
        policy_version VARCHAR, "commit" VARCHAR, pull_request VARCHAR, task VARCHAR,
        request_id VARCHAR, approval_used VARCHAR,
        entry BLOB NOT NULL, leaf_hash BLOB NOT NULL, chain_hash BLOB NOT NULL
    )""",
    # Complete interior subtrees of the stored levels (8, 16, 24, …: ledger.proofs.is_stored) in
    # completion order: pos = ledger.proofs.node_position (sparse, increasing). Other nodes are derived.
    """CREATE TABLE IF NOT EXISTS nodes (pos BIGINT NOT NULL, level TINYINT NOT NULL, idx BIGINT NOT NULL,
        hash BLOB NOT NULL)""",
    # Point lookups (get_seq; proofs read short seq / pos ranges, pruned by min/max): ART indexes,
    # not UNIQUE so that tampering stays possible and is what `railbook verify` reports. Created on a
    # writer's first open of an older ledger (about a second per ten million rows); read-only opens
    # without them still work (by scanning).
    "CREATE INDEX IF NOT EXISTS nodes_pos ON nodes (pos)",
    "CREATE INDEX IF NOT EXISTS entries_seq ON entries (seq)",
    """CREATE TABLE IF NOT EXISTS checkpoints (tree_size BIGINT NOT NULL, root_hash BLOB NOT NULL,
        note VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS offsets (group_id VARCHAR NOT NULL, topic VARCHAR NOT NULL,
        part INTEGER NOT NULL, next_offset BIGINT NOT NULL, updated_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (group_id, topic, part))""",
    "CREATE SEQUENCE IF NOT EXISTS dead_letter_ids START 1",
    """CREATE TABLE IF NOT EXISTS dead_letters (id BIGINT NOT NULL, received_at TIMESTAMPTZ NOT NULL,
        source VARCHAR, reason VARCHAR, detail VARCHAR, "where" VARCHAR, raw BLOB, truncated BOOLEAN)""",
    "CREATE SEQUENCE IF NOT EXISTS alert_ids START 1",
    """CREATE TABLE IF NOT EXISTS alerts (alert_id BIGINT NOT NULL, seq BIGINT NOT NULL,
        event_id VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL, rails INTEGER[], severity VARCHAR, policies VARCHAR[],
        status VARCHAR NOT NULL, sink VARCHAR, attempts INTEGER NOT NULL, last_error VARCHAR,
        updated_at TIMESTAMPTZ NOT NULL)""",
    # Format markers (key -> value), e.g. nodes_layout = NODES_LAYOUT.
    "CREATE TABLE IF NOT EXISTS ledger_meta (key VARCHAR NOT NULL PRIMARY KEY, value VARCHAR NOT NULL)",
    """CREATE TABLE IF NOT EXISTS segments (start_seq BIGINT NOT NULL, end_seq BIGINT NOT NULL,
        root_hash BLOB NOT NULL, path VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL)""",
)

SEGMENT_GLOB = "entries-*.parquet"


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Bring a writable ledger to the current layout, in one transaction (idempotent): a ledger
    written before ``NODES_LAYOUT`` stored every interior level; the rows of levels that are no
    longer stored are derived data (``railbook verify`` re-derives all of them), so they go."""
    row = first_row(con.execute("SELECT value FROM ledger_meta WHERE key = 'nodes_layout'"))
    if row is not None and row[0] == NODES_LAYOUT:
        return
    con.begin()
    try:
        con.execute(f"DELETE FROM nodes WHERE level % {TILE_HEIGHT} <> 0")
        con.execute("INSERT OR REPLACE INTO ledger_meta VALUES ('nodes_layout', ?)", [NODES_LAYOUT])
        con.commit()
    except BaseException:
        con.execute("ROLLBACK")
        raise


def segment_name(start: int, end: int, root: bytes) -> str:
    """``entries-<start>-<end>-<root hex prefix>.parquet``: entries with start <= seq < end."""
    return f"entries-{start:012d}-{end:012d}-{root.hex()[:16]}.parquet"


def parse_segment_name(name: str) -> tuple[int, int, str]:
    parts = name.removesuffix(".parquet").split("-")
    if len(parts) != 4 or parts[0] != "entries":
        raise ValueError(f"{name!r} is not a segment name (entries-<start>-<end>-<root>.parquet)")
    return int(parts[1]), int(parts[2]), parts[3]
