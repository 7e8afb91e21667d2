"""Stored levels (tiles of height 8): on-demand nodes agree with ``ledger.merkle``; verify checks
exactly the stored levels; a ledger of the older all-levels layout is migrated on a writer's open."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from pathlib import Path

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import Ledger, merkle, proofs
from ledger._schema import NODES_LAYOUT
from ledger.proofs import TILE_HEIGHT, CompactRange, NodeId, node_position
from ledger.verify import verify_ledger
from tests.unit.ledger.conftest import make_config, records

_BIG = 140_000  # past two level-16 nodes: a level-17 node is derived from stored level-16 nodes


@functools.cache
def _tree() -> tuple[list[bytes], dict[NodeId, bytes]]:
    """Entries and the stored nodes (leaves + levels 8, 16) of a tree of ``_BIG`` leaves."""
    leaves = [b"leaf %d" % i for i in range(_BIG)]
    hashes = [merkle.leaf_hash(d) for d in leaves]
    stored: dict[NodeId, bytes] = {(0, i): h for i, h in enumerate(hashes)}
    cr = CompactRange()
    nodes: list[tuple[int, int, bytes]] = []
    for h in hashes:
        cr.append(h, nodes, every=TILE_HEIGHT)
    assert {lv for lv, _, _ in nodes} == {8, 16}
    stored.update(((lv, i), h) for lv, i, h in nodes)
    return leaves, stored


def _root(n: int) -> bytes:
    """The root of the first ``n`` leaves by the append-side border (independent of derivation)."""
    _, stored = _tree()
    cr = CompactRange()
    for i in range(n):
        cr.append(stored[(0, i)])
    return cr.root()


def _fetcher(stored: dict[NodeId, bytes], reads: list[list[tuple[int, int, int]]]) -> proofs.NodeFetcher:
    """A fetcher that hands ``derive_nodes`` only what ``stored_ranges`` plans (and records the plan)."""

    def fetch(ids: Sequence[NodeId]) -> list[bytes]:
        plan = proofs.stored_ranges(ids)
        reads.append(plan)
        sub = {(b, j): stored[(b, j)] for b, lo, hi in plan for j in range(lo, hi + 1)}
        got = proofs.derive_nodes(ids, sub)
        return [got[n] for n in ids]

    return fetch


def _check(n: int, i: int, m: int) -> None:
    leaves, stored = _tree()
    reads: list[list[tuple[int, int, int]]] = []
    fetch = _fetcher(stored, reads)
    part = leaves[:n]
    if n <= 1100:  # the reference's recursion: exact bytes
        root = merkle.root_hash(part)
        assert proofs.inclusion_proof_at(i, n, fetch) == merkle.inclusion_proof(part, i)
        assert proofs.consistency_proof_at(m, n, fetch) == merkle.consistency_proof(part, m)
    else:  # too slow there: every node of the path is fixed by (i, n), so verifying means equal bytes
        root = _root(n)
        proof = proofs.inclusion_proof_at(i, n, fetch)
        assert merkle.verify_inclusion(merkle.leaf_hash(part[i]), i, n, proof, root)
        old = _root(m)
        assert merkle.verify_consistency(m, n, old, root, proofs.consistency_proof_at(m, n, fetch))
    assert proofs.root_at(n, fetch) == root
    assert CompactRange.load(n, fetch).root() == root
    for plan in reads:  # each range stays inside one aligned block of 256 of one stored level
        for b, lo, hi in plan:
            assert b % TILE_HEIGHT == 0 and lo >> TILE_HEIGHT == hi >> TILE_HEIGHT
    incl = reads[0] if n <= 1100 else reads[1]
    for level in (0, TILE_HEIGHT):  # the leaf's block and the right edge's, per level
        assert len([r for r in incl if r[0] == level]) <= 2


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 1100), data=st.data())
def test_on_demand_nodes_give_the_rfc_proofs_and_roots(n: int, data: st.DataObject) -> None:
    _check(n, data.draw(st.integers(0, n - 1), label="index"), data.draw(st.integers(0, n), label="old_size"))


@settings(max_examples=8, deadline=None)
@given(n=st.one_of(st.integers(65_530, 66_000), st.integers(131_000, _BIG)), data=st.data())
def test_on_demand_nodes_above_level_16(n: int, data: st.DataObject) -> None:
    _check(n, data.draw(st.integers(0, n - 1), label="index"), data.draw(st.integers(1, n), label="old_size"))


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 5000)), max_size=30))
def test_stored_ranges_cover_exactly_the_descendants(ids: list[tuple[int, int]]) -> None:
    plan = proofs.stored_ranges(ids)
    covered = {(b, j) for b, lo, hi in plan for j in range(lo, hi + 1)}
    for lv, i in ids:
        b = lv - lv % TILE_HEIGHT
        need = {(b, j) for j in range(i << (lv - b), (i + 1) << (lv - b))}
        assert need <= covered
    assert len({(b, lo >> TILE_HEIGHT) for b, lo, _ in plan}) == len(plan)


def test_a_missing_stored_node_leaves_its_ancestors_out() -> None:
    hashes = [hashlib.sha256(b"%d" % i).digest() for i in range(8)]
    stored = {(0, i): h for i, h in enumerate(hashes) if i != 5}
    got = proofs.derive_nodes([(1, 0), (1, 2), (2, 1), (3, 0), (0, 5), (0, 4)], stored)
    assert set(got) == {(1, 0), (0, 4)}
    assert got[(1, 0)] == merkle.node_hash(hashes[0], hashes[1])


def _ledger(tmp_path: Path, n: int) -> tuple[Path, list[bytes]]:
    config = make_config(tmp_path, checkpoint_every=100_000)
    with Ledger.open(config) as led:
        led.append(records(n))
        led.checkpoint()
        entries = [e.entry_bytes for e in led.iter_records()]
        rows = led.connection().execute("SELECT level, idx FROM nodes ORDER BY pos").fetchall()
    assert rows == [(8, i) for i in range(n // 256)]  # only the stored level, n / 256 rows
    return config.ledger_path, entries


def test_ledger_stores_only_level_8_and_serves_rfc_proofs(tmp_path: Path) -> None:
    n = 256 * 3 + 45
    _, entries = _ledger(tmp_path, n)
    config = make_config(tmp_path, checkpoint_every=100_000)
    with Ledger.open(config, read_only=True) as ro:
        for size in (1, 255, 256, 257, 512, 700, n):
            assert ro.root_at(size) == merkle.root_hash(entries[:size])
        for i in (0, 255, 256, 511, 767, n - 1):
            assert ro.inclusion_proof(i, n) == merkle.inclusion_proof(entries, i)
        for m in (1, 256, 300, 768, n):
            assert ro.consistency_proof(m, n) == merkle.consistency_proof(entries, m)
    assert verify_ledger(config).ok


def _tamper_then_verify(tmp_path: Path, sql: str, params: list[object]) -> list[str]:
    n = 256 * 3 + 45
    path, _ = _ledger(tmp_path, n)
    con = duckdb.connect(str(path))
    con.execute(sql, params)
    con.close()
    report = verify_ledger(make_config(tmp_path, checkpoint_every=100_000))
    assert not report.ok
    return [p.detail for p in report.problems]


def test_verify_reports_a_modified_stored_node(tmp_path: Path) -> None:
    details = _tamper_then_verify(
        tmp_path, "UPDATE nodes SET hash = ? WHERE level = 8 AND idx = 1", [b"\0" * 32]
    )
    assert any("level 8 index 1" in d for d in details)


def test_verify_reports_a_missing_stored_node(tmp_path: Path) -> None:
    details = _tamper_then_verify(tmp_path, "DELETE FROM nodes WHERE level = 8 AND idx = 1", [])
    assert any("level 8 index 1" in d for d in details)


def test_verify_reports_an_extra_node_row_even_with_a_correct_hash(tmp_path: Path) -> None:
    # a row for the level-3 node (3, 0): not a stored level, its hash correct — still an inserted row
    config = make_config(tmp_path, checkpoint_every=100_000)
    _, entries = _ledger(tmp_path, 256 * 3 + 45)
    nodes = CompactRange().extend(merkle.leaf_hash(d) for d in entries[:8])
    lv, i, h = next(x for x in nodes if x[0] == 3)
    con = duckdb.connect(str(config.ledger_path))
    con.execute("INSERT INTO nodes VALUES (?, ?, ?, ?)", [node_position(lv, i), lv, i, h])
    con.close()
    report = verify_ledger(config)
    assert not report.ok
    assert any("level 8 index 0" in p.detail for p in report.problems)


def test_verify_reports_a_node_row_beyond_the_tree(tmp_path: Path) -> None:
    details = _tamper_then_verify(
        tmp_path, "INSERT INTO nodes VALUES (?, 8, 1000, ?)", [node_position(8, 1000), b"\1" * 32]
    )
    assert any("beyond the current tree" in d for d in details)


def test_a_ledger_of_the_all_levels_layout_is_migrated_on_open(tmp_path: Path) -> None:
    n = 256 * 2 + 9
    path, entries = _ledger(tmp_path, n)
    # rewrite as the older layout: every interior level stored, no layout marker
    cr = CompactRange()
    nodes = cr.extend(merkle.leaf_hash(e) for e in entries)
    con = duckdb.connect(str(path))
    con.execute("DELETE FROM nodes")
    con.execute("DELETE FROM ledger_meta")
    con.executemany(
        "INSERT INTO nodes VALUES (?, ?, ?, ?)", [[node_position(lv, i), lv, i, h] for lv, i, h in nodes]
    )
    con.close()
    config = make_config(tmp_path, checkpoint_every=100_000)
    assert not verify_ledger(config).ok  # the old rows of levels 1..7 are not what this layout stores
    with Ledger.open(config, read_only=True) as ro:  # proofs from an unmigrated file still work
        assert ro.inclusion_proof(300, n) == merkle.inclusion_proof(entries, 300)
    with Ledger.open(config) as led:
        meta = led.connection().execute("SELECT value FROM ledger_meta WHERE key = 'nodes_layout'").fetchone()
        assert meta == (NODES_LAYOUT,)
        levels = led.connection().execute("SELECT DISTINCT level FROM nodes").fetchall()
        assert levels == [(8,)]
        assert led.root_at(n) == merkle.root_hash(entries)
    assert verify_ledger(config).ok
