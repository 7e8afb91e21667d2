"""Ledger writes: batching, duplicates, offsets/dead letters/alerts in one transaction, checkpoints, segments."""  # noqa: E501

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.config import Config
from core.deadletter import DeadLetter
from core.errors import LedgerError, LedgerLockedError
from ledger import Ledger, SegmentReader, merkle
from ledger import _dedup as dedup_mod
from ledger import store as store_mod
from ledger.checkpoint import read_checkpoints_file
from tests.unit.ledger.conftest import make_config, make_decision, make_event, records


def test_append_assigns_seqs_skips_duplicates_and_agrees_with_reference(ledger: Ledger) -> None:
    r = ledger.append(records(7))
    assert r.appended == [(i, f"test:{i}") for i in range(7)]
    r2 = ledger.append(records(5, start=5) + [(make_event(9), make_decision())])
    assert r2.duplicates == ["test:5", "test:6", "test:9"]  # in the ledger, then within the batch
    assert [s for s, _ in r2.appended] == [7, 8, 9]
    assert ledger.size == 10
    assert ledger.existing(["test:1", "nope"]) == {"test:1"}
    leaves = [e.entry_bytes for e in ledger.iter_records()]
    assert [e.seq for e in ledger.iter_records()] == list(range(10))
    for n in (1, 5, 10):
        assert ledger.root_at(n) == merkle.root_hash(leaves[:n])
        for i in range(n):
            assert ledger.inclusion_proof(i, n) == merkle.inclusion_proof(leaves[:n], i)
        for m in range(n + 1):
            assert ledger.consistency_proof(m, n) == merkle.consistency_proof(leaves[:n], m)


@pytest.mark.parametrize("per_statement", [3, 2048], ids=["several-statements", "one-statement"])
def test_existing_answers_alike_from_the_index_and_from_duckdb(
    config: Config, monkeypatch: pytest.MonkeyPatch, per_statement: int
) -> None:
    monkeypatch.setattr(dedup_mod, "_SEQS_PER_STATEMENT", per_statement)
    ids = [f"test:{i}" for i in range(0, 60, 3)] + ["nope", "test:1", "test:1", "test:39"]
    expected = {f"test:{i}" for i in range(0, 40, 3)} | {"test:1", "test:39"}
    with Ledger.open(config) as ledger:
        ledger.append(records(40))
        assert ledger.existing(ids) == expected  # the writer: its event-id index, confirmed
        lookup = ledger.existing_lookup()
        try:
            assert lookup(ids) == expected
            assert lookup([]) == set()
        finally:
            lookup.close()
    with Ledger.open(config, read_only=True) as reader:  # no index: one semi join in DuckDB
        assert reader.existing(ids) == expected


def test_entry_round_trips_event_and_decision(ledger: Ledger) -> None:
    ev, dec = make_event(3), make_decision(deny=True)
    ledger.append([(ev, dec)])
    got = ledger.get("test:3")
    assert got is not None and got.event == ev and got.decision == dec
    assert got.leaf_hash == merkle.leaf_hash(got.entry_bytes)
    assert ledger.get("missing") is None


def test_offsets_dead_letters_and_alerts_commit_with_entries(ledger: Ledger) -> None:
    dl = DeadLetter.of(source="cloudtrail", reason="not-json", detail="x", raw=b"\xff{", where="f.json:1")
    r = ledger.append(records(4), dead_letters=[dl], offsets={"g": {("railbook.events", 0): 4}})
    assert r.dead_lettered == 1
    assert ledger.committed_offsets("g") == {("railbook.events", 0): 4}
    ledger.append(records(2, start=4), offsets={"g": {("railbook.events", 0): 6}})
    assert ledger.committed_offsets("g") == {("railbook.events", 0): 6}
    assert ledger.dead_letter_counts() == {"not-json": 1}
    assert ledger.dead_letters()[0].raw == b"\xff{"
    pending = ledger.pending_alerts()
    assert [a["event_id"] for a in pending] == ["test:1", "test:3", "test:5"]  # odd ones deny
    ledger.mark_alert(pending[0]["alert_id"], "webhook", "sent")
    assert len(ledger.pending_alerts()) == 2


def test_failed_append_rolls_back_entries_and_offsets_together(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger.append(records(3), offsets={"g": {("t", 0): 3}})

    # the offsets statement fails inside the transaction, after the entries were inserted
    failing = "INSERT INTO offsets SELECT NULL, NULL, NULL, NULL, NULL"
    monkeypatch.setattr(store_mod, "UPSERT_OFFSETS", failing)
    with pytest.raises(LedgerError, match="rolled back"):
        ledger.append(records(3, start=3), offsets={"g": {("t", 0): 6}})
    monkeypatch.undo()
    assert ledger.size == 3 and ledger.committed_offsets("g") == {("t", 0): 3}
    assert ledger.get("test:4") is None
    r = ledger.append(records(3, start=3), offsets={"g": {("t", 0): 6}})  # in-memory tree state intact
    assert [s for s, _ in r.appended] == [3, 4, 5]
    assert ledger.root_at(6) == merkle.root_hash([e.entry_bytes for e in ledger.iter_records()])


def test_crash_before_commit_leaves_nothing_after_reopen(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    with Ledger.open(config) as led:
        led.append(records(2), offsets={"g": {("t", 0): 2}})
        con = led.connection()
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM offsets")  # a half-done transaction that never commits
    with Ledger.open(config) as led:
        assert led.size == 2 and led.committed_offsets("g") == {("t", 0): 2}


def test_checkpoints_every_n_to_db_file_and_segments(tmp_path: Path) -> None:
    config = make_config(tmp_path, checkpoint_every=10)
    with Ledger.open(config) as led:
        assert led.append(records(9)).checkpoint is None
        cp = led.append(records(3, start=9)).checkpoint
        assert cp is not None and cp.tree_size == 12
        assert cp.root_hash == led.root_at(12)
        cp.verify(led.verifier())
        led.append(records(2, start=12))
        assert led.checkpoint() is not None and led.checkpoint() is None
    assert [c.tree_size for c in read_checkpoints_file(config.checkpoints_file)] == [12, 14]
    assert (config.key_path.stat().st_mode & 0o777) == 0o600
    with SegmentReader.from_config(config) as sr:
        assert sr.size == 14
        assert sr.stats()["segments"] == 2
        assert sr.verify().ok
        assert {e.event.event_id for e in sr.violations(rail=1)} == {f"test:{i}" for i in range(1, 14, 2)}
        assert sr.get("test:2") is not None
        assert sr.prove("test:2")["tree_size"] == 14


def _segment_bounds(config: Config) -> list[tuple[int, int]]:
    names = sorted(p.name for p in config.segments_dir.glob("entries-*.parquet"))
    return [(int(n.split("-")[1]), int(n.split("-")[2])) for n in names]


def test_segments_are_exported_in_the_background_and_flush_waits(tmp_path: Path) -> None:
    config = make_config(tmp_path, checkpoint_every=5, segment_seconds=0)
    with Ledger.open(config) as led:
        for k in range(4):
            led.append_many([records(5, start=10 * k), records(5, start=10 * k + 5)])
        led.flush()
        ends = sorted(c.tree_size for c in led.checkpoints())
        assert ends == [5 * i for i in range(1, 9)]
        assert [end for _, end in _segment_bounds(config)] == ends  # one segment per checkpoint
        with SegmentReader.from_config(config) as sr:
            assert sr.size == 40 and sr.verify().ok


def test_checkpoints_under_load_share_a_segment(tmp_path: Path) -> None:
    """Checkpoints signed faster than ``segment_seconds`` are covered by one export: the first at
    once, the rest together once it is due; each segment ends at a signed checkpoint."""
    config = make_config(tmp_path, checkpoint_every=5, segment_seconds=30)
    with Ledger.open(config) as led:
        for k in range(8):
            assert led.append(records(5, start=5 * k)).checkpoint is not None
        led.flush()  # hurries the held export instead of waiting 30 s
        ends = {c.tree_size for c in led.checkpoints()}
        bounds = _segment_bounds(config)
        assert bounds[0] == (0, 5) and bounds[-1][1] == 40
        assert len(bounds) < 8  # not one per checkpoint
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))  # contiguous
        assert {end for _, end in bounds} <= ends
        with SegmentReader.from_config(config) as sr:
            assert sr.size == 40 and sr.verify().ok


def test_a_held_segment_is_published_when_due_without_a_flush(tmp_path: Path) -> None:
    """An idle writer still publishes: the held export runs at its due time on its own."""
    config = make_config(tmp_path, checkpoint_every=5, segment_seconds=0.5)
    with Ledger.open(config) as led:
        for k in range(3):
            led.append(records(5, start=5 * k))
        deadline = time.monotonic() + 10
        while [end for _, end in _segment_bounds(config)][-1:] != [15] and time.monotonic() < deadline:
            time.sleep(0.05)
        bounds = _segment_bounds(config)
        assert bounds[0] == (0, 5) and bounds[-1][1] == 15  # the later ones held, then published


def test_failed_segment_export_raises_on_flush_and_is_redone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path, checkpoint_every=5)
    with Ledger.open(config) as led:
        real = store_mod.segment_name  # type: ignore[attr-defined]
        monkeypatch.setattr(store_mod, "segment_name", lambda *a: "missing-dir/x.parquet")
        assert led.append(records(5)).checkpoint is not None  # the append itself succeeds
        with pytest.raises(LedgerError, match="segment"):
            led.flush()
        monkeypatch.setattr(store_mod, "segment_name", real)
        led.append(records(5, start=5))
        led.flush()
        assert [p.name.split("-")[1:3] for p in sorted(config.segments_dir.glob("entries-*.parquet"))] == [
            ["000000000000", "000000000010"]
        ]
    with SegmentReader.from_config(config) as sr:
        assert sr.size == 10 and sr.verify().ok


def test_reopen_resumes_tree_and_chain(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    with Ledger.open(config) as led:
        led.append(records(13))
    with Ledger.open(config) as led:
        led.append(records(6, start=13))
        leaves = [e.entry_bytes for e in led.iter_records()]
        assert led.root_at(19) == merkle.root_hash(leaves)


def test_second_process_gets_a_clear_lock_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = make_config(tmp_path)
    with Ledger.open(config):
        code = (
            "import sys; from core.config import Config; from ledger import Ledger\n"
            "from core.errors import LedgerLockedError\n"
            f"c = Config.model_validate({{'ledger': {{'path': {str(config.ledger_path)!r}}}}})\n"
            "try:\n    Ledger.open(c, read_only=True)\nexcept LedgerLockedError as e:\n    print('LOCKED', e); sys.exit(3)\n"  # noqa: E501
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path.cwd())
    assert out.returncode == 3, out.stderr
    assert "held by another process" in out.stdout and str(config.ledger_path) in out.stdout
    assert LedgerLockedError.__mro__[1] is LedgerError


def test_queries(ledger: Ledger) -> None:
    ledger.append(records(20))
    assert len(ledger.entries(outcome="deny")) == 10
    assert [e.seq for e in ledger.entries(limit=3)] == [19, 18, 17]
    assert all(e.event.action == "sql:AlterTable" for e in ledger.entries(action="sql:*"))
    assert len(ledger.entries(actor="agent:coder-1")) == 7
    assert ledger.entries(text="FLAKY MIGRATION", limit=1)
    assert [e.seq for e in ledger.find(commit=f"{5:040x}")] == [5]
    assert len(ledger.find(pull_request="https://github.com/o/r/pull/2")) == 3
    st = ledger.stats()
    assert st["size"] == 20 and st["violations_by_rail"] == {1: 10} and st["pending_alerts"] == 10
    with pytest.raises(LedgerError):
        ledger.find()
