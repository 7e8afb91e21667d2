"""Read-side queries shared by the live ``Ledger`` and the ``SegmentReader`` (internal).

Every function takes a DuckDB connection and the name of a relation with the entries schema (the
``entries`` table, or a view over published Parquet segments). Nothing here writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import duckdb

from ledger._results import first_row
from ledger.entry import Entry
from ledger.merkle import NODE_HASH_PREFIX
from ledger.proofs import TILE_HEIGHT, NodeId, derive_nodes, is_stored, node_position, stored_ranges

__all__ = [
    "CACHE_LEVEL",
    "ENTRY_COLUMNS",
    "UpperNodes",
    "entries",
    "fetch_nodes",
    "find",
    "get",
    "iter_entries",
    "stats",
    "violations",
]

ENTRY_COLUMNS = "seq, entry, leaf_hash, chain_hash"

#: A violation is a detect-mode deny; a gate-mode deny is an action stopped before it ran.
VIOLATION_SQL = "(outcome = 'deny' AND mode = 'detect')"


#: stored interior nodes of this level and above are kept in memory by ``UpperNodes`` (n / 65536 hashes)
CACHE_LEVEL = 2 * TILE_HEIGHT


class UpperNodes:
    """Hashes of complete nodes held in memory for serving proofs and roots (bounded: n / 256
    hashes, 32 bytes each, and n / 32768 more).

    - every stored level-8 node, in one ``bytearray`` by index (1.25 MB at 10M entries); the nodes
      of levels 9–15 a proof needs are hashed up from there (``derive_nodes``, ≤ 255 hashes).
    - every complete node of level >= ``CACHE_LEVEL``: the stored ones (levels 16, 24, …) and those
      derived from them (17..23, …).
    - the last ``RECENT`` nodes served (:meth:`remember`): the right edge of a checkpointed tree is
      in every proof against that checkpoint, and a complete node never changes.

    A proof's upper path is scattered over the whole node table (a cold block read each, the p99 of
    a proof); from memory, a proof reads only its block of leaves. Loaded once per connection (one
    scan of the n/255-row node table) and extended by the writer as nodes are committed (:meth:`add`).

    Only for serving proofs and roots: ``ledger.verify`` re-derives every node from the leaves and
    never reads this cache, so a tampered stored node cannot hide behind it.
    """

    __slots__ = ("_by_id", "_recent", "_tiles")

    #: nodes kept by :meth:`remember` (least recently used dropped first)
    RECENT = 4096

    def __init__(self) -> None:
        self._by_id: dict[NodeId, bytes] = {}
        self._recent: dict[NodeId, bytes] = {}
        # level-8 hashes of indexes 0, 1, …, without gaps: a node that is missing from the table
        # (tampering) ends it, and every later one is read from the table as before
        self._tiles = bytearray()

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> UpperNodes:
        out = cls()
        rows = con.execute(
            f"SELECT level, idx, hash FROM nodes WHERE level % {TILE_HEIGHT} = 0 ORDER BY pos"
        ).fetchall()
        for lv, i, h in rows:
            out._take(int(lv), int(i), bytes(h))
        return out

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def tiles(self) -> int:
        """How many level-8 nodes are held (indexes ``0 .. tiles - 1``)."""
        return len(self._tiles) // 32

    def _take(self, level: int, index: int, h: bytes) -> None:
        if level == TILE_HEIGHT:
            if index == self.tiles and len(h) == 32:
                self._tiles += h
        elif level >= CACHE_LEVEL:
            self._put(level, index, h)

    def tile_block(self, lo: int, hi: int) -> dict[NodeId, bytes] | None:
        """The level-8 nodes ``lo..hi`` (inclusive), or ``None`` unless all of them are held."""
        if hi >= self.tiles:
            return None
        return {(TILE_HEIGHT, i): self._tile(i) for i in range(lo, hi + 1)}

    def _tile(self, index: int) -> bytes:
        return bytes(self._tiles[index * 32 : index * 32 + 32])

    def _put(self, level: int, index: int, h: bytes) -> None:
        """Hold a stored node, then derive the non-stored ancestors it completes (left siblings come
        first: nodes arrive in position order)."""
        by = self._by_id
        if by.setdefault((level, index), h) is not h:
            return
        sha = hashlib.sha256
        while index & 1:
            left = by.get((level, index - 1))
            if left is None:
                return
            h = sha(NODE_HASH_PREFIX + left + h).digest()
            level += 1
            index >>= 1
            if is_stored(level):  # arrives itself, from the node table
                return
            by.setdefault((level, index), h)

    def add(self, new_nodes: Sequence[tuple[int, int, bytes]]) -> None:
        """Adopt committed stored nodes ``(level, index, hash)``."""
        for lv, i, h in new_nodes:
            self._take(lv, i, h)

    def get(self, level: int, index: int) -> bytes | None:
        if level == TILE_HEIGHT and index < self.tiles:
            return self._tile(index)
        h = self._by_id.get((level, index))
        if h is None:
            h = self._recent.pop((level, index), None)
            if h is not None:
                self._recent[(level, index)] = h
        return h

    def remember(self, nodes: Mapping[NodeId, bytes]) -> None:
        recent = self._recent
        recent.update(nodes)
        while len(recent) > self.RECENT:
            del recent[next(iter(recent))]


def fetch_nodes(
    con: duckdb.DuckDBPyConnection, ids: Sequence[NodeId], upper: UpperNodes | None = None
) -> dict[NodeId, bytes]:
    """The hashes of the nodes ``ids`` that the store can give, each read or derived from the
    stored levels (``ledger.proofs.stored_ranges`` / ``derive_nodes``): leaves from
    ``entries.leaf_hash``, interior nodes of levels 8, 16, … from ``nodes`` — one query, a UNION
    ALL of one short range read per 256-block (``seq BETWEEN`` / ``pos BETWEEN``: min/max pruning
    on tables stored in append order, a few blocks at any size). Bounds are integers, so they are
    inlined. Only the key and the hash are read. Nodes found in ``upper`` are not queried."""
    out: dict[NodeId, bytes] = {}
    missing: list[NodeId] = []
    if upper is None:
        missing = list(ids)
    else:
        for lv, i in ids:
            h = upper.get(lv, i)
            if h is None:
                missing.append((lv, i))
            else:
                out[(lv, i)] = h
    if not missing:
        return out
    stored: dict[NodeId, bytes] = {}
    parts: list[str] = []
    for level, lo, hi in stored_ranges(missing):
        block = upper.tile_block(lo, hi) if upper is not None and level == TILE_HEIGHT else None
        if block is not None:
            stored.update(block)
        elif level == 0:
            parts.append(f"SELECT 0, seq, leaf_hash FROM entries WHERE seq BETWEEN {lo} AND {hi}")
        else:
            parts.append(
                f"SELECT level, idx, hash FROM nodes WHERE pos BETWEEN {node_position(level, lo)} AND "
                f"{node_position(level, hi)} AND level = {level} AND idx BETWEEN {lo} AND {hi}"
            )
    if parts:
        for lv, i, h in con.execute(" UNION ALL ".join(parts)).fetchall():
            stored.setdefault((int(lv), int(i)), bytes(h))
    got = derive_nodes(missing, stored)
    if upper is not None:
        upper.remember(got)
    out.update(got)
    return out


def _rows_to_entries(rows: Sequence[tuple[Any, ...]]) -> list[Entry]:
    return [Entry.from_row(int(r[0]), r[1], r[2], r[3]) for r in rows]


def get(con: duckdb.DuckDBPyConnection, rel: str, event_id: str) -> Entry | None:
    rows = con.execute(f"SELECT {ENTRY_COLUMNS} FROM {rel} WHERE event_id = ?", [event_id]).fetchall()
    return _rows_to_entries(rows)[0] if rows else None


def get_seq(con: duckdb.DuckDBPyConnection, rel: str, seq: int) -> Entry | None:
    rows = con.execute(f"SELECT {ENTRY_COLUMNS} FROM {rel} WHERE seq = ?", [seq]).fetchall()
    return _rows_to_entries(rows)[0] if rows else None


def iter_entries(
    con: duckdb.DuckDBPyConnection,
    rel: str,
    *,
    from_seq: int = 0,
    actions: Sequence[str] | None = None,
    batch: int = 2000,
) -> Iterator[Entry]:
    """Stream entries in seq order, in pages (keyset pagination: memory stays flat)."""
    cur = from_seq
    where_actions = " AND action IN (SELECT unnest(?))" if actions else ""
    while True:
        params: list[Any] = [cur]
        if actions:
            params.append(list(actions))
        params.append(batch)
        rows = con.execute(
            f"SELECT {ENTRY_COLUMNS} FROM {rel} WHERE seq >= ?{where_actions} ORDER BY seq LIMIT ?", params
        ).fetchall()
        if not rows:
            return
        yield from _rows_to_entries(rows)
        cur = int(rows[-1][0]) + 1


def _like(value: str) -> tuple[str, str]:
    """``=`` for a plain value, ``LIKE`` when it has a ``*`` glob."""
    if "*" in value:
        return "LIKE", value.replace("%", r"\%").replace("_", r"\_").replace("*", "%")
    return "=", value


def entries(
    con: duckdb.DuckDBPyConnection,
    rel: str,
    *,
    source: str | None = None,
    actor: str | None = None,
    kind: str | None = None,
    action: str | None = None,
    environment: str | None = None,
    outcome: str | None = None,
    mode: str | None = None,
    rail: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    text: str | None = None,
    limit: int = 100,
    offset: int = 0,
    ascending: bool = False,
) -> list[Entry]:
    """Filtered entries, newest first (``ascending`` for oldest first). ``*`` globs in actor/action."""
    where: list[str] = []
    params: list[Any] = []
    for col, val in (
        ("source", source),
        ("actor_kind", kind),
        ("environment", environment),
        ("outcome", outcome),
        ("mode", mode),
    ):
        if val is not None:
            where.append(f"{col} = ?")
            params.append(val)
    if actor is not None:
        op, v = _like(actor)
        where.append(f"(actor_id {op} ? OR on_behalf_of {op} ?)")
        params += [v, v]
    if action is not None:
        op, v = _like(action)
        where.append(f"action {op} ?")
        params.append(v)
    if rail is not None:
        where.append("list_contains(rails, ?)")
        params.append(int(rail))
    if since is not None:
        where.append("occurred_at >= ?")
        params.append(since)
    if until is not None:
        where.append("occurred_at < ?")
        params.append(until)
    if text:
        where.append("contains(lower(decode(entry)), lower(?))")
        params.append(text)
    sql = f"SELECT {ENTRY_COLUMNS} FROM {rel}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY seq {'ASC' if ascending else 'DESC'} LIMIT ? OFFSET ?"
    params += [int(limit), int(offset)]
    return _rows_to_entries(con.execute(sql, params).fetchall())


def violations(
    con: duckdb.DuckDBPyConnection,
    rel: str,
    *,
    rail: int | None = None,
    since: datetime | None = None,
    limit: int = 1000,
) -> list[Entry]:
    # A gate-mode deny is an action that was stopped before it ran, not a violation.
    return entries(con, rel, outcome="deny", mode="detect", rail=rail, since=since, limit=limit)


def find(
    con: duckdb.DuckDBPyConnection,
    rel: str,
    *,
    commit: str | None = None,
    pull_request: str | None = None,
    resource: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 10000,
) -> list[Entry]:
    """Entries about a change (all given filters must hold), oldest first, plus the approval events
    whose grants those entries used (the attribution chain an auditor asks for)."""
    where: list[str] = []
    params: list[Any] = []
    if commit is not None:
        where.append('("commit" = ? OR starts_with("commit", ?))' if len(commit) >= 7 else '"commit" = ?')
        params += [commit, commit] if len(commit) >= 7 else [commit]
    if pull_request is not None:
        where.append("pull_request = ?")
        params.append(pull_request)
    if resource is not None:
        where.append("resource_id = ?")
        params.append(resource)
    if since is not None:
        where.append("occurred_at >= ?")
        params.append(since)
    if until is not None:
        where.append("occurred_at < ?")
        params.append(until)
    if not where:
        raise ValueError("find() needs at least one of commit, pull_request, resource, since, until")
    cond = " AND ".join(where)
    sql = (
        f"WITH hit AS (SELECT * FROM {rel} WHERE {cond}) "
        f"SELECT {ENTRY_COLUMNS} FROM hit "
        f"UNION SELECT {ENTRY_COLUMNS} FROM {rel} WHERE request_id IS NOT NULL AND action LIKE 'approval:%' "
        f"AND request_id IN (SELECT approval_used FROM hit WHERE approval_used IS NOT NULL) "
        f"ORDER BY seq LIMIT ?"
    )
    return _rows_to_entries(con.execute(sql, [*params, int(limit)]).fetchall())


def stats(con: duckdb.DuckDBPyConnection, rel: str) -> dict[str, Any]:
    """Counts for overviews: size, violations by rail and severity, agents, sources."""
    size, violations_n, agents, first, last = first_row(
        con.execute(
            f"SELECT count(*), count(*) FILTER ({VIOLATION_SQL}), "
            f"count(DISTINCT actor_id) FILTER (actor_kind = 'agent'), min(occurred_at), max(occurred_at) FROM {rel}"  # noqa: E501
        )
    ) or (0, 0, 0, None, None)
    by_rail = dict(
        con.execute(
            f"SELECT r, count(*) FROM (SELECT unnest(rails) AS r FROM {rel} WHERE {VIOLATION_SQL}) GROUP BY r ORDER BY r"  # noqa: E501
        ).fetchall()
    )
    by_sev = dict(
        con.execute(
            f"SELECT severity, count(*) FROM {rel} WHERE {VIOLATION_SQL} GROUP BY severity ORDER BY severity"
        ).fetchall()
    )
    by_source = dict(
        con.execute(f"SELECT source, count(*) FROM {rel} GROUP BY source ORDER BY source").fetchall()
    )
    return {
        "size": int(size),
        "violations": int(violations_n),
        "violations_by_rail": {int(k): int(v) for k, v in by_rail.items()},
        "violations_by_severity": {str(k): int(v) for k, v in by_sev.items()},
        "active_agents": int(agents),
        "events_by_source": {str(k): int(v) for k, v in by_source.items()},
        "first_event_at": first,
        "last_event_at": last,
    }
