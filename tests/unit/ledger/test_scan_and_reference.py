"""The verifier's read-ahead scan and the append benchmark's reference rows."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from ledger import Ledger, verify_ledger
from ledger import verify as verify_mod
from ledger.bench import _entry_rows, _raw_reference
from ledger.store import configure_connection
from tests.unit.ledger.conftest import make_config, records, store_last


def _scan_threads() -> int:
    return sum(t.name == "railbook-verify-scan" for t in threading.enumerate())


def test_prefetched_keeps_order_and_raises_where_the_source_failed() -> None:
    class Boom(Exception):
        pass

    def source() -> Iterator[tuple[int, ...]]:
        yield from ((i,) for i in range(5))
        raise Boom("after five")

    got: list[tuple[int, ...]] = []
    with pytest.raises(Boom, match="after five"):
        for b in verify_mod._prefetched(source(), depth=2):  # type: ignore[arg-type]
            got.append(b)
    assert got == [(i,) for i in range(5)]
    assert _scan_threads() == 0


def test_prefetched_closed_early_stops_its_thread() -> None:
    closed = threading.Event()

    def source() -> Iterator[tuple[int, ...]]:
        try:
            yield from ((i,) for i in range(1_000_000))
        finally:
            closed.set()

    stream = verify_mod._prefetched(source(), depth=2)  # type: ignore[arg-type]
    assert next(stream) == (0,)
    stream.close()
    assert _scan_threads() == 0
    assert closed.wait(5)


def test_verify_falls_back_to_sorted_rows_after_several_read_ahead_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row out of storage order, found after the pass consumed earlier batches, still gives a clean
    second pass over sorted rows (the read-ahead of the first pass is stopped, not mixed in)."""
    config = make_config(tmp_path, checkpoint_every=20)
    with Ledger.open(config) as led:
        led.append(records(60))
        led.checkpoint()
    store_last(config.ledger_path, "entries", "seq", 41)
    small = verify_mod._batches

    def batches_of_7(con: duckdb.DuckDBPyConnection, sql: str, size: int = 7, **kw: bool) -> Iterator:  # type: ignore[type-arg]
        return small(con, sql, 7, **kw)

    monkeypatch.setattr(verify_mod, "_batches", batches_of_7)
    r = verify_ledger(config)
    assert r.ok, r.problems
    assert r.tree_size == 60
    assert _scan_threads() == 0


def test_reference_rows_are_the_rows_the_ledger_stores(tmp_path: Path) -> None:
    """The append target's reference inserts what a Ledger stores for the same entries, every
    column; only seq, event id and the hashes are supplied per insert."""
    config = make_config(tmp_path)
    with Ledger.open(config) as led:
        led.append(records(30))
        stored = led.connection().sql("SELECT * FROM entries ORDER BY seq").to_arrow_table()
    entries = [bytes(e) for e in stored.column("entry").to_pylist()]
    made = _entry_rows(entries)
    assert made.schema.names == stored.schema.names
    keep = [n for n in stored.schema.names if n not in ("leaf_hash", "chain_hash")]
    assert made.select(keep).equals(stored.select(keep))


@pytest.mark.parametrize("same_rows", [True, False])
def test_raw_reference_inserts_every_entry_once(tmp_path: Path, same_rows: bool) -> None:
    config = make_config(tmp_path)
    with Ledger.open(config) as led:
        led.append(records(12))
        entries = [bytes(e) for (e,) in led.connection().execute("SELECT entry FROM entries").fetchall()]
    rows = _entry_rows(entries) if same_rows else None
    path = tmp_path / "raw.duckdb"
    assert _raw_reference(entries, rows, 50, 8, path) > 0
    con = duckdb.connect(str(path), read_only=True)
    configure_connection(con)
    table = "entries" if same_rows else "raw"
    got = con.execute(f"SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM {table}").fetchone()
    assert got == (50, 50, 0, 49)
    if same_rows:
        ids = con.execute("SELECT count(DISTINCT event_id) FROM entries").fetchone()
        assert ids == (50,)
    con.close()


def _segment_seqs(config_dir: Path) -> list[int]:
    files = sorted(config_dir.glob("entries-*.parquet"))
    assert len(files) == 1
    con = duckdb.connect()
    try:
        return [int(s) for (s,) in con.execute("SELECT seq FROM read_parquet(?)", [str(files[0])]).fetchall()]
    finally:
        con.close()


@pytest.mark.parametrize("out_of_place", [False, True])
def test_segment_holds_its_range_in_seq_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out_of_place: bool
) -> None:
    """Segments are copied in storage order without a sort (bounded memory) and in small row groups;
    rows rewritten out of place are still published sorted, and the segments verify."""
    from ledger import store as store_mod

    monkeypatch.setattr(store_mod, "_SEGMENT_ROW_GROUP", 8)  # several row groups, read in parallel
    config = make_config(tmp_path, checkpoint_every=1000)
    with Ledger.open(config) as led:
        led.append(records(100))
    if out_of_place:
        store_last(config.ledger_path, "entries", "seq", 3)
    with Ledger.open(config) as led:
        led.checkpoint()
    assert _segment_seqs(config.segments_dir) == list(range(100))
    assert verify_ledger(config, segments=config.segments_dir).ok


def test_segments_are_zstd_parquet(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    config = make_config(tmp_path, checkpoint_every=1000)
    with Ledger.open(config) as led:
        led.append(records(40))
        led.checkpoint()
    (path,) = config.segments_dir.glob("entries-*.parquet")
    meta = pq.ParquetFile(path).metadata
    assert meta.num_rows == 40
    codecs = {
        meta.row_group(g).column(c).compression
        for g in range(meta.num_row_groups)
        for c in range(meta.num_columns)
    }
    assert codecs == {"ZSTD"}


def _row_group_blocks(con: duckdb.DuckDBPyConnection) -> dict[int, set[int]]:
    rows = con.execute(
        "SELECT row_group_id, block_id FROM pragma_storage_info('entries') WHERE block_id >= 0"
    ).fetchall()
    out: dict[int, set[int]] = {}
    for group, block in rows:
        out.setdefault(int(group), set()).add(int(block))
    return out


def test_a_checkpoint_leaves_rows_already_written_where_they_are(tmp_path: Path) -> None:
    """DuckDB's vacuum merged the small row groups of earlier checkpoints into new ones, writing
    the same entries again at every checkpoint (the append slowdown of large ledgers): the
    ledger's connections turn it off (``configure_connection``)."""
    config = make_config(tmp_path, checkpoint_every=10_000)
    with Ledger.open(config) as led:
        con = led.connection()
        led.append(records(300))
        con.execute("CHECKPOINT")
        first = _row_group_blocks(con)
        for k in range(1, 4):
            led.append(records(300, start=300 * k))
            con.execute("CHECKPOINT")
        later = _row_group_blocks(con)
    assert first and later[0] == first[0]
    assert len(later) == 4  # one row group per checkpoint, none merged
