"""The ledger on DuckDB: the only module that writes the database (STYLE.md rule 4).

One process owns the file for its whole life (DuckDB locks it; DESIGN.md "Facts measured"). Each
``append`` is one transaction holding the entries, their new interior tree nodes, dead letters,
Kafka offsets and alert-outbox rows, so a crash never loses or duplicates an event. After the
commit, a checkpoint is signed when due; it is stored and appended to the external checkpoints
file, and the entries it covers are published as an immutable Parquet segment for readers — by a
background thread on its own DuckDB cursor (DuckDB releases the GIL during the ``COPY``), so the
export overlaps the next appends. Segments are derived data: an export missing after a crash is
redone on the next open; ``flush()`` (and ``close()``) wait until every segment is published.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa

from core.errors import LedgerError, LedgerLockedError, ProofError, SigningKeyError
from core.event import format_time
from ledger import _dedup, _query
from ledger._batch import PreparedRows, prepare, prepare_nodes, prepare_rows, warm_up
from ledger._columns import insert_entries_sql, insert_entries_values_sql, insert_rows_sql
from ledger._idindex import U64, EventIdIndex
from ledger._reads import EntryReads
from ledger._results import first_row
from ledger._schema import SCHEMA, SEGMENT_GLOB, migrate, segment_name
from ledger._segment_schedule import SegmentSchedule
from ledger._txn import (
    INSERT_ALERTS,
    INSERT_DEAD_LETTERS,
    INSERT_NODES,
    UPSERT_OFFSETS,
    Alert,
    Transaction,
    alerts_table,
    dead_letters_table,
    offsets_table,
)
from ledger.checkpoint import Checkpoint, read_checkpoints_file, sign_checkpoint
from ledger.entry import (
    GENESIS_CHAIN,
    AppendResult,
    DeadLetterRow,
    Entry,
)
from ledger.keys import keygen, load_signer
from ledger.proofs import (
    CompactRange,
    NodeId,
    consistency_proof_at,
    inclusion_proof_at,
    root_at,
)

if TYPE_CHECKING:
    from core.config import Config
    from core.deadletter import DeadLetter
    from core.event import CanonicalEvent
    from ledger.note import Signer, Verifier
    from policy import Decision

__all__ = ["MEMORY_LIMIT", "Ledger", "configure_connection", "open_connection"]

logger = logging.getLogger(__name__)

#: entries per encoded-and-inserted chunk of an append
_CHUNK = 2048
#: appends of at most this many entries (the gate's single entry, small pipeline batches) insert with
#: parameter rows: no Arrow table, no helper thread (see ``_append_small``)
SMALL_APPEND = 16
#: the batch's (seq, entry, leaf_hash, chain_hash); DuckDB derives the indexed columns (``ledger._columns``)
_INSERT_ENTRIES = insert_entries_sql("{t}")


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction; none is open when the failed call never began one (or when
    its own COMMIT failed, which ends it)."""
    with contextlib.suppress(duckdb.TransactionException):
        con.execute("ROLLBACK")


#: rows per Parquet row group of a segment: the writer buffers one row group per thread, so
#: DuckDB's default (122,880 rows, ~120 MB of ~1 KB entries) does not fit ``MEMORY_LIMIT``
_SEGMENT_ROW_GROUP = 16_384
#: ZSTD level of segments. DuckDB's default (3) cost 5.8-6.2 us of CPU per row of the benchmark
#: stream's entries (10k-row segments, one DuckDB thread), level 1 4.2-4.6 us for files 1.4 % larger
#: (145 against 143 bytes per row); Snappy 3.9-4.2 us for 269 bytes. The export runs in serve's
#: process beside the appends, so its CPU is serve's throughput.
_SEGMENT_ZSTD_LEVEL = 1


def _copy_segment(con: duckdb.DuckDBPyConnection, start: int, end: int, path: Path) -> None:
    """Write entries ``start <= seq < end`` to ``path`` as Parquet, in seq order, in bounded memory.

    Appends store rows in seq order, so the rows are copied in storage order (DuckDB preserves
    insertion order; a streaming copy) and the file is then checked to hold exactly ``start..end-1``
    in order. Only if it does not (rows rewritten out of place) is it written again with ``ORDER BY``,
    a sort of the whole range. Measured on a 1M-entry ledger under the 256 MB limit: the ordered
    copy of all of it fails (out of memory), as did the unordered one with DuckDB's default row
    groups; the streaming copy takes ~7 s, and 50k entries ~0.2 s (0.3 s with the sort).
    """
    rows = f"SELECT * FROM entries WHERE seq >= {start} AND seq < {end}"
    target = (
        f"TO '{_sql_path(path)}' (FORMAT PARQUET, COMPRESSION ZSTD, "
        f"COMPRESSION_LEVEL {_SEGMENT_ZSTD_LEVEL}, ROW_GROUP_SIZE {_SEGMENT_ROW_GROUP})"
    )
    con.execute(f"COPY ({rows}) {target}")
    bad = first_row(
        con.execute(
            "SELECT count(*) FILTER (WHERE seq IS DISTINCT FROM ? + n - 1), count(*) "
            "FROM (SELECT seq, row_number() OVER () AS n FROM read_parquet(?))",
            [start, str(path)],
        )
    )
    if bad is None or bad[0] != 0 or bad[1] != end - start:
        con.execute(f"COPY ({rows} ORDER BY seq) {target}")


class _Conflict(Exception):
    """An insert hit a UNIQUE constraint (an event already in the ledger); rolled back."""


class _OutOfMemory(LedgerError):
    """DuckDB ran out of its memory limit during an append; rolled back."""


@contextlib.contextmanager
def _rolled_back_on_error(con: duckdb.DuckDBPyConnection, count: int) -> Iterator[None]:
    """Roll back the append of ``count`` entries on any error: a UNIQUE violation becomes
    ``_Conflict`` (the caller re-checks for duplicates), any other DuckDB error a ``LedgerError``."""
    try:
        yield
    except duckdb.ConstraintException as exc:
        _rollback(con)
        raise _Conflict(str(exc)) from exc
    except duckdb.OutOfMemoryException as exc:
        _rollback(con)
        limit = first_row(con.execute("SELECT current_setting('memory_limit')"))
        raise _OutOfMemory(
            f"ledger append of {count} entries failed and was rolled back: DuckDB ran out of its "
            f"memory ({limit[0] if limit else '?'}; a ledger made before 2026-11-25 keeps its event-id "
            f'index in it). Set [ledger] memory_limit higher (e.g. "2GB"). {exc}'
        ) from exc
    except duckdb.Error as exc:
        _rollback(con)
        raise LedgerError(f"ledger append of {count} entries failed and was rolled back: {exc}") from exc
    except BaseException:
        _rollback(con)
        raise


class _ChunkWriter:
    """Inserts prepared chunks into ``entries`` in the caller's transaction, at most one in flight.

    Each insert runs on the executor's thread while the caller encodes the next chunk; leaving the
    ``with`` block waits for the last insert (also on errors, so a ROLLBACK never races an insert)
    and re-raises its error.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, pool: ThreadPoolExecutor) -> None:
        self._con = con
        self._pool = pool
        self._pending: Future[None] | None = None

    def _insert(self, table: pa.Table) -> None:
        txn = Transaction()
        txn.add(table, _INSERT_ENTRIES)
        txn.run(self._con)

    def put(self, table: pa.Table) -> None:
        self._wait()
        self._pending = self._pool.submit(self._insert, table)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def __enter__(self) -> _ChunkWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self._wait()
        elif self._pending is not None:
            wait([self._pending])
            self._pending = None


@dataclass
class _Encoded:
    """A batch encoded on top of ``(start, start_chain)``, ready to commit (``append_many``)."""

    start: int
    start_chain: bytes
    ingested_at: str
    tables: list[pa.Table]
    new_nodes: list[tuple[int, int, bytes]]
    nodes_table: pa.Table | None
    """``new_nodes`` as the Arrow batch for ``nodes`` (built here, off the committing thread)."""
    alerts_table: pa.Table | None
    """``alerts`` as the Arrow batch for the alert outbox (``ledger._txn.alerts_table``)."""
    appended: list[tuple[int, str]]
    alerts: list[Alert]
    duplicates: list[str]
    seq: int
    chain: bytes
    tree: CompactRange
    keys: U64 | None
    """the event-id index's hashes of the appended entries (``_Fresh``)"""


@dataclass
class _Fresh:
    """The records of a batch that are neither stored already nor repeated within it."""

    records: list[tuple[CanonicalEvent, Decision]]
    duplicates: list[str]
    keys: U64 | None
    """their hashes in the event-id index (``None`` without an index)"""

    @classmethod
    def split(
        cls, records: Sequence[tuple[CanonicalEvent, Decision]], already: set[str], keys: U64 | None
    ) -> _Fresh:
        seen: set[str] = set()
        fresh: list[tuple[CanonicalEvent, Decision]] = []
        taken: list[int] = []
        duplicates: list[str] = []
        for k, (ev, dec) in enumerate(records):
            if ev.event_id in already or ev.event_id in seen:
                duplicates.append(ev.event_id)
            else:
                seen.add(ev.event_id)
                fresh.append((ev, dec))
                taken.append(k)
        if keys is not None and len(taken) != len(records):
            keys = keys[np.asarray(taken, dtype=np.intp)]
        return cls(fresh, duplicates, keys)


def _encode_batch(batch: _Fresh, seq: int, chain: bytes, tree: CompactRange) -> _Encoded:
    """Encode a batch on top of a state without touching it (the tree is copied)."""
    start, start_chain = seq, chain
    tree = CompactRange(tree.size, tree.border())
    fresh = batch.records
    now = datetime.now(UTC)
    now_s = format_time(now)
    tables: list[pa.Table] = []
    new_nodes: list[tuple[int, int, bytes]] = []
    appended: list[tuple[int, str]] = []
    alerts: list[Alert] = []
    for off in range(0, len(fresh), _CHUNK):
        chunk = fresh[off : off + _CHUNK]
        prepared, chain = prepare(chunk, seq, now_s, chain, tree, new_nodes)
        tables.append(prepared.table)
        appended += prepared.appended
        alerts += prepared.alerts
        seq += len(chunk)
    return _Encoded(
        start,
        start_chain,
        now_s,
        tables,
        new_nodes,
        prepare_nodes(new_nodes) if new_nodes else None,
        alerts_table(alerts, now) if alerts else None,
        appended,
        alerts,
        batch.duplicates,
        seq,
        chain,
        tree,
        batch.keys,
    )


#: write-ahead log size from which the segment thread checkpoints DuckDB (``Ledger._checkpoint_wal``):
#: half DuckDB's own ``checkpoint_threshold`` (16 MB), so that commits rarely reach that one
_WAL_CHECKPOINT_BYTES = 8 << 20

#: entries a writer appends on one DuckDB connection before it opens a new one (``Ledger._reconnect``,
#: at the next signed checkpoint). DuckDB keeps the metadata of every row group and column segment
#: a connection has written in memory until it is closed: the writer's malloc'd memory grew ~8.5 MB
#: per million entries (~85 MB at 10M, ~850 MB at 100M for a serve that never stops). Reopened every
#: 1M it stayed at 31-43 MB through 4M entries, at the same append speed (docs/design/ledger.md,
#: "Where the writer's memory went").
RECONNECT_ENTRIES = 1_000_000
#: how long a reconnecting writer waits for a process that took the file's lock in between (e.g. a
#: ``railbook verify`` started against the live file) before it gives up
RECONNECT_WAIT_S = 120.0

#: DuckDB's buffer pool for a ledger connection: it caches the blocks it writes and reads up to this,
#: so without a bound a writer's memory grows with the file (measured: 0.5 -> 0.9 GB over 1M entries)
MEMORY_LIMIT = "256MB"
#: DuckDB memory per entry for the ``event_id`` UNIQUE index of a ledger made before 2026-11-25
#: (newer ones keep ids unique with ``ledger._idindex``). It is an ART, which DuckDB keeps whole
#: in memory ("must fit in memory") once inserts of random-looking ids have loaded it: 373 MB at 10M
#: entries (37 bytes each). Under a fixed 256 MB, a ledger of 10M entries reopened by a writer failed
#: its first append (out of memory). 64 bytes leave room for longer ids.
_INDEX_BYTES_PER_ENTRY = 64
#: what a writer needs beside that index: cached blocks, an insert, a segment export
_WORKING_MB = 128


def _index_memory_mb(entries: int) -> int:
    """DuckDB memory (MB) for a ledger of ``entries`` whose event-id index has to be in memory
    whole: ``MEMORY_LIMIT`` or, beyond ~2M entries, ``_WORKING_MB`` plus ``_INDEX_BYTES_PER_ENTRY``
    per entry. A ledger starts at ``MEMORY_LIMIT`` and moves to this only when an append runs out
    (``Ledger._grow_memory``)."""
    return max(_mb(MEMORY_LIMIT), _WORKING_MB + (entries * _INDEX_BYTES_PER_ENTRY >> 20))


def _mb(limit: str) -> int:
    return int(limit.removesuffix("MB"))


def configure_connection(
    con: duckdb.DuckDBPyConnection,
    *,
    point_reads: bool = False,
    memory: str | None = None,
    threads: int | None = None,
) -> None:
    """Bound DuckDB's memory (``memory``: ``[ledger] memory_limit``, default ``MEMORY_LIMIT``;
    larger work spills to its temp directory) and keep its progress bar off the terminal
    (commands draw their own). ``point_reads``: one DuckDB thread, for a connection that serves
    proofs and little else (``railbook prove``/``evidence``); else ``threads`` (``[ledger]
    threads``), if set.

    Applied after the schema statements: building an index over an older ledger needs more.
    """
    try:
        con.execute(f"SET memory_limit = '{memory or MEMORY_LIMIT}'")
    except duckdb.Error as exc:
        raise LedgerError(
            f"[ledger] memory_limit {memory!r} is not a memory size DuckDB takes: {exc}"
        ) from exc
    con.execute("SET enable_progress_bar = false")
    # DuckDB's checkpoint otherwise merges the small row groups each earlier checkpoint wrote into
    # larger ones (its vacuum), so an append-only table's rows are rewritten again and again: the
    # checkpoints inside commits grew from ~6 to ~33 us per entry between 100k and 1M entries and
    # were the whole of the ledger's slowdown. Without it they stay at ~8-12 us. The ledger never
    # deletes, so there is nothing else for vacuum to reclaim; scans and proofs measured unchanged
    # with ~15k-row groups (docs/design/ledger.md).
    con.execute("SET max_vacuum_tasks = 0")
    if point_reads:
        # A proof is one small query (a block of leaves, a block of level-8 nodes); with a second
        # DuckDB thread its tasks wait for that thread to wake: at 10M entries p99 3.8-7.0 ms with
        # two threads, 2.8-4.5 ms with one, in alternating runs. Not for a writer: its appends
        # measured ~5 % slower on one thread, nor for readers, whose scans use every core.
        con.execute("SET threads = 1")
    elif threads:
        con.execute(f"SET threads = {int(threads)}")


def open_connection(path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file, turning a lock conflict into ``LedgerLockedError``."""
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise LedgerLockedError(
                f"ledger {str(path)!r} is held by another process (DuckDB allows one process per file). "
                "Stop that process (e.g. 'railbook serve'), or read the published segments instead "
                "('railbook verify --segments DIR', the dashboard)."
            ) from exc
        raise LedgerError(f"ledger {str(path)!r} cannot be opened: {exc}") from exc
    except duckdb.Error as exc:
        raise LedgerError(f"ledger {str(path)!r} cannot be opened: {exc}") from exc


def _reopen(path: Path) -> duckdb.DuckDBPyConnection:
    """``open_connection`` for writing, waiting up to ``RECONNECT_WAIT_S`` while another process
    holds the file (it can only have taken it in the moment the writer had it closed)."""
    deadline = time.monotonic() + RECONNECT_WAIT_S
    pause = 0.05
    while True:
        try:
            return open_connection(path, read_only=False)
        except LedgerLockedError:
            if time.monotonic() >= deadline:
                raise
            logger.warning("ledger file taken by another process while reconnecting; retrying path=%s", path)
            time.sleep(pause)
            pause = min(2 * pause, 2.0)


def _existing(
    con: duckdb.DuckDBPyConnection, event_ids: Iterable[str], index: EventIdIndex | None
) -> set[str]:
    """Which of ``event_ids`` are stored: from the event-id index (a writer's), else by one semi
    join over the ``event_id`` column (a cost per stored row: ~20 ms at 1M entries)."""
    ids = list(dict.fromkeys(event_ids))
    if not ids:
        return set()
    if index is not None:
        return _dedup.stored(con, index, ids, index.keys(ids))
    rows = con.execute("SELECT event_id FROM entries WHERE event_id IN (SELECT unnest(?))", [ids]).fetchall()
    return {r[0] for r in rows}


class ExistingLookup:
    """``Ledger.existing`` on its own cursor (see ``Ledger.existing_lookup``). The ledger replaces
    the cursor when it reconnects (``Ledger._reconnect``), under the lock a lookup holds."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._cursor: duckdb.DuckDBPyConnection | None = ledger._con.cursor()

    def __call__(self, event_ids: Iterable[str]) -> set[str]:
        with self._ledger._reconnecting:
            if self._cursor is None:
                raise LedgerError("this event-id lookup is closed (or its ledger failed to reopen its file)")
            # the ledger's index of the moment: it drops it if an update fails
            return _existing(self._cursor, event_ids, self._ledger._ids)

    def _release(self) -> None:
        if self._cursor is not None:
            self._cursor.close()
            self._cursor = None

    def close(self) -> None:
        with self._ledger._reconnecting:
            self._release()
        self._ledger._lookups.discard(self)


class Ledger(EntryReads):
    """The append-only, Merkle-tree ledger. Use ``Ledger.open(config)``; a context manager."""

    def __init__(self, config: Config, con: duckdb.DuckDBPyConnection, *, read_only: bool) -> None:
        self.config = config
        self._con = con
        self.read_only = read_only
        self.origin = config.ledger.origin
        self._signer: Signer | None = None
        self._pool: ThreadPoolExecutor | None = None
        #: segment exports (``_publish_segments``): one worker with its own cursor, in checkpoint order
        self._seg_pool: ThreadPoolExecutor | None = None
        self._seg_cursor: duckdb.DuckDBPyConnection | None = None
        self._seg_pending: list[Future[None]] = []
        self._seg_error: BaseException | None = None
        self._segments = SegmentSchedule(config.ledger.segment_seconds)
        """Which checkpoint the next export ends at, and when it starts (under load, not every one)."""
        #: called with each new checkpoint after it is stored (e.g. a Kafka publisher); errors are logged
        self.on_checkpoint: Callable[[Checkpoint], None] | None = None
        self._memory_mb = _mb(MEMORY_LIMIT)
        """DuckDB's memory limit, unless ``[ledger] memory_limit`` fixes it (``_grow_memory``)."""
        #: which event ids are stored (``ledger._idindex``), for a writer; readers ask DuckDB
        self._ids: EventIdIndex | None = None
        #: DuckDB cursor confirming the index's candidates while the helper thread commits
        self._ids_cursor: duckdb.DuckDBPyConnection | None = None
        #: lookups handed out (``existing_lookup``), whose cursors ``_reconnect`` replaces under this lock
        self._lookups: weakref.WeakSet[ExistingLookup] = weakref.WeakSet()
        self._reconnecting = threading.Lock()
        row = first_row(con.execute("SELECT count(*), max(seq) FROM entries"))
        count, max_seq = (int(row[0]), row[1]) if row else (0, None)
        if max_seq is not None and int(max_seq) + 1 != count:
            logger.warning(
                "ledger entries are not contiguous count=%d max_seq=%s; run railbook verify", count, max_seq
            )
        self._size = int(max_seq) + 1 if max_seq is not None else 0
        last = first_row(con.execute("SELECT chain_hash FROM entries WHERE seq = ?", [self._size - 1]))
        self._chain = bytes(last[0]) if last else GENESIS_CHAIN
        #: interior nodes of the upper levels in memory, for proofs only (never used by verify); loaded
        #: on the first proof or root (a one-off CLI command that never asks for one does not pay it)
        self._upper: _query.UpperNodes | None = None
        self._tree = CompactRange.load(self._size, self._fetch_nodes)
        cp = self.latest_checkpoint()
        self._cp_size = cp.tree_size if cp else 0
        self._cp_time = time.monotonic()
        #: ledger size when ``_con`` was opened (``_reconnect``)
        self._connected_at = self._size

    # --- lifecycle ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, config: Config, *, read_only: bool = False, point_reads: bool = False) -> Ledger:
        """Open (and, for writing, create) the ledger at ``config.ledger_path``. ``point_reads``:
        set up for serving proofs (``configure_connection``), as ``railbook prove`` does."""
        path = config.ledger_path
        if read_only and not path.exists():
            raise LedgerError(
                f"no ledger at {str(path)!r}; check --ledger / RAILBOOK_LEDGER, or ingest events first"
            )
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        con = open_connection(path, read_only=read_only)
        try:
            if not read_only:
                for stmt in SCHEMA:
                    con.execute(stmt)
                migrate(con)
            configure_connection(
                con, point_reads=point_reads, memory=config.ledger.memory_limit, threads=config.ledger.threads
            )
            ledger = cls(config, con, read_only=read_only)
            if not read_only:
                ledger._signer = ledger._load_or_create_key()
                ledger._sync_external()
                ledger._ids = _dedup.open_index(path, con, ledger._size)
                warm_up()
        except BaseException:
            con.close()
            raise
        logger.debug("ledger opened path=%s tree_size=%d read_only=%s", path, ledger._size, read_only)
        return ledger

    def _grow_memory(self) -> bool:
        """After an append ran out of memory: raise DuckDB's limit to what the event-id index needs
        at this size (``_index_memory_mb``), or, below ~2M entries, once to twice ``MEMORY_LIMIT``.
        ``False`` (nothing changed) with a configured limit or one already raised that far.

        On demand rather than by size: DuckDB fills whatever it is given with cached blocks, so a
        limit raised ahead of need costs its whole amount (measured at 8-10M entries: RSS peaks of
        1.0-1.08 GB with the limit raised at each checkpoint, 650-680 MB with 256 MB), while ids
        that arrive in order (as in the benchmark) never load the whole index."""
        if self.config.ledger.memory_limit:
            return False
        needed = _index_memory_mb(self._size)
        if self._memory_mb < needed:
            wanted = needed
        elif self._memory_mb == _mb(MEMORY_LIMIT):
            wanted = 2 * self._memory_mb
        else:
            return False
        self._con.execute(f"SET memory_limit = '{wanted}MB'")
        logger.warning(
            "DuckDB ran out of memory in an append at %d entries; memory_limit raised from %dMB to %dMB "
            "(a ledger made before 2026-11-25 keeps its event-id index in memory; "
            "[ledger] memory_limit sets it)",
            self._size,
            self._memory_mb,
            wanted,
        )
        self._memory_mb = wanted
        return True

    def close(self) -> None:
        """Wait for pending segment exports (see ``flush``; a failure is logged), then close the file."""
        try:
            self.flush()
        except LedgerError:
            logger.exception("segment export failed; it is redone on the next open")
        if self._seg_pool is not None:
            self._seg_pool.shutdown(wait=True)
            self._seg_pool = None
        if self._seg_cursor is not None:
            self._seg_cursor.close()
            self._seg_cursor = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._ids is not None:
            self._ids.close()
            self._ids = None
        if self._ids_cursor is not None:
            self._ids_cursor.close()
            self._ids_cursor = None
        self._con.close()

    def flush(self) -> None:
        """Wait until the segment of every checkpoint signed so far is published (segments are
        exported in the background). Raises ``LedgerError`` if an export failed since the last
        flush; the next checkpoint (or the next open) exports the missing entries again."""
        self._segments.hurry()
        pending, self._seg_pending = self._seg_pending, []
        wait(pending)
        error, self._seg_error = self._seg_error, None
        if error is not None:
            raise LedgerError(
                f"publishing a Parquet segment to {str(self.config.segments_dir)!r} failed: {error}; "
                "check that the directory is writable and has space (the export is retried at the next "
                "checkpoint and on the next open)"
            ) from error

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def size(self) -> int:
        """Number of entries (the current tree size)."""
        return self._size

    def _load_or_create_key(self) -> Signer:
        path = self.config.key_path
        if not path.exists():
            verifier = keygen(path, self.origin)
            logger.warning("no signing key found; generated one path=%s verifier=%s", path, verifier.encode())
        signer = load_signer(path)
        if signer.name != self.origin:
            raise SigningKeyError(
                f"signing key {str(path)!r} is named {signer.name!r} but the ledger origin is {self.origin!r}; "  # noqa: E501
                "use the key made for this ledger, or set [ledger] origin to the key's name"
            )
        return signer

    def verifier(self) -> Verifier:
        if self._signer is not None:
            return self._signer.verifier()
        from ledger.keys import load_verifier, public_key_path

        pub = public_key_path(self.config.key_path)
        return load_verifier(pub if pub.exists() else self.config.key_path)

    # --- tree nodes --------------------------------------------------------------------------------

    def _fetch_nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        """NodeFetcher over the store (one indexed query; see ``ledger._query.fetch_nodes``)."""
        return self._pick(_query.fetch_nodes(self._con, ids), ids)

    def _proof_nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        """NodeFetcher for proofs and roots: the upper levels from memory (``_query.UpperNodes``)."""
        if self._upper is None:
            self._upper = _query.UpperNodes.load(self._con)
        return self._pick(_query.fetch_nodes(self._con, ids, self._upper), ids)

    @staticmethod
    def _pick(got: Mapping[NodeId, bytes], ids: Sequence[NodeId]) -> list[bytes]:
        try:
            return [got[n] for n in ids]
        except KeyError as exc:
            raise ProofError(
                f"tree node {exc.args[0]} is missing from the ledger's node table; run 'railbook verify'"
            ) from None

    def root_at(self, tree_size: int) -> bytes:
        if not 0 <= tree_size <= self._size:
            raise ProofError(f"tree size {tree_size} is outside 0..{self._size}")
        return root_at(tree_size, self._proof_nodes)

    def inclusion_proof(self, seq: int, tree_size: int) -> list[bytes]:
        if not 0 <= seq < tree_size <= self._size:
            raise ProofError(
                f"no inclusion proof for seq {seq} in a tree of size {tree_size} (ledger size {self._size})"
            )
        return inclusion_proof_at(seq, tree_size, self._proof_nodes)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        if not 0 <= old_size <= new_size <= self._size:
            raise ProofError(f"no consistency proof from {old_size} to {new_size} (ledger size {self._size})")
        return consistency_proof_at(old_size, new_size, self._proof_nodes)

    # --- writes ------------------------------------------------------------------------------------

    def _writable(self) -> None:
        if self.read_only:
            raise LedgerError("the ledger was opened read-only; open it without read_only to append")

    def existing(self, event_ids: Iterable[str]) -> set[str]:
        """Which of ``event_ids`` are already in the ledger."""
        return _existing(self._con, event_ids, self._ids)

    def existing_lookup(self) -> ExistingLookup:
        """``existing`` on a DuckDB cursor of its own, for a thread other than the one appending
        (a cursor sees committed transactions only). Close it when done."""
        lookup = ExistingLookup(self)
        self._lookups.add(lookup)
        return lookup

    def _split(
        self,
        records: Sequence[tuple[CanonicalEvent, Decision]],
        *,
        on: duckdb.DuckDBPyConnection | None = None,
        pending: _Encoded | None = None,
    ) -> _Fresh:
        """The records to append: stored events (the event-id index, confirmed on ``on``, default the
        writer's connection; DuckDB itself if the index failed) and those of the ``pending`` batch
        (committing now) are duplicates."""
        ids = [ev.event_id for ev, _ in records]
        con, index = on or self._con, self._ids
        if index is None:  # the index failed this run: ask DuckDB
            keys, already = None, _existing(con, ids, None)
        else:
            keys = index.keys(ids)
            already = _dedup.stored(con, index, ids, keys)
        if pending is not None:
            already.update(set(ids).intersection(eid for _, eid in pending.appended))
        return _Fresh.split(records, already, keys)

    def _index_appended(self, keys: U64 | None, first_seq: int) -> None:
        """After a commit: its entries ``first_seq …`` are stored (the index must know before the
        next batch is looked up)."""
        if self._ids is None or keys is None or not len(keys):
            return
        seqs = np.arange(first_seq, first_seq + len(keys), dtype=np.uint64)
        try:
            self._ids.add(keys, seqs, size=self._size, chain=self._chain)
        except Exception:
            # the entries are committed but the index does not know them: it must not answer again.
            # Without it, duplicates are found by DuckDB (slower); the next open rebuilds it.
            logger.exception("event-id index update failed; it is rebuilt on the next open")
            index, self._ids = self._ids, None
            with contextlib.suppress(Exception):
                index.close()
            with contextlib.suppress(OSError):
                index.path.unlink()

    def append(
        self,
        records: Sequence[tuple[CanonicalEvent, Decision]],
        *,
        dead_letters: Sequence[DeadLetter] = (),
        offsets: Mapping[str, Mapping[tuple[str, int], int]] | None = None,
    ) -> AppendResult:
        """Append a batch in one transaction (see the module docstring); duplicates are skipped and reported.

        Duplicates of stored events are found first, in the event-id index (``ledger._idindex``;
        no DuckDB query unless an id is already there). Large batches are encoded in chunks of
        ``_CHUNK``; each chunk is inserted on a helper thread (DuckDB releases the GIL) while the
        next one is encoded, all in the one transaction. A batch that runs out of DuckDB's memory is
        rolled back and, once the limit is raised (``_grow_memory``), appended again.
        """
        self._writable()
        try:
            return self._append_once(records, dead_letters, offsets)
        except _OutOfMemory:
            if not self._grow_memory():
                raise
        return self._append_once(records, dead_letters, offsets)

    def _append_once(
        self,
        records: Sequence[tuple[CanonicalEvent, Decision]],
        dead_letters: Sequence[DeadLetter],
        offsets: Mapping[str, Mapping[tuple[str, int], int]] | None,
    ) -> AppendResult:
        try:
            return self._append(self._split(records), dead_letters, offsets)
        except _Conflict:
            # a ledger made before the event-id index still has DuckDB's UNIQUE constraint; it and
            # the index agree, so this is a bug's safety net: ask DuckDB itself and append again
            ids = [ev.event_id for ev, _ in records]
            already = _existing(self._con, ids, None)
            keys = self._ids.keys(ids) if self._ids is not None else None
        try:
            return self._append(_Fresh.split(records, already, keys), dead_letters, offsets)
        except _Conflict as exc:
            raise LedgerError(f"ledger append failed and was rolled back: {exc.args[0]}") from None

    def _append(
        self,
        batch: _Fresh,
        dead_letters: Sequence[DeadLetter],
        offsets: Mapping[str, Mapping[tuple[str, int], int]] | None,
    ) -> AppendResult:
        fresh, duplicates = batch.records, batch.duplicates
        now = datetime.now(UTC)
        now_s = format_time(now)
        tree = CompactRange(self._tree.size, self._tree.border())
        chain = self._chain
        new_nodes: list[tuple[int, int, bytes]] = []
        appended: list[tuple[int, str]] = []
        alerts: list[Alert] = []
        seq = self._size
        con = self._con
        small: PreparedRows | None = None
        if 0 < len(fresh) <= SMALL_APPEND:
            small, chain = prepare_rows(fresh, seq, now_s, chain, tree, new_nodes)
            appended += small.appended
            alerts += small.alerts
        # one statement (the gate's lone entry, most of the time) commits on its own: an autocommitted
        # INSERT is as atomic and as durable as BEGIN … COMMIT, two round trips fewer
        lone = small is not None and not (new_nodes or alerts or dead_letters or offsets)
        # everything not executed directly below goes to DuckDB as one call (ledger._txn)
        txn = Transaction()
        with _rolled_back_on_error(con, len(fresh)):
            if small is not None:
                if not lone:
                    con.begin()
                self._insert_small(small)
                seq += len(fresh)
            elif len(fresh) > _CHUNK:
                con.begin()
                with _ChunkWriter(con, self._executor()) as writer:
                    for off in range(0, len(fresh), _CHUNK):
                        chunk = fresh[off : off + _CHUNK]
                        prepared, chain = prepare(chunk, seq, now_s, chain, tree, new_nodes)
                        writer.put(prepared.table)
                        appended += prepared.appended
                        alerts += prepared.alerts
                        seq += len(chunk)
            else:
                txn.statements.append("BEGIN TRANSACTION")
                if fresh:
                    prepared, chain = prepare(fresh, seq, now_s, chain, tree, new_nodes)
                    txn.add(prepared.table, _INSERT_ENTRIES)
                    appended += prepared.appended
                    alerts += prepared.alerts
                    seq += len(fresh)
            if not lone:
                if new_nodes:
                    txn.add(prepare_nodes(new_nodes), INSERT_NODES)
                if dead_letters:
                    txn.add(dead_letters_table(dead_letters), INSERT_DEAD_LETTERS)
                if offsets:
                    txn.add(offsets_table(offsets, now), UPSERT_OFFSETS)
                if alerts:
                    txn.add(alerts_table(alerts, now), INSERT_ALERTS)
                txn.statements.append("COMMIT")
                txn.run(con)
        first = self._size
        self._size, self._chain, self._tree = seq, chain, tree
        self._index_appended(batch.keys, first)
        if self._upper is not None:
            self._upper.add(new_nodes)
        if duplicates:
            logger.info("duplicates skipped count=%d first=%s", len(duplicates), duplicates[0])
        logger.debug("appended count=%d tree_size=%d", len(appended), seq)
        cp = self.maybe_checkpoint()
        return AppendResult(appended, duplicates, len(dead_letters), cp)

    def append_many(
        self,
        batches: Iterable[Sequence[tuple[CanonicalEvent, Decision]]],
        *,
        on_result: Callable[[AppendResult], None] | None = None,
    ) -> int:
        """Append a stream of batches, each its own transaction exactly as :meth:`append` (records
        only: dead letters and offsets go through ``append``). Returns the number of entries appended.

        Pipelined: while batch k is inserted and committed on the helper thread, batch k+1 is
        encoded and hashed here; the writer's chain and tree advance only when a commit succeeds.
        Each batch is looked up in the event-id index as it is encoded; the ids of the batch still
        committing count as stored. A batch whose insert fails on a UNIQUE constraint (a ledger made
        before the index) or on memory is redone through :meth:`append` after the pipeline drains,
        so the result is the same as calling ``append`` per batch. ``on_result`` gets each
        batch's :class:`AppendResult` after its commit (and checkpoint, when one is due).
        """
        self._writable()
        total = 0
        pending: tuple[Future[None], _Encoded, Sequence[tuple[CanonicalEvent, Decision]]] | None = None

        def finish(fut: Future[None], enc: _Encoded, batch: Sequence[tuple[CanonicalEvent, Decision]]) -> int:
            try:
                fut.result()
            except (_Conflict, _OutOfMemory):
                res = self.append(batch)  # redo with the stored duplicates looked up / more memory
            else:
                self._size, self._chain, self._tree = enc.seq, enc.chain, enc.tree
                self._index_appended(enc.keys, enc.start)
                if self._upper is not None:
                    self._upper.add(enc.new_nodes)
                res = AppendResult(enc.appended, enc.duplicates, 0, self.maybe_checkpoint())
            if on_result is not None:
                on_result(res)
            return len(res.appended)

        pool = self._executor()
        try:
            for batch in batches:
                if not batch:
                    continue
                if pending is None:
                    base = (self._size, self._chain, self._tree)
                    fresh = self._split(batch)
                else:
                    prev = pending[1]
                    base = (prev.seq, prev.chain, prev.tree)
                    # the writer's connection is busy committing `prev` on the helper thread
                    fresh = self._split(batch, on=self._cursor_for_ids(), pending=prev)
                enc = _encode_batch(fresh, *base)
                if pending is not None:
                    total += finish(*pending)
                    pending = None
                    if self._size != enc.start or self._chain != enc.start_chain:
                        # the previous batch was redone: look up and encode again on the committed state
                        enc = _encode_batch(self._split(batch), self._size, self._chain, self._tree)
                pending = (pool.submit(self._commit_encoded, enc), enc, batch)
            if pending is not None:
                total += finish(*pending)
                pending = None
        finally:
            if pending is not None:
                wait([pending[0]])
        return total

    def _commit_encoded(self, enc: _Encoded) -> None:
        """One transaction for an encoded batch (runs on the helper thread); ``_Conflict`` on a duplicate."""
        if not enc.tables:  # every record of the batch was a duplicate
            return
        con = self._con
        # the whole transaction is one call: DuckDB runs it without the GIL, which this thread would
        # otherwise have to win back from the encoding thread after every statement (each time up to
        # Python's switch interval, 5 ms: measured ~10 us per entry of waiting)
        txn = Transaction(["BEGIN TRANSACTION"])
        txn.add(pa.concat_tables(enc.tables), _INSERT_ENTRIES)
        if enc.nodes_table is not None:
            txn.add(enc.nodes_table, INSERT_NODES)
        if enc.alerts_table is not None:
            txn.add(enc.alerts_table, INSERT_ALERTS)
        txn.statements.append("COMMIT")
        with _rolled_back_on_error(con, len(enc.appended)):
            txn.run(con)

    def _insert_small(self, prepared: PreparedRows) -> None:
        """Insert a few prepared entries as one parameterised ``VALUES`` insert (the gate's path)."""
        n = len(prepared.rows)
        if prepared.columns is not None:  # every column given (ledger._columns.row_values): no JSON in SQL
            rows = zip(prepared.rows, prepared.columns, strict=True)
            self._con.execute(insert_rows_sql(n), [v for row, cols in rows for v in (*row, *cols)])
        else:
            self._con.execute(insert_entries_values_sql(n), [v for row in prepared.rows for v in row])

    def _cursor_for_ids(self) -> duckdb.DuckDBPyConnection:
        if self._ids_cursor is None:
            self._ids_cursor = self._con.cursor()
        return self._ids_cursor

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="railbook-ledger-insert")
        return self._pool

    def committed_offsets(self, group: str) -> dict[tuple[str, int], int]:
        """Next offset to read per (topic, partition), as committed with the entries."""
        rows = self._con.execute(
            "SELECT topic, part, next_offset FROM offsets WHERE group_id = ?", [group]
        ).fetchall()
        return {(str(t), int(p)): int(o) for t, p, o in rows}

    # --- checkpoints -------------------------------------------------------------------------------

    def maybe_checkpoint(self) -> Checkpoint | None:
        """Sign a checkpoint if ``checkpoint_every`` entries or ``checkpoint_seconds`` have passed."""
        if self.read_only or self._size == self._cp_size:
            return None
        due = self._size - self._cp_size >= self.config.ledger.checkpoint_every or (
            time.monotonic() - self._cp_time >= self.config.ledger.checkpoint_seconds
        )
        return self._checkpoint(force=False, wait_segment=False) if due else None

    def checkpoint(self, *, force: bool = False) -> Checkpoint | None:
        """Sign, store, append to the checkpoints file and publish a segment (waiting for it, unlike
        the checkpoints appends trigger). ``None`` if nothing new (unless ``force``, which re-signs
        the current size)."""
        return self._checkpoint(force=force, wait_segment=True)

    def _checkpoint(self, *, force: bool, wait_segment: bool) -> Checkpoint | None:
        self._writable()
        if self._size == self._cp_size and not force:
            return None
        assert self._signer is not None
        cp = sign_checkpoint(self._signer, self.origin, self._size, self._tree.root(), datetime.now(UTC))
        self._con.execute(
            "INSERT INTO checkpoints (tree_size, root_hash, note, created_at) VALUES (?, ?, ?, ?)",
            [cp.tree_size, cp.root_hash, cp.signed_note_text, cp.created_at],
        )
        self._cp_size, self._cp_time = cp.tree_size, time.monotonic()
        self._append_external(cp)
        if self._size - self._connected_at >= RECONNECT_ENTRIES:
            self._reconnect()
        self._publish_segments(cp, urgent=wait_segment)
        logger.info("checkpoint signed tree_size=%d root=%s", cp.tree_size, cp.root_hash.hex())
        if self.on_checkpoint is not None:
            try:
                self.on_checkpoint(cp)
            except Exception:  # a publisher outage must not fail the append that triggered it
                logger.exception("checkpoint publisher failed tree_size=%d", cp.tree_size)
        if wait_segment:
            self.flush()
        return cp

    def _reconnect(self) -> None:
        """Close the DuckDB file and open it again, so that DuckDB lets go of the metadata it holds
        for everything this connection wrote (``RECONNECT_ENTRIES``). Runs between transactions, at
        a checkpoint, on the appending thread: segment exports in flight are waited for, and lookups
        on other threads (``ExistingLookup``) wait on ``_reconnecting``. Every cursor of the old
        connection is closed first: DuckDB frees a database only once its last connection closes.
        The writer's state (size, chain, tree, event-id index) is not DuckDB's and carries over."""
        self._segments.hurry()
        wait(self._seg_pending)  # their errors stay for ``flush`` to report
        path = self.config.ledger_path
        with self._reconnecting:
            for cur in (self._seg_cursor, self._ids_cursor):
                if cur is not None:
                    cur.close()
            self._ids_cursor = None
            for lookup in list(self._lookups):
                lookup._release()
            self._con.close()
            try:
                con = _reopen(path)
                # the configured limit, else the one ``_grow_memory`` left (``MEMORY_LIMIT`` unless raised)
                configure_connection(
                    con,
                    memory=self.config.ledger.memory_limit or f"{self._memory_mb}MB",
                    threads=self.config.ledger.threads,
                )
            except (duckdb.Error, LedgerError) as exc:
                raise LedgerError(
                    f"reopening the ledger {str(path)!r} after {self._size:,} entries failed: {exc}; "
                    "everything appended so far is committed. Restart to continue"
                ) from exc
            self._con = con
            if self._seg_cursor is not None:
                self._seg_cursor = con.cursor()
            for lookup in list(self._lookups):
                lookup._cursor = con.cursor()
        self._connected_at = self._size
        logger.info("ledger connection reopened tree_size=%d", self._size)

    def checkpoints(self) -> list[Checkpoint]:
        rows = self._con.execute(
            "SELECT note, created_at FROM checkpoints ORDER BY tree_size, created_at"
        ).fetchall()
        return [Checkpoint.from_note(n, c) for n, c in rows]

    def latest_checkpoint(self) -> Checkpoint | None:
        row = first_row(
            self._con.execute(
                "SELECT note, created_at FROM checkpoints ORDER BY tree_size DESC, created_at DESC LIMIT 1"
            )
        )
        return Checkpoint.from_note(row[0], row[1]) if row else None

    def _append_external(self, cp: Checkpoint) -> None:
        path = self.config.checkpoints_file
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(cp.to_line())
            fh.flush()
            os.fsync(fh.fileno())

    def _sync_external(self) -> None:
        """After a crash between commit and file append, copy the missing checkpoints out."""
        path = self.config.checkpoints_file
        have = {c.tree_size for c in read_checkpoints_file(path)} if path.exists() else set()
        for cp in self.checkpoints():
            if cp.tree_size not in have:
                self._append_external(cp)
        latest = self.latest_checkpoint()
        if latest is not None:
            self._publish_segments(latest, urgent=True)

    def _publish_segments(self, cp: Checkpoint, *, urgent: bool) -> None:
        """Have the entries up to ``cp`` exported as a segment: at once if ``urgent``, else when the
        schedule says (``ledger._segment_schedule``: under load one export covers several checkpoints)."""
        if not self._segments.offer(cp, urgent=urgent):
            return  # the export queued takes ``cp``
        if self._seg_pool is None:
            self._seg_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="railbook-ledger-segments")
            self._seg_cursor = self._con.cursor()
        self._seg_pending = [f for f in self._seg_pending if not f.done()]
        self._seg_pending.append(self._seg_pool.submit(self._export_offered))

    def _export_offered(self) -> None:
        """On the segment thread: the export ``_publish_segments`` queued, when it is due."""
        cp = self._segments.take()
        if cp is not None:
            self._export_segment(cp)

    def _export_segment(self, cp: Checkpoint) -> None:
        """On the segment thread: write entries ``[last published end, cp.tree_size)`` as one Parquet
        file (tmp file + rename), then record it in ``segments``. Idempotent: a crash between the
        rename and the row leaves a file that the next export rewrites under the same name."""
        con = self._seg_cursor
        assert con is not None
        try:
            seg_dir = self.config.segments_dir
            seg_dir.mkdir(parents=True, exist_ok=True)
            row = first_row(con.execute("SELECT max(end_seq) FROM segments"))
            start = int(row[0]) if row and row[0] is not None else 0
            if start >= cp.tree_size:
                return
            final = seg_dir / segment_name(start, cp.tree_size, cp.root_hash)
            tmp = final.with_name(final.name + ".tmp")
            _copy_segment(con, start, cp.tree_size, tmp)
            os.replace(tmp, final)
            con.execute(
                "INSERT INTO segments (start_seq, end_seq, root_hash, path, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [start, cp.tree_size, cp.root_hash, final.name, datetime.now(UTC)],
            )
            logger.info("segment published path=%s start=%d end=%d", final, start, cp.tree_size)
            self._checkpoint_wal(con)
        except BaseException as exc:
            logger.exception("segment export failed tree_size=%d", cp.tree_size)
            if self._seg_error is None:
                self._seg_error = exc

    def _checkpoint_wal(self, con: duckdb.DuckDBPyConnection) -> None:
        """On the segment thread: fold DuckDB's write-ahead log into the database file (a DuckDB
        ``CHECKPOINT``, not a signed one). DuckDB otherwise does it inside the COMMIT that takes the
        log past ``checkpoint_threshold``, which stalls that append for 0.1–0.4 s (measured at 100k
        entries: about a third of a bulk append's time). Here it overlaps the appends: DuckDB
        checkpoints committed data while a write transaction is open. Only once the log holds
        ``_WAL_CHECKPOINT_BYTES`` (each checkpoint rewrites the table's last, partly filled row group,
        so more frequent ones cost more in all). Best effort: the automatic checkpoint stays the
        fallback; durability is unchanged, every commit is already in the log."""
        wal = Path(f"{self.config.ledger_path}.wal")
        try:
            if wal.stat().st_size < _WAL_CHECKPOINT_BYTES:
                return
        except OSError:  # no log: nothing to fold
            return
        try:
            con.execute("CHECKPOINT")
        except duckdb.Error as exc:
            logger.debug("background DuckDB checkpoint skipped: %s", exc)

    # --- alert outbox ------------------------------------------------------------------------------

    def pending_alerts(self, limit: int = 100) -> list[dict[str, Any]]:
        """Alert rows not yet delivered (status pending or failed), oldest first."""
        cur = self._con.execute(
            "SELECT alert_id, seq, event_id, created_at, rails, severity, policies, status, sink, attempts, "
            "last_error FROM alerts WHERE status IN ('pending', 'failed') ORDER BY alert_id LIMIT ?",
            [int(limit)],
        )
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def mark_alert(self, alert_id: int, sink: str, status: str, error: str | None = None) -> None:
        """Record a delivery attempt (status ``sent`` / ``failed`` / ``dropped``) in one transaction."""
        self._writable()
        if status not in ("sent", "failed", "dropped", "pending"):
            raise LedgerError(f"alert status {status!r} is not one of sent, failed, dropped, pending")
        self._con.execute(
            "UPDATE alerts SET status = ?, sink = ?, last_error = ?, attempts = attempts + 1, updated_at = ? "
            "WHERE alert_id = ?",
            [status, sink, error, datetime.now(UTC), int(alert_id)],
        )

    # --- reads (get, iter_records, entries, violations, find: ledger._reads.EntryReads) ------------

    def get_seq(self, seq: int) -> Entry | None:
        return _query.get_seq(self._con, "entries", seq)

    def dead_letters(self, *, limit: int = 100) -> list[DeadLetterRow]:
        rows = self._con.execute(
            'SELECT id, received_at, source, reason, detail, "where", raw, truncated FROM dead_letters '
            "ORDER BY id DESC LIMIT ?",
            [int(limit)],
        ).fetchall()
        return [DeadLetterRow(int(r[0]), r[1], r[2], r[3], r[4], r[5], bytes(r[6]), bool(r[7])) for r in rows]

    def dead_letter_counts(self) -> dict[str, int]:
        rows = self._con.execute(
            "SELECT reason, count(*) FROM dead_letters GROUP BY reason ORDER BY reason"
        ).fetchall()
        return {str(r): int(n) for r, n in rows}

    def stats(self) -> dict[str, Any]:
        out = _query.stats(self._con, "entries")
        cp = self.latest_checkpoint()
        out["last_checkpoint"] = cp.to_dict() if cp else None
        out["unsigned_entries"] = self._size - (cp.tree_size if cp else 0)
        out["dead_letters"] = self.dead_letter_counts()
        row = first_row(
            self._con.execute("SELECT count(*) FROM alerts WHERE status IN ('pending', 'failed')")
        )
        out["pending_alerts"] = int(row[0]) if row else 0
        return out

    def connection(self) -> duckdb.DuckDBPyConnection:
        """The underlying connection, for read-only use by ledger.verify (internal)."""
        return self._con


def _sql_path(p: Path) -> str:
    return str(p).replace("'", "''")


_ = SEGMENT_GLOB  # re-exported for readers through ledger._schema
