"""Turn a batch of ``(event, decision)`` into ready-to-insert rows (internal, pure: no I/O).

This is the append hot path. Each record's entry bytes are its decision's and event's canonical
bytes put into :func:`ledger.entry.entry_template` (see there); hashing, the chain and the tree
border advance here too. Only ``(seq, entry, leaf_hash, chain_hash)`` leave this module for large
batches: every indexed column is derived from the entry bytes by DuckDB during the insert
(``ledger._columns``), so a column can never disagree with what was hashed. Small appends
(``prepare_rows``) also carry the columns as parameters, read from the records' dicts
(``_columns.row_values``, tested equal to the SQL). The caller (``ledger.store``) inserts the
result and adopts the new chain and tree only when its transaction commits.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ledger._columns import row_values
from ledger._txn import Alert
from ledger.entry import entry_template
from ledger.merkle import LEAF_HASH_PREFIX
from ledger.proofs import TILE_HEIGHT, CompactRange, node_position

if TYPE_CHECKING:
    from core.event import CanonicalEvent
    from policy import Decision

__all__ = [
    "BATCH_SCHEMA",
    "NODE_SCHEMA",
    "Prepared",
    "PreparedRows",
    "prepare",
    "prepare_nodes",
    "prepare_rows",
    "warm_up",
]

#: the Arrow batch ``prepare`` builds (``ledger._columns.BASE_COLUMNS``); the rest is derived in SQL
BATCH_SCHEMA = pa.schema(
    [("seq", pa.int64()), ("entry", pa.binary()), ("leaf_hash", pa.binary()), ("chain_hash", pa.binary())]
)

NODE_SCHEMA = pa.schema(
    [("pos", pa.int64()), ("level", pa.int8()), ("idx", pa.int64()), ("hash", pa.binary())]
)


@dataclass
class Prepared:
    """One prepared chunk: the Arrow batch for ``entries`` and what else the transaction needs."""

    table: pa.Table
    """``BATCH_SCHEMA``: seq, entry bytes, leaf hash, chain hash."""
    appended: list[tuple[int, str]]
    """``(seq, event_id)`` per entry."""
    alerts: list[Alert] = field(default_factory=list)
    """``(seq, event_id, rails, severity, policies)`` of each detect-mode deny (the alert outbox)."""


@dataclass
class PreparedRows:
    """A small prepared chunk as parameter rows ``(seq, entry, leaf_hash, chain_hash)``."""

    rows: list[list[Any]]
    appended: list[tuple[int, str]]
    alerts: list[Alert] = field(default_factory=list)
    columns: list[list[Any]] | None = None
    """Per row, its indexed columns (``ledger._columns.row_values``) to append to the row for
    ``insert_rows_sql``; ``None`` when some entry needs the SQL derivation."""


def warm_up() -> None:
    """Build one Arrow array, as ``prepare`` does. pyarrow imports pandas (when installed) on its
    first array: ~0.5 s on this machine, which otherwise lands on the first append — serve's
    first batch, or the first gate request's answer — rather than on opening the ledger."""
    pa.array([], pa.int64())


def prepare(
    records: Sequence[tuple[CanonicalEvent, Decision]],
    start_seq: int,
    ingested_at: str,
    chain: bytes,
    tree: CompactRange,
    new_nodes: list[tuple[int, int, bytes]],
) -> tuple[Prepared, bytes]:
    """Encode, hash and chain ``records`` as seqs ``start_seq…``; advances ``tree`` (its new interior
    nodes of the stored levels go to ``new_nodes``, see ``ledger.proofs.is_stored``) and returns the chunk
    and the last chain hash."""
    cols, appended, alerts, chain = _encode(records, start_seq, ingested_at, chain, tree, new_nodes)
    seqs, entries, leaves, chains = cols
    table = pa.Table.from_arrays(
        [
            pa.array(seqs, pa.int64()),
            pa.array(entries, pa.binary()),
            pa.array(leaves, pa.binary()),
            pa.array(chains, pa.binary()),
        ],
        schema=BATCH_SCHEMA,
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
    columns: list[list[Any] | None] = []
    cols, appended, alerts, chain = _encode(records, start_seq, ingested_at, chain, tree, new_nodes, columns)
    rows = [list(row) for row in zip(*cols, strict=True)]
    plain = [c for c in columns if c is not None]
    return PreparedRows(rows, appended, alerts, plain if len(plain) == len(rows) else None), chain


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Defer Python's cyclic GC while a chunk is encoded.

    Encoding allocates a few dicts per field of every new event (``to_dict``); each allocation burst
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


#: records encoded between two hand-overs of the GIL (a mask: every 64, about half a millisecond)
_YIELD_EVERY = 63
#: ``time.sleep(0)`` releases the GIL so that a thread waiting for it runs at once. Appends commit
#: batch k on a helper thread while batch k+1 is encoded here, and DuckDB's Python client takes the
#: GIL back between the tasks of every query (to check for Ctrl-C): without a hand-over each of those
#: waits up to Python's switch interval (5 ms) while this loop runs, which serialised the two threads
#: (measured: the commit of 5000 entries took 100 ms instead of 40 ms). Costs ~1 us when nobody waits.
_yield_gil = time.sleep


_Encoding = tuple[
    tuple[range, list[bytes], list[bytes], list[bytes]], list[tuple[int, str]], list[Alert], bytes
]


def _encode(
    records: Sequence[tuple[CanonicalEvent, Decision]],
    start_seq: int,
    ingested_at: str,
    chain: bytes,
    tree: CompactRange,
    new_nodes: list[tuple[int, int, bytes]],
    columns: list[list[Any] | None] | None = None,
) -> _Encoding:
    with _gc_paused():
        return _encode_records(records, start_seq, ingested_at, chain, tree, new_nodes, columns)


def _encode_records(
    records: Sequence[tuple[CanonicalEvent, Decision]],
    start_seq: int,
    ingested_at: str,
    chain: bytes,
    tree: CompactRange,
    new_nodes: list[tuple[int, int, bytes]],
    columns: list[list[Any] | None] | None,
) -> _Encoding:
    seq = start_seq
    template = entry_template(ingested_at)
    entries: list[bytes] = []
    add_entry = entries.append
    for k, (ev, dec) in enumerate(records):
        if k & _YIELD_EVERY == _YIELD_EVERY:
            _yield_gil(0)
        add_entry(template % (dec.canonical_bytes, ev.canonical_bytes, seq + k))
        if columns is not None:
            columns.append(row_values(ev.to_dict(), dec.to_dict(), ingested_at))
    sha = hashlib.sha256
    prefix = LEAF_HASH_PREFIX
    leaves = [sha(prefix + b).digest() for b in entries]
    chains: list[bytes] = []
    add_chain = chains.append
    append_leaf = tree.append
    for lh in leaves:
        chain = sha(chain + lh).digest()
        add_chain(chain)
        append_leaf(lh, new_nodes, every=TILE_HEIGHT)
    appended = [(seq + k, ev.event_id) for k, (ev, _) in enumerate(records)]
    alerts = [
        (seq + k, ev.event_id, list(dec.rails), dec.severity, list(dec.policy_ids))
        for k, (ev, dec) in enumerate(records)
        if dec.outcome == "deny" and dec.mode == "detect"
    ]
    return (range(seq, seq + len(entries)), entries, leaves, chains), appended, alerts, chain


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
