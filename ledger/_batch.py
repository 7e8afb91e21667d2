"""Turn a batch of ``(event, decision)`` into ready-to-insert Arrow columns (internal, pure: no I/O).

This is the append hot path. Each record is turned into dicts once (``to_dict``); the entry bytes
(:func:`ledger.entry.entry_bytes`) and every indexed column are read from those same dicts, so a
column can never disagree with what was hashed. Hashing, the chain and the tree border advance here
too; the caller (``ledger.store``) inserts the result and adopts the new chain and tree only when
its transaction commits.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from ledger.entry import ENTRY_FORMAT_VERSION, entry_bytes, plain_attributes
from ledger.merkle import LEAF_HASH_PREFIX
from ledger.proofs import CompactRange, node_position

if TYPE_CHECKING:
    from core.event import CanonicalEvent
    from policy import Decision

__all__ = [
    "ENTRY_INSERT_COLUMNS",
    "ENTRY_VALUES_ROW",
    "NODE_SCHEMA",
    "Prepared",
    "PreparedRows",
    "prepare",
    "prepare_nodes",
    "prepare_rows",
]

#: the Arrow batch ``prepare`` builds; ``occurred_at`` is the entry's own RFC 3339 text (DuckDB casts it)
_BATCH_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("event_id", pa.string()),
        ("occurred_at", pa.string()),
        ("source", pa.string()),
        ("actor_id", pa.string()),
        ("actor_kind", pa.string()),
        ("on_behalf_of", pa.string()),
        ("credential", pa.string()),
        ("action", pa.string()),
        ("resource_id", pa.string()),
        ("resource_type", pa.string()),
        ("environment", pa.string()),
        ("outcome", pa.string()),
        ("mode", pa.string()),
        ("rails", pa.list_(pa.int32())),
        ("policies", pa.list_(pa.string())),
        ("severity", pa.string()),
        ("policy_version", pa.string()),
        ("commit", pa.string()),
        ("pull_request", pa.string()),
        ("task", pa.string()),
        ("request_id", pa.string()),
        ("approval_used", pa.string()),
        ("entry", pa.binary()),
        ("leaf_hash", pa.binary()),
        ("chain_hash", pa.binary()),
    ]
)

#: ``(column of entries, SQL expression over the batch)``; ``ingested_at`` is the statement's one parameter
ENTRY_INSERT_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (f'"{f.name}"', "CAST(occurred_at AS TIMESTAMPTZ)" if f.name == "occurred_at" else f'"{f.name}"')
    for f in _BATCH_SCHEMA
) + (('"ingested_at"', "CAST(? AS TIMESTAMPTZ)"),)

#: one ``VALUES`` row for the same columns as parameters (small appends skip Arrow: see ``prepare_rows``)
ENTRY_VALUES_ROW = (
    "("
    + ", ".join(
        "CAST(? AS TIMESTAMPTZ)" if expr.startswith("CAST") else "?" for _, expr in ENTRY_INSERT_COLUMNS
    )
    + ")"
)

NODE_SCHEMA = pa.schema(
    [("pos", pa.int64()), ("level", pa.int8()), ("idx", pa.int64()), ("hash", pa.binary())]
)


@dataclass
class Prepared:
    """One prepared chunk: the Arrow batch for ``entries`` and what else the transaction needs."""

    table: pa.Table
    """Columns in ``_BATCH_SCHEMA`` order (see ``ENTRY_INSERT_COLUMNS``)."""
    appended: list[tuple[int, str]]
    """``(seq, event_id)`` per entry."""
    alerts: list[tuple[int, str, list[int], str | None, list[str]]] = field(default_factory=list)
    """``(seq, event_id, rails, severity, policies)`` of each detect-mode deny (the alert outbox)."""


@dataclass
class PreparedRows:
    """A small prepared chunk as parameter rows (one ``ENTRY_VALUES_ROW`` each, ``ingested_at`` last)."""

    rows: list[list[Any]]
    appended: list[tuple[int, str]]
    alerts: list[tuple[int, str, list[int], str | None, list[str]]] = field(default_factory=list)


def prepare(
    records: Sequence[tuple[CanonicalEvent, Decision]],
    start_seq: int,
    ingested_at: str,
    chain: bytes,
    tree: CompactRange,
    new_nodes: list[tuple[int, int, bytes]],
) -> tuple[Prepared, bytes]:
    """Encode, hash and chain ``records`` as seqs ``start_seq…``; advances ``tree`` (new interior
    nodes go to ``new_nodes``) and returns the chunk and the last chain hash."""
    cols, appended, alerts, chain = _encode(records, start_seq, ingested_at, chain, tree, new_nodes)
    table = pa.Table.from_arrays(
        [
            c if isinstance(c, pa.Array) else pa.array(c, f.type)
            for c, f in zip(cols, _BATCH_SCHEMA, strict=True)
        ],
        schema=_BATCH_SCHEMA,
    )
    return Prepared(table, appended, alerts), chain


def prepare_rows(
    records: Sequence[tuple[CanonicalEvent, Decision]],
    start_seq: int,
    ingested_at: str,
    chain: bytes,
    tree: CompactRange,
    new_nodes: list[tuple[int, int, bytes]],
) -> tuple[PreparedRows, bytes]:
    """:func:`prepare` for a few records: the same values as parameter rows, no Arrow (building and
    registering an Arrow table costs more than the insert itself for one entry)."""
    cols, appended, alerts, chain = _encode(records, start_seq, ingested_at, chain, tree, new_nodes)
    rows = [[*row, ingested_at] for row in zip(*cols, strict=True)]
    return PreparedRows(rows, appended, alerts), chain


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Defer Python's cyclic GC while a chunk is encoded.

    Encoding allocates a few dicts per field of every record (``to_dict``); each allocation burst
    triggers collections that traverse every live object of the process (the caller's batch, the
    policy engine, …): measured 12–15 µs of the ~35 µs per entry. Nothing here creates reference
    cycles (everything is freed by reference counting), so deferring is safe; the previous state is
    restored on exit (another thread that paused too may re-enable it early: harmless).
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


_Encoding = tuple[
    list[Any], list[tuple[int, str]], list[tuple[int, str, list[int], str | None, list[str]]], bytes
]


def _encode(
    records: Sequence[tuple[CanonicalEvent, Decision]],
    start_seq: int,
    ingested_at: str,
    chain: bytes,
    tree: CompactRange,
    new_nodes: list[tuple[int, int, bytes]],
) -> _Encoding:
    with _gc_paused():
        return _encode_records(records, start_seq, ingested_at, chain, tree, new_nodes)


def _encode_records(
    records: Sequence[tuple[CanonicalEvent, Decision]],
    start_seq: int,
    ingested_at: str,
    chain: bytes,
    tree: CompactRange,
    new_nodes: list[tuple[int, int, bytes]],
) -> _Encoding:
    evs = [ev.to_dict() for ev, _ in records]
    decs = [dec.to_dict() for _, dec in records]
    seq = start_seq
    dumps = orjson.dumps
    sort_keys = orjson.OPT_SORT_KEYS
    version = ENTRY_FORMAT_VERSION
    entries = [
        dumps(
            {"decision": d, "event": e, "ingested_at": ingested_at, "seq": seq + k, "v": version},
            option=sort_keys,
        )
        if plain_attributes(e["attributes"])
        else entry_bytes(seq + k, ingested_at, e, d, e["attributes"])
        for k, (e, d) in enumerate(zip(evs, decs, strict=True))
    ]
    sha = hashlib.sha256
    prefix = LEAF_HASH_PREFIX
    leaves = [sha(prefix + b).digest() for b in entries]
    chains: list[bytes] = []
    add_chain = chains.append
    append_leaf = tree.append
    for lh in leaves:
        chain = sha(chain + lh).digest()
        add_chain(chain)
        append_leaf(lh, new_nodes)
    actors = [e["actor"] for e in evs]
    resources = [e["resource"] for e in evs]
    changes = [e["change"] for e in evs]
    cols: list[Any] = [
        list(range(seq, seq + len(entries))),
        [e["event_id"] for e in evs],
        [e["occurred_at"] for e in evs],
        [e["source"] for e in evs],
        [a["id"] for a in actors],
        [a["kind"] for a in actors],
        [a["on_behalf_of"] for a in actors],
        [a["credential"] for a in actors],
        [e["action"] for e in evs],
        [r["id"] for r in resources],
        [r["type"] for r in resources],
        [r["environment"] for r in resources],
        [d["outcome"] for d in decs],
        [d["mode"] for d in decs],
        [d["rails"] for d in decs],
        [[r["policy_id"] for r in d["reasons"]] for d in decs],
        [d["severity"] for d in decs],
        [d["policy_version"] for d in decs],
        [c["commit"] for c in changes],
        [c["pull_request"] for c in changes],
        [c["task"] for c in changes],
        [
            e["approval"]["request_id"] if e["approval"] is not None else e["attributes"].get("request_id")
            for e in evs
        ],
        [d["approval"]["request_id"] if d["approval"] is not None else None for d in decs],
        entries,
        leaves,
        chains,
    ]
    appended = [(seq + k, e["event_id"]) for k, e in enumerate(evs)]
    alerts = [
        (seq + k, e["event_id"], list(d["rails"]), d["severity"], [r["policy_id"] for r in d["reasons"]])
        for k, (e, d) in enumerate(zip(evs, decs, strict=True))
        if d["outcome"] == "deny" and d["mode"] == "detect"
    ]
    return cols, appended, alerts, chain


def prepare_nodes(new_nodes: Sequence[tuple[int, int, bytes]]) -> pa.Table:
    """The Arrow batch for ``nodes``: ``(pos, level, idx, hash)`` in position order."""
    return pa.Table.from_arrays(
        [
            pa.array([node_position(lv, i) for lv, i, _ in new_nodes], pa.int64()),
            pa.array([lv for lv, _, _ in new_nodes], pa.int8()),
            pa.array([i for _, i, _ in new_nodes], pa.int64()),
            pa.array([h for _, _, h in new_nodes], pa.binary()),
        ],
        schema=NODE_SCHEMA,
    )
