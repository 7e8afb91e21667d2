"""append_many (pipelined batches), the small-append path, ``existing`` and the upper-level cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import Config
from ledger import Ledger, _query, merkle
from ledger import store as store_mod
from ledger.entry import AppendResult
from ledger.store import SMALL_APPEND
from ledger.verify import verify_ledger
from tests.unit.ledger.conftest import make_config, records


def test_append_many_matches_append_per_batch(tmp_path: Path) -> None:
    config = make_config(tmp_path, checkpoint_every=7)
    got: list[AppendResult] = []
    recs = records(40)
    with Ledger.open(config) as led:
        led.append(recs[:3])
        batches = [recs[3:13], recs[10:20], [], recs[20:21], recs[21:40] + recs[21:23]]
        n = led.append_many(batches, on_result=got.append)
        assert n == 37
        assert [len(r.appended) for r in got] == [10, 7, 1, 19]
        assert got[1].duplicates == ["test:10", "test:11", "test:12"]  # stored: redone via append
        assert got[3].duplicates == ["test:21", "test:22"]  # within the batch
        assert [s for r in got for s, _ in r.appended] == list(range(3, 40))
        assert any(r.checkpoint is not None for r in got)
        assert led.size == 40
        entries = list(led.iter_records())
        assert [e.event.event_id for e in entries] == [f"test:{i}" for i in range(40)]
        assert led.root_at(40) == merkle.root_hash([e.entry_bytes for e in entries])
        led.append(records(2, start=40))  # state adopted correctly: later appends chain on
        led.checkpoint()
    report = verify_ledger(config)
    assert report.ok, report.problems


def test_append_many_large_batches_verify(tmp_path: Path) -> None:
    config = make_config(tmp_path, checkpoint_every=5000)
    recs = records(5000)
    with Ledger.open(config) as led:
        assert led.append_many(recs[k : k + 2100] for k in range(0, 5000, 2100)) == 5000
        assert led.root_at(5000) == merkle.root_hash([e.entry_bytes for e in led.iter_records()])
        led.checkpoint()
    assert verify_ledger(config).ok


@pytest.mark.parametrize("n", [1, 2, SMALL_APPEND, SMALL_APPEND + 1])
def test_small_and_large_appends_store_the_same_columns(tmp_path: Path, n: int) -> None:
    config = make_config(tmp_path)
    recs = records(n)
    with Ledger.open(config) as led:
        for k in range(0, n, 1 if n <= 2 else n):
            led.append(recs[k : k + (1 if n <= 2 else n)])
        rows = (
            led.connection()
            .execute(
                "SELECT seq, event_id, occurred_at, actor_id, rails, policies, approval_used "
                "FROM entries ORDER BY seq"
            )
            .fetchall()
        )
        assert [r[1] for r in rows] == [f"test:{i}" for i in range(n)]
        assert rows[1 % n][4] == ([1] if (1 % n) % 2 == 1 else [])
        alerts = led.pending_alerts()
        assert [a["event_id"] for a in alerts] == [f"test:{i}" for i in range(n) if i % 2 == 1]
        led.checkpoint()
    assert verify_ledger(config).ok


def test_lone_entry_autocommits_and_a_duplicate_leaves_no_open_transaction(tmp_path: Path) -> None:
    """A lone entry (no nodes, alerts, offsets, dead letters) is one autocommitted INSERT; one that
    hits the UNIQUE index is skipped as a duplicate and the connection is usable afterwards."""
    config = make_config(tmp_path, checkpoint_every=1000)
    recs = records(6)
    with Ledger.open(config) as led:
        for i in (0, 2, 4):  # even records are allows: no alert, so each is a lone INSERT
            assert [s for s, _ in led.append([recs[i]]).appended] == [led.size - 1]
        again = led.append([recs[2]])
        assert again.duplicates == ["test:2"] and again.appended == []
        assert led.append([recs[1]]).appended == [(3, "test:1")]  # with its alert: a transaction
        assert [a["event_id"] for a in led.pending_alerts()] == ["test:1"]
        led.checkpoint()
    with Ledger.open(config) as led:  # every append was committed
        assert [e.event.event_id for e in led.iter_records()] == ["test:0", "test:2", "test:4", "test:1"]
    assert verify_ledger(config).ok


def test_append_many_commits_entries_nodes_and_alerts_in_one_call(tmp_path: Path) -> None:
    config = make_config(tmp_path, checkpoint_every=10_000)
    recs = records(600)
    with Ledger.open(config) as led:
        assert led.append_many([recs[:300], recs[300:]]) == 600
        assert len(led.pending_alerts(1000)) == 300  # odd records are detect-mode denies
        nodes = led.connection().execute("SELECT count(*) FROM nodes").fetchone()
        assert nodes == (2,)  # level-8 subtrees [0, 256) and [256, 512)
        led.checkpoint()
    assert verify_ledger(config).ok


def test_wal_is_checkpointed_by_the_segment_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_mod, "_WAL_CHECKPOINT_BYTES", 1)  # fold the log after every segment
    config = make_config(tmp_path, checkpoint_every=50)
    wal = Path(f"{config.ledger_path}.wal")
    with Ledger.open(config) as led:
        led.append_many([records(50, start=k) for k in range(0, 200, 50)])
        led.flush()
        assert not wal.exists() or wal.stat().st_size < 10_000  # the entries are in the database file
        led.append(records(10, start=200))  # appends go on after a background checkpoint
        led.checkpoint()
    assert verify_ledger(config).ok


def test_existing_small_and_large(ledger: Ledger) -> None:
    ledger.append(records(300))
    assert ledger.existing(["test:3", "nope", "test:3"]) == {"test:3"}
    many = [f"test:{i}" for i in range(0, 600, 2)]
    assert ledger.existing(many) == {f"test:{i}" for i in range(0, 300, 2)}
    assert ledger.existing([]) == set()


def _cfg_big(tmp_path: Path) -> Config:
    return make_config(tmp_path, checkpoint_every=100_000)


def test_upper_level_cache_serves_the_same_proofs(tmp_path: Path) -> None:
    config = _cfg_big(tmp_path)
    n = 256 * 2 + 77  # two stored level-8 nodes (held in memory); the level-9 node is derived from them
    with Ledger.open(config) as led:
        led.append(records(200))
        assert led._upper is None  # loaded lazily, by the first proof or root
        led.root_at(200)
        assert led._upper is not None and led._upper.tiles == 0
        led.append(records(n - 200, start=200))  # cache extended by the writer
        assert led._upper.tiles == 2  # (8, 0) and (8, 1)
        writer_proofs = [led.inclusion_proof(i, n) for i in (0, 255, 256, n - 1)]
        writer_cons = led.consistency_proof(300, n)
        entries = [e.entry_bytes for e in led.iter_records()]
        led.checkpoint()
    assert writer_proofs == [merkle.inclusion_proof(entries, i) for i in (0, 255, 256, n - 1)]
    assert writer_cons == merkle.consistency_proof(entries, 300)
    with Ledger.open(config, read_only=True) as ro:
        ro.root_at(n)
        assert ro._upper is not None and ro._upper.tiles == 2  # loaded by the first proof
        uncached = lambda ids: [_query.fetch_nodes(ro.connection(), ids)[x] for x in ids]  # noqa: E731
        from ledger.proofs import consistency_proof_at, inclusion_proof_at

        for i, p in zip((0, 255, 256, n - 1), writer_proofs, strict=True):
            assert ro.inclusion_proof(i, n) == p == inclusion_proof_at(i, n, uncached)
        assert ro.consistency_proof(300, n) == writer_cons == consistency_proof_at(300, n, uncached)


def test_tampered_upper_node_fails_verify_despite_the_cache(tmp_path: Path) -> None:
    config = _cfg_big(tmp_path)
    with Ledger.open(config) as led:
        led.append(records(256 + 10))
        led.checkpoint()
        good = led.inclusion_proof(260, 256 + 10)  # uses the level-8 node [0, 256)
        # tamper while the writer holds the good node in memory
        led.connection().execute("UPDATE nodes SET hash = ? WHERE level = 8", [b"\x00" * 32])
        assert led._upper is not None and led._upper.tiles == 1
        assert led.inclusion_proof(260, 256 + 10) == good  # served from memory: the cache is not verify
    report = verify_ledger(config)
    assert not report.ok
    assert report.problems


def test_level_8_nodes_held_in_memory_and_read_past_them_give_the_rfc_proofs(tmp_path: Path) -> None:
    """Proofs whose level-8 block is held (``UpperNodes.tile_block``) and proofs past the held ones
    (read from the node table, as after a gap) are the RFC's."""
    from ledger.proofs import consistency_proof_at, inclusion_proof_at

    n = 256 * 5 + 3
    with Ledger.open(_cfg_big(tmp_path)) as led:
        led.append(records(n))
        entries = [e.entry_bytes for e in led.iter_records()]
        con = led.connection()
        upper = _query.UpperNodes()
        held = _query.fetch_nodes(con, [(8, 0), (8, 1)])
        upper.add([(8, 1, held[(8, 1)])])  # not index 0 first: a gap, nothing is held
        assert upper.tiles == 0
        upper.add([(8, i, held[(8, i)]) for i in (0, 1)])
        assert upper.tiles == 2 and upper.tile_block(0, 1) == held and upper.tile_block(1, 2) is None

        def fetch(ids: list[tuple[int, int]]) -> list[bytes]:
            got = _query.fetch_nodes(con, ids, upper)
            return [got[x] for x in ids]

        for i in (0, 255, 256, 600, 1000, n - 1):
            assert inclusion_proof_at(i, n, fetch) == merkle.inclusion_proof(entries, i)
        for m in (1, 300, 700, 1280, n - 1):
            assert consistency_proof_at(m, n, fetch) == merkle.consistency_proof(entries, m)
