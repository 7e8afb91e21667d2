"""``railbook verify``: re-derive everything the ledger claims and name the first thing that is wrong.

Checks, in one streaming pass (memory stays flat: O(log n) tree state):

- every leaf hash from the stored entry bytes, every chain hash, the seq embedded in each entry
  against its row (deleted / inserted / reordered rows), every indexed column against the entry
  bytes (one vectorised SQL pass), every stored interior node (levels 8, 16, …) against the tree
  recomputed from the leaves — a modified, missing or extra node row is reported;
- every event id recorded once (``duplicate-event``): the writer keeps them unique with an index
  of its own (``ledger._idindex``) that verify never reads; a duplicate means a faulty writer;
- the root at every stored checkpoint, every checkpoint signature, consistency proofs between
  successive checkpoints built from the stored nodes;
- optionally an external checkpoints file (``against``): each of its signed roots must match the
  tree recomputed from the entries — this catches a database rewritten consistently with a new key;
- optionally the published Parquet segments (``segments``): the same checks over the segments,
  against the same checkpoints.

Problem kinds: ``modified``, ``deleted``, ``inserted``, ``reordered``, ``duplicate-event``,
``bad-signature``, ``root-mismatch``, ``inconsistent-checkpoints``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from core.errors import LedgerError, SigningKeyError
from ledger._columns import column_flags_sql
from ledger._query import fetch_nodes
from ledger._results import first_row
from ledger._schema import SEGMENT_GLOB, parse_segment_name
from ledger.checkpoint import Checkpoint, read_checkpoints_file
from ledger.entry import GENESIS_CHAIN, embedded_seq
from ledger.keys import load_verifier, public_key_path
from ledger.merkle import LEAF_HASH_PREFIX, verify_consistency
from ledger.proofs import TILE_HEIGHT, CompactRange, consistency_proof_at, node_position

if TYPE_CHECKING:
    from core.config import Config
    from ledger.note import Verifier

__all__ = ["Problem", "VerifyReport", "verify_ledger", "verify_stream"]

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
_MAX_PROBLEMS = 50
_ROW_KINDS = frozenset({"modified", "deleted", "inserted", "reordered"})
#: every row whose event id occurs more than once (one hash aggregate: ~1 s at 10M entries)
_DUPLICATE_SQL = """SELECT seq, event_id FROM {rel} WHERE event_id IN
    (SELECT event_id FROM {rel} GROUP BY event_id HAVING count(*) > 1) ORDER BY seq"""


@dataclass(frozen=True)
class Problem:
    """One thing that does not hold."""

    kind: str
    """modified / deleted / inserted / reordered / bad-signature / root-mismatch / inconsistent-checkpoints."""  # noqa: E501
    seq: int | None
    """The first bad sequence number this problem implicates (``None``: not about one entry)."""
    detail: str
    """What was expected, what was found."""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "seq": self.seq, "detail": self.detail}


@dataclass
class VerifyReport:
    """The outcome of a verification. ``ok`` only when nothing at all is wrong."""

    tree_size: int = 0
    entries_checked: int = 0
    checkpoints_checked: int = 0
    external_checkpoints_checked: int = 0
    segments_checked: int = 0
    latest_checkpoint: Checkpoint | None = None
    unsigned_entries: int = 0
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        """The most precise problem: the lowest seq among row-level findings (modified / deleted /
        inserted / reordered), else the lowest seq among tree and checkpoint findings."""
        if not self.problems:
            return None
        return min(
            self.problems,
            key=lambda p: (p.kind not in _ROW_KINDS, p.seq is None, p.seq or 0, p.kind == "modified"),
        )

    def add(self, kind: str, seq: int | None, detail: str) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(Problem(kind, seq, detail))
            logger.debug("verify problem kind=%s seq=%s %s", kind, seq, detail)

    def to_dict(self) -> dict[str, Any]:
        first = self.first
        return {
            "ok": self.ok,
            "tree_size": self.tree_size,
            "entries_checked": self.entries_checked,
            "checkpoints_checked": self.checkpoints_checked,
            "external_checkpoints_checked": self.external_checkpoints_checked,
            "segments_checked": self.segments_checked,
            "latest_checkpoint": self.latest_checkpoint.to_dict() if self.latest_checkpoint else None,
            "unsigned_entries": self.unsigned_entries,
            "seconds": round(self.seconds, 3),
            "first_problem": first.to_dict() if first else None,
            "problems": [p.to_dict() for p in self.problems],
        }


Rows = Iterator[tuple[Sequence[int], Sequence[bytes], Sequence[bytes], Sequence[bytes]]]
NodeRows = Iterator[tuple[Sequence[int], Sequence[bytes]]]
_ENTRY_SQL = "SELECT seq, entry, leaf_hash, chain_hash FROM {rel}"
_NODE_SQL = "SELECT pos, hash FROM nodes"


class _Unordered(Exception):
    """Rows came out of storage not in seq (or pos) order: read them again, sorted."""


#: rows per streamed batch: ~4 MB of entries, which the hashing pass reads while still in cache
#: (measured at 200k entries: 4,096 rows 222-268k entries/s, 50,000 rows 170-236k)
_SCAN_ROWS = 4096


def _batches(
    con: duckdb.DuckDBPyConnection, sql: str, size: int = _SCAN_ROWS, *, increasing: bool = False
) -> Iterator[tuple[pa.Array, ...]]:
    """Stream ``sql`` as Arrow columns, in batches (flat memory).

    ``increasing``: the first column must be strictly increasing across the whole stream (raise
    ``_Unordered`` otherwise) — lets a caller read a table in storage order, without a sort, and
    fall back to ``ORDER BY`` only if the rows are not where appends put them.
    """
    reader = con.cursor().sql(sql).to_arrow_reader(size)  # own cursor: streams alongside other reads
    last: int | None = None
    for batch in reader:
        n = batch.num_rows
        if n == 0:
            continue
        out = tuple(batch.column(i) for i in range(batch.num_columns))
        if increasing:
            keys = out[0]
            if (last is not None and keys[0].as_py() <= last) or (
                n > 1 and not pc.all(pc.less(keys.slice(0, n - 1), keys.slice(1))).as_py()
            ):
                raise _Unordered
            last = keys[n - 1].as_py()
        yield out


def _prefetched(batches: Iterator[tuple[pa.Array, ...]], depth: int = 2) -> Iterator[tuple[pa.Array, ...]]:
    """``batches`` read ahead on a helper thread: DuckDB scans and decompresses the next batch
    (without the GIL) while the caller hashes this one. Errors (``_Unordered`` too) are re-raised
    in the caller at the point of the stream where they happened; closing the generator early
    stops the helper."""
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for b in batches:
                if not put(("batch", b)):
                    return
        except BaseException as exc:  # handed to the caller, raised there
            put(("error", exc))
            return
        put(("end", None))

    thread = threading.Thread(target=run, name="railbook-verify-scan", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join()


def _leave_a_core(con: duckdb.DuckDBPyConnection) -> None:
    """The hashing pass holds the GIL on one core; DuckDB (the column check, the scans) gets the
    others. Measured on 2 cores: 225-255k entries/s with one DuckDB thread, 175-205k with two
    (DuckDB's second thread took the pass's core)."""
    con.execute(f"SET threads = {max(1, (os.cpu_count() or 2) - 1)}")


def _pylist(values: Any) -> list[Any]:
    return values.to_pylist() if hasattr(values, "to_pylist") else list(values)


class _NodeCursor:
    """The stored node stream, readable in runs (fast path) or one node at a time (slow path)."""

    def __init__(self, nodes: NodeRows) -> None:
        self._batches = nodes
        self._pos: list[int] = []
        self._hash: list[bytes] = []
        self._i = 0

    def _fill(self, k: int) -> None:
        while len(self._pos) - self._i < k:
            batch = next(self._batches, None)
            if batch is None:
                return
            self._pos = self._pos[self._i :] + _pylist(batch[0])
            self._hash = self._hash[self._i :] + _pylist(batch[1])
            self._i = 0

    def peek(self, k: int) -> tuple[list[int], list[bytes]]:
        self._fill(k)
        return self._pos[self._i : self._i + k], self._hash[self._i : self._i + k]

    def skip(self, k: int) -> None:
        self._i += k

    def next(self) -> tuple[int, bytes] | None:
        self._fill(1)
        if self._i >= len(self._pos):
            return None
        self._i += 1
        return self._pos[self._i - 1], self._hash[self._i - 1]


class _Pass:
    """One pass over the entries in seq order (see ``verify_stream``).

    Each batch is first checked whole — leaf hashes, chain, embedded seqs, stored nodes compared as
    lists — and only a batch where something differs is walked row by row to name what and where.
    """

    def __init__(
        self, checkpoints: Sequence[tuple[Checkpoint, str]], report: VerifyReport, nodes: NodeRows | None
    ) -> None:
        self.report = report
        self.tree = CompactRange()
        self.chain = GENESIS_CHAIN
        self.expected = 0
        self.by_size: dict[int, list[tuple[Checkpoint, str]]] = {}
        for cp, where in checkpoints:
            self.by_size.setdefault(cp.tree_size, []).append((cp, where))
        self.sizes = sorted(self.by_size)
        self.si = 0
        self.last_good: dict[str, int] = {}  # per source: largest checkpoint size whose root matched
        self.shifted: dict[int, int] = {}  # embedded seq -> row seq, for rows whose embedded seq differs
        self.first_shift: tuple[int, int] | None = None
        self.nodes = _NodeCursor(nodes) if nodes is not None else None
        self.node_reported = False
        self.new_nodes: list[tuple[int, int, bytes]] = []

    def check_roots(self) -> None:
        tree, report = self.tree, self.report
        while self.si < len(self.sizes) and self.sizes[self.si] == tree.size:
            root = tree.root()
            for cp, where in self.by_size[self.sizes[self.si]]:
                good = self.last_good.get(where, 0)
                if cp.root_hash != root:
                    report.add(
                        "root-mismatch",
                        good,
                        f"checkpoint at tree_size {cp.tree_size} ({where}) signs root {cp.root_hash.hex()}, "
                        f"but the entries give {root.hex()}: some entry with seq in "
                        f"[{good}, {cp.tree_size}) is not what was signed",
                    )
                elif cp.tree_size > good:
                    self.last_good[where] = cp.tree_size
            self.si += 1

    def batch(self, seqs: Any, entries: Any, leaves: Any, chains: Any) -> None:
        """One batch of rows (Arrow arrays or Python sequences), in seq order."""
        n = len(seqs)
        start = 0
        while start < n:
            # split at checkpoint sizes, where the root must be compared
            end = n
            if self.si < len(self.sizes):
                end = min(n, max(start + 1, start + self.sizes[self.si] - self.tree.size))
            run = [c[start:end] for c in (seqs, entries, leaves, chains)]
            if not self._fast(*run):
                for row in zip(*map(_pylist, run), strict=True):
                    self._row(*row)
            start = end

    def _fast(self, seqs: Any, entries: Any, leaves: Any, chains: Any) -> bool:
        """Check a run of rows as a whole; on success apply it, else change nothing and return False."""
        n = len(seqs)
        first = self.expected
        if isinstance(seqs, pa.Array):
            if not seqs.equals(pa.array(range(first, first + n), seqs.type)):
                return False
        elif list(seqs) != list(range(first, first + n)):
            return False
        sha = hashlib.sha256
        prefix = LEAF_HASH_PREFIX
        blobs = _pylist(entries)
        computed = [sha(prefix + e).digest() for e in blobs]
        if not _same(computed, leaves):
            return False
        tails = [b',"seq":%d,"v":1}' % s for s in range(first, first + n)]
        if not all(map(bytes.endswith, blobs, tails)):
            return False  # not a v1 tail with the row's seq: let the row walk say what it is
        chain = self.chain
        out: list[bytes] = []
        add = out.append
        for lh in computed:
            chain = sha(chain + lh).digest()
            add(chain)
        if not _same(out, chains):
            return False
        saved = (self.tree.size, self.tree.border())
        new_nodes: list[bytes] = []
        new_pos: list[int] = []
        self.tree.extend_stored_hashes(computed, new_nodes, new_pos)
        if self.nodes is not None and not self.node_reported and new_nodes:
            k = len(new_nodes)
            pos, hashes = self.nodes.peek(k)
            if hashes != new_nodes or pos != new_pos:
                self.tree = CompactRange(*saved)
                return False
            self.nodes.skip(k)
        self.chain = chain
        self.expected = first + n
        self.check_roots()
        return True

    def _row(self, seq: int, entry: bytes, stored_leaf: bytes, stored_chain: bytes) -> None:
        report, expected = self.report, self.expected
        if seq != expected:
            if seq > expected:
                report.add(
                    "deleted",
                    expected,
                    f"entries {expected}..{seq - 1} are missing (next row is seq {seq})",
                )
            else:
                report.add("inserted", seq, f"a second row with seq {seq} (or a row out of order) was found")
            self.expected = seq
        lh = hashlib.sha256(LEAF_HASH_PREFIX + entry).digest()
        if lh != stored_leaf:
            report.add(
                "modified",
                seq,
                f"entry bytes of seq {seq} hash to {lh.hex()}, "
                f"stored leaf hash is {bytes(stored_leaf).hex()}",
            )
        chain = hashlib.sha256(self.chain + lh).digest()
        if chain != stored_chain:
            report.add(
                "modified",
                seq,
                f"chain hash of seq {seq} is {bytes(stored_chain).hex()}, recomputed {chain.hex()}",
            )
            chain = bytes(stored_chain)  # resynchronise so one bad row is reported once
        self.chain = chain
        emb = embedded_seq(entry)
        if emb != seq:
            if self.first_shift is None:
                self.first_shift = (seq, -1 if emb is None else emb)
            if emb is not None and len(self.shifted) < 100_000:
                self.shifted[emb] = seq
        new_nodes = self.new_nodes
        self.tree.append(lh, new_nodes, every=TILE_HEIGHT)
        if new_nodes:
            if self.nodes is not None and not self.node_reported:
                for level, idx, h in new_nodes:
                    got = self.nodes.next()
                    want_pos = node_position(level, idx)
                    if got is None or got[0] != want_pos or got[1] != h:
                        report.add(
                            "root-mismatch",
                            idx << level,
                            f"stored tree node level {level} index {idx} (pos {want_pos}) differs from the "
                            "one recomputed from the entries (modified, missing, or a row inserted before "
                            "it): proofs served from it would be wrong",
                        )
                        self.node_reported = True
                        break
            new_nodes.clear()
        self.expected += 1
        self.check_roots()

    def finish(self) -> None:
        report, tree = self.report, self.tree
        if self.first_shift is not None:
            row, emb = self.first_shift
            if emb > row and row in self.shifted:
                report.add(
                    "reordered",
                    row,
                    f"row seq {row} holds the entry written as seq {emb}, "
                    f"and row seq {self.shifted[row]} holds the entry written as seq {row}",
                )
            elif emb > row:
                report.add(
                    "deleted",
                    row,
                    f"row seq {row} holds the entry written as seq {emb}: "
                    f"entries {row}..{emb - 1} were deleted and the rest renumbered",
                )
            elif emb >= 0:
                report.add(
                    "inserted",
                    emb,
                    f"row seq {row} holds the entry written as seq {emb}: "
                    f"{row - emb} row(s) were inserted at or after seq {emb}",
                )
            else:
                report.add("modified", row, f"entry at row seq {row} has no embedded seq")
        for size in self.sizes[self.si :]:
            for _cp, where in self.by_size[size]:
                report.add(
                    "deleted",
                    tree.size,
                    f"checkpoint at tree_size {size} ({where}) covers more entries than "
                    f"the {tree.size} present: entries {tree.size}..{size - 1} were removed",
                )
        if self.nodes is not None and not self.node_reported and self.nodes.next() is not None:
            report.add("inserted", None, "the node table holds nodes beyond the current tree")
        report.tree_size = tree.size


def _same(computed: list[bytes], stored: Any) -> bool:
    if isinstance(stored, pa.Array):
        return bool(pa.array(computed, stored.type).equals(stored))
    return computed == list(stored)


def verify_stream(
    rows: Rows,
    checkpoints: Sequence[tuple[Checkpoint, str]],
    report: VerifyReport,
    *,
    nodes: NodeRows | None = None,
    total: int = 0,
    progress: Progress | None = None,
    sorted_rows: Callable[[], tuple[Rows, NodeRows | None]] | None = None,
) -> None:
    """Core pass over ``(seq, entry, leaf_hash, chain_hash)`` batches in seq order.

    ``checkpoints``: ``(checkpoint, where)`` pairs whose roots are compared with the recomputed tree
    (signatures are checked by the caller). ``nodes``: stored ``(pos, hash)`` batches in pos order.
    ``sorted_rows``: when given, ``rows`` / ``nodes`` may be in storage order and raise
    ``_Unordered`` if that is not seq / pos order; the pass then starts again over ``sorted_rows()``.
    """
    sub = VerifyReport()
    try:
        _run_pass(rows, checkpoints, sub, nodes, total, progress)
    except _Unordered:
        if sorted_rows is None:
            raise
        logger.info("entries are not stored in seq order; verifying again over sorted rows")
        sub = VerifyReport()
        rows, nodes = sorted_rows()
        _run_pass(rows, checkpoints, sub, nodes, total, progress)
    for p in sub.problems:
        report.add(p.kind, p.seq, p.detail)
    report.tree_size = sub.tree_size
    report.entries_checked = sub.entries_checked


def _run_pass(
    rows: Rows,
    checkpoints: Sequence[tuple[Checkpoint, str]],
    report: VerifyReport,
    nodes: NodeRows | None,
    total: int,
    progress: Progress | None,
) -> None:
    p = _Pass(checkpoints, report, nodes)
    p.check_roots()
    for seqs, entries, leaves, chains in rows:
        p.batch(seqs, entries, leaves, chains)
        report.entries_checked = p.expected
        if progress is not None:
            progress(p.expected, total)
    p.finish()


def _column_check_sql(rel: str) -> tuple[str, list[str]]:
    """One query, one JSON parse per row: the lowest seq whose indexed columns differ from its entry
    (the expressions the writer inserted them with: ``ledger._columns``)."""
    return column_flags_sql(rel)


def _column_check(con: duckdb.DuckDBPyConnection, rel: str, report: VerifyReport) -> None:
    """Every indexed column must equal what the entry bytes say (one vectorised pass in DuckDB),
    and no event id may repeat."""
    sql, names = _column_check_sql(rel)
    try:
        row = first_row(con.execute(sql))
    except duckdb.Error as exc:
        report.add("modified", None, f"indexed columns could not be checked against the entry bytes: {exc}")
        return
    if row is not None:
        bad = [names[i].strip('"') for i, flag in enumerate(row[1:]) if flag]
        report.add(
            "modified",
            int(row[0]),
            f"indexed column(s) {', '.join(bad)} of seq {row[0]} differ from the signed entry bytes",
        )
    _duplicate_check(con, rel, report)


def _duplicate_check(con: duckdb.DuckDBPyConnection, rel: str, report: VerifyReport) -> None:
    """Each event is recorded once: name every later entry of an event id already recorded."""
    try:
        rows = con.execute(_DUPLICATE_SQL.format(rel=rel)).fetchall()
    except duckdb.Error as exc:
        report.add("duplicate-event", None, f"event ids could not be checked for duplicates: {exc}")
        return
    first: dict[str, int] = {}
    for seq, event_id in rows:
        if event_id in first:
            report.add(
                "duplicate-event",
                int(seq),
                f"seq {seq} records event {event_id!r} again (first recorded at seq {first[event_id]})",
            )
        else:
            first[event_id] = int(seq)


def _column_check_async(con: duckdb.DuckDBPyConnection, rel: str) -> Callable[[], VerifyReport]:
    """Start ``_column_check`` on its own cursor and thread (DuckDB releases the GIL, so it runs
    beside the Python hashing pass); the returned function waits and gives its findings."""
    sub = VerifyReport()
    cur = con.cursor()
    thread = threading.Thread(target=_column_check, args=(cur, rel, sub), name="railbook-verify-columns")
    thread.start()

    def result() -> VerifyReport:
        thread.join()
        cur.close()
        return sub

    return result


def _check_signatures(
    cps: Sequence[tuple[Checkpoint, str]], verifier: Verifier, origin: str | None, report: VerifyReport
) -> None:
    for cp, where in cps:
        try:
            cp.verify(verifier)
        except ValueError as exc:
            report.add("bad-signature", None, f"checkpoint at tree_size {cp.tree_size} ({where}): {exc}")
            continue
        if origin is not None and cp.origin != origin:
            report.add(
                "bad-signature",
                None,
                f"checkpoint at tree_size {cp.tree_size} ({where}) is for origin "
                f"{cp.origin!r}, expected {origin!r}",
            )


def _check_consistency(
    con: duckdb.DuckDBPyConnection, cps: Sequence[Checkpoint], size: int, report: VerifyReport
) -> None:
    """Consistency proofs from the stored nodes between successive checkpoints (what auditors get)."""

    def fetch(ids: Sequence[tuple[int, int]]) -> list[bytes]:
        got = fetch_nodes(con, ids)  # what a Ledger serves: stored levels, the rest derived from them
        return [got.get(n, b"") for n in ids]

    ordered = sorted(cps, key=lambda c: (c.created_at, c.tree_size))
    for prev, cur in zip(ordered, ordered[1:], strict=False):
        if cur.tree_size < prev.tree_size:
            report.add(
                "inconsistent-checkpoints",
                cur.tree_size,
                f"checkpoint signed at {cur.created_at} has "
                f"tree_size {cur.tree_size}, smaller than the earlier {prev.tree_size}: the log shrank",
            )
            continue
        if cur.tree_size > size:
            continue
        try:
            proof = consistency_proof_at(prev.tree_size, cur.tree_size, fetch)
        except ValueError:
            proof = []
        if not verify_consistency(prev.tree_size, cur.tree_size, prev.root_hash, cur.root_hash, proof):
            report.add(
                "inconsistent-checkpoints",
                prev.tree_size,
                f"checkpoints at tree_size {prev.tree_size} and "
                f"{cur.tree_size} are not consistent (no valid RFC 9162 consistency proof from the stored tree)",  # noqa: E501
            )


def _load_verifier(config: Config, key: Path | None) -> Verifier:
    if key is not None:
        return load_verifier(key)
    pub = public_key_path(config.key_path)
    if pub.exists():
        return load_verifier(pub)
    if config.key_path.exists():
        return load_verifier(config.key_path)
    raise SigningKeyError(
        f"no public key to check signatures: neither {str(pub)!r} nor {str(config.key_path)!r} exists; "
        "pass --key with the ledger's verifier key"
    )


def verify_ledger(
    config: Config,
    *,
    against: Path | None = None,
    segments: Path | None = None,
    progress: Progress | None = None,
    key: Path | None = None,
) -> VerifyReport:
    """Verify the ledger file of ``config`` (opened read-only); see the module docstring."""
    from ledger.store import configure_connection, open_connection

    started = time.monotonic()
    path = config.ledger_path
    if not path.exists():
        raise LedgerError(f"no ledger at {str(path)!r}; check --ledger / RAILBOOK_LEDGER")
    verifier = _load_verifier(config, key)
    report = VerifyReport()
    con = open_connection(path, read_only=True)
    try:
        configure_connection(con)
        _leave_a_core(con)
        stored = [
            Checkpoint.from_note(n, c)
            for n, c in con.execute("SELECT note, created_at FROM checkpoints ORDER BY created_at").fetchall()
        ]
        # The root_hash column must agree with the signed note (the note is what is trusted).
        for (root_col, size_col), cp in zip(
            con.execute("SELECT root_hash, tree_size FROM checkpoints ORDER BY created_at").fetchall(),
            stored,
            strict=True,
        ):
            if bytes(root_col) != cp.root_hash or int(size_col) != cp.tree_size:
                report.add(
                    "bad-signature",
                    None,
                    f"checkpoint row at tree_size {size_col}: stored columns differ from its signed note",
                )
        cps = [(cp, "ledger") for cp in stored]
        if against is not None:
            try:
                external = read_checkpoints_file(against)
            except (OSError, ValueError) as exc:
                raise LedgerError(
                    f"--against {str(against)!r} cannot be read as a checkpoints file: {exc}"
                ) from exc
            report.external_checkpoints_checked = len(external)
            cps += [(cp, str(against)) for cp in external]
        _check_signatures(cps, verifier, config.ledger.origin, report)
        report.checkpoints_checked = len(stored)
        total_row = first_row(con.execute("SELECT count(*) FROM entries"))
        total = int(total_row[0]) if total_row else 0
        columns = _column_check_async(con, "entries")
        try:
            verify_stream(
                _prefetched(_batches(con, _ENTRY_SQL.format(rel="entries"), increasing=True)),
                cps,
                report,
                nodes=_batches(con, _NODE_SQL, increasing=True),
                total=total,
                progress=progress,
                sorted_rows=lambda: (
                    _prefetched(_batches(con, _ENTRY_SQL.format(rel="entries") + " ORDER BY seq")),
                    _batches(con, _NODE_SQL + " ORDER BY pos"),
                ),
            )
        finally:
            for p in columns().problems:
                report.add(p.kind, p.seq, p.detail)
        _check_consistency(con, stored, report.tree_size, report)
        latest = max(stored, key=lambda c: c.tree_size, default=None)
        report.latest_checkpoint = latest
        report.unsigned_entries = report.tree_size - (latest.tree_size if latest else 0)
        if segments is not None:
            _verify_segments(segments, cps, report)
    finally:
        con.close()
    report.seconds = time.monotonic() - started
    logger.info("verify done ok=%s tree_size=%d seconds=%.2f", report.ok, report.tree_size, report.seconds)
    return report


def _verify_segments(seg_dir: Path, cps: Sequence[tuple[Checkpoint, str]], report: VerifyReport) -> None:
    files = sorted(seg_dir.glob(SEGMENT_GLOB))
    if not files:
        report.add("deleted", 0, f"no segments ({SEGMENT_GLOB}) in {str(seg_dir)!r}")
        return
    expect = 0
    for f in files:
        start, end, _ = parse_segment_name(f.name)
        if start != expect:
            report.add(
                "deleted" if start > expect else "inserted",
                expect,
                f"segment {f.name} starts at {start}, expected {expect}",
            )
        expect = end
    mem = duckdb.connect()
    try:
        _leave_a_core(mem)
        glob = str(seg_dir / SEGMENT_GLOB).replace("'", "''")
        mem.execute(f"CREATE VIEW seg AS SELECT * FROM read_parquet('{glob}')")
        sub = VerifyReport()
        sizes = {int(parse_segment_name(f.name)[1]) for f in files}
        columns = _column_check_async(mem, "seg")
        try:
            verify_stream(
                _prefetched(_batches(mem, _ENTRY_SQL.format(rel="seg"), increasing=True)),
                [(cp, f"{where}, checked against segments") for cp, where in cps if cp.tree_size <= expect],
                sub,
                sorted_rows=lambda: (
                    _prefetched(_batches(mem, _ENTRY_SQL.format(rel="seg") + " ORDER BY seq")),
                    None,
                ),
            )
        finally:
            for p in columns().problems:
                sub.add(p.kind, p.seq, p.detail)
        covered = {cp.tree_size for cp, _ in cps}
        for s in sorted(sizes - covered):
            sub.add("root-mismatch", s, f"segment ending at {s} has no signed checkpoint at that size")
        for p in sub.problems:
            report.add(p.kind, p.seq, f"segments: {p.detail}")
        report.segments_checked = len(files)
    finally:
        mem.close()
