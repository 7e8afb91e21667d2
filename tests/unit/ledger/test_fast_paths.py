"""The fast paths (orjson entry bytes, batch preparation, chunked appends, node fetches, the batch
verifier, the synthetic tree) must agree exactly with the reference definitions they replace."""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.canonical import canonical_json
from core.event import CanonicalEvent, parse_time
from ledger import Ledger, _query, merkle, verify_ledger
from ledger import store as store_mod
from ledger._batch import prepare, prepare_rows
from ledger._columns import insert_entries_values_sql, insert_rows_sql
from ledger._schema import SCHEMA
from ledger._synthetic import build_synthetic_tree, synthetic_entry
from ledger.entry import GENESIS_CHAIN, chain_hash, encode_entry, entry_bytes, index_columns
from ledger.proofs import (
    TILE_HEIGHT,
    CompactRange,
    inclusion_proof_at,
    is_stored,
    node_position,
    range_nodes,
    root_at,
)
from policy import ApprovalCheck, Decision, Reason
from tests.unit.core.strategies import events, ident, text
from tests.unit.ledger.conftest import make_config, records, store_last

reasons = st.builds(
    Reason,
    policy_id=ident,
    rail=st.integers(1, 4),
    severity=st.sampled_from(["low", "medium", "high", "critical"]),
    title=text,
    remediation=st.none() | text,
)
decisions = st.builds(
    Decision,
    outcome=st.sampled_from(["allow", "deny"]),
    reasons=st.lists(reasons, max_size=3).map(tuple),
    policy_version=ident,
    approval=st.none()
    | st.builds(
        ApprovalCheck,
        status=st.sampled_from(["not-needed", "covered", "missing", "invalid"]),
        request_id=st.none() | ident,
        approver=st.none() | ident,
        failures=st.lists(ident, max_size=2).map(tuple),
    ),
    mode=st.sampled_from(["detect", "gate"]),
    notes=st.lists(text, max_size=2).map(tuple),
)
# keys outside ASCII (and astral ones, which JCS orders by UTF-16 units) and non-string values take
# the reference encoder; both must give the bytes canonical_json gives
odd_attributes = st.dictionaries(
    st.text(min_size=1, max_size=4),
    text | st.integers(-(2**70), 2**70) | st.booleans() | st.none(),
    max_size=3,
)


def _reference(seq: int, ingested_at: str, ev: CanonicalEvent, dec: Decision) -> bytes:
    return canonical_json(
        {"v": 1, "seq": seq, "ingested_at": ingested_at, "event": ev.to_dict(), "decision": dec.to_dict()}
    )


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(events, decisions, st.integers(0, 2**62))
def test_entry_bytes_are_canonical_json(ev: CanonicalEvent, dec: Decision, seq: int) -> None:
    assert encode_entry(seq, "2026-03-01T00:00:00.000001Z", ev, dec) == _reference(
        seq, "2026-03-01T00:00:00.000001Z", ev, dec
    )


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(events, decisions, odd_attributes, st.text(max_size=6))
def test_entry_template_with_odd_attributes_and_stamps_is_canonical_json(
    ev: CanonicalEvent, dec: Decision, attrs: dict[str, Any], stamp: str
) -> None:
    # the template's holes are %-format holes: a "%" (or a quote) in the stamp must stay literal
    odd = replace(ev, attributes=attrs)
    assert encode_entry(3, stamp, odd, dec) == _reference(3, stamp, odd, dec)
    assert odd.canonical_bytes == canonical_json(odd.to_dict())
    assert dec.canonical_bytes == canonical_json(dec.to_dict())


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(events, decisions, odd_attributes)
def test_entry_bytes_with_odd_attributes_fall_back_to_the_reference(
    ev: CanonicalEvent, dec: Decision, attrs: dict[str, Any]
) -> None:
    e = ev.to_dict()
    e["attributes"] = attrs
    obj = {"v": 1, "seq": 7, "ingested_at": "x", "event": e, "decision": dec.to_dict()}
    assert entry_bytes(7, "x", e, dec.to_dict(), attrs) == canonical_json(obj)


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(events)
def test_kept_canonical_bytes_travel_with_a_pickled_event_and_not_with_a_copy(ev: CanonicalEvent) -> None:
    ev.keep_canonical_bytes()
    back = pickle.loads(pickle.dumps(ev))
    assert back == ev and back.__dict__["_canonical_bytes"] == canonical_json(ev.to_dict())
    changed = replace(back, action="sql:DropTable")
    assert "_canonical_bytes" not in changed.__dict__
    assert changed.canonical_bytes == canonical_json(changed.to_dict())


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(events, decisions), min_size=1, max_size=12),
    st.one_of(st.integers(0, 40), st.integers(244, 260)),  # 244..260: crosses the first level-8 node
)
def test_prepare_agrees_with_entry_index_columns_chain_and_tree(
    recs: list[tuple[CanonicalEvent, Decision]], start: int
) -> None:
    border_leaves = [hashlib.sha256(b"%d" % i).digest() for i in range(start)]
    tree = CompactRange()
    for h in border_leaves:
        tree.append(h)
    ref_tree = CompactRange(tree.size, tree.border())
    nodes: list[tuple[int, int, bytes]] = []
    prepared, last = prepare(recs, start, "2026-03-01T00:00:00.000000Z", GENESIS_CHAIN, tree, nodes)
    cols = prepared.table.to_pydict()
    chain = GENESIS_CHAIN
    ref_nodes: list[tuple[int, int, bytes]] = []
    for k, (ev, dec) in enumerate(recs):
        entry = encode_entry(start + k, "2026-03-01T00:00:00.000000Z", ev, dec)
        lh = merkle.leaf_hash(entry)
        chain = chain_hash(chain, lh)
        ref_tree.append(lh, ref_nodes)
        assert cols["entry"][k] == entry and cols["leaf_hash"][k] == lh and cols["chain_hash"][k] == chain
        assert cols["seq"][k] == start + k
    assert last == chain and tree.root() == ref_tree.root()
    assert nodes == [n for n in ref_nodes if is_stored(n[0])]  # only the stored levels go to ``nodes``
    assert prepared.appended == [(start + k, ev.event_id) for k, (ev, _) in enumerate(recs)]
    denies = [(start + k) for k, (_, d) in enumerate(recs) if d.outcome == "deny" and d.mode == "detect"]
    assert [a[0] for a in prepared.alerts] == denies


def _index_columns_in_duckdb(con: duckdb.DuckDBPyConnection, rows: list[list[Any]]) -> list[dict[str, Any]]:
    con.execute("DELETE FROM entries")
    con.execute(insert_entries_values_sql(len(rows)), [v for r in rows for v in r])
    cur = con.execute("SELECT * FROM entries ORDER BY seq")
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(recs=st.lists(st.tuples(events, decisions), min_size=1, max_size=6, unique_by=lambda r: r[0].event_id))
def test_columns_derived_in_duckdb_agree_with_index_columns(
    recs: list[tuple[CanonicalEvent, Decision]], schema_con: duckdb.DuckDBPyConnection
) -> None:
    """The writer's SQL (``ledger._columns``) gives every indexed column ``entry.index_columns`` gives."""
    prepared, _ = prepare_rows(recs, 3, "2026-03-01T00:00:00.000000Z", GENESIS_CHAIN, CompactRange(), [])
    stored = _index_columns_in_duckdb(schema_con, prepared.rows)
    for (ev, dec), row, prep in zip(recs, stored, prepared.rows, strict=True):
        assert [row["seq"], row["entry"], row["leaf_hash"], row["chain_hash"]] == prep
        assert row["ingested_at"] == parse_time("2026-03-01T00:00:00.000000Z")
        for name, want in index_columns(ev, dec).items():
            got = row[name]
            if name == "occurred_at":
                assert got == ev.occurred_at
            else:
                assert got == want, name


def _rows_inserted(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    con.execute("DELETE FROM entries")
    con.execute(sql, params)
    return con.execute("SELECT * FROM entries ORDER BY seq").fetchall()


# request ids of approvals and attributes that are text, missing, or another JSON type (which the
# SQL derivation renders as JSON text: those rows must take it)
request_ids = st.none() | ident | st.integers(-5, 5) | st.booleans() | st.lists(st.integers(0, 3), max_size=2)


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    recs=st.lists(st.tuples(events, decisions), min_size=1, max_size=5, unique_by=lambda r: r[0].event_id),
    attr_request=request_ids,
)
def test_python_columns_equal_the_sql_derivation(
    recs: list[tuple[CanonicalEvent, Decision]], attr_request: Any, schema_con: duckdb.DuckDBPyConnection
) -> None:
    """Small appends give the indexed columns as parameters (``_columns.row_values``): every stored
    value must be exactly what the SQL derivation (``INDEXED_COLUMNS``, also what verify checks)
    gives for the same bytes — or the rows must fall back to that derivation."""
    if attr_request is not None:
        ev, dec = recs[0]
        recs[0] = (replace(ev, attributes={**ev.attributes, "request_id": attr_request}), dec)
    prepared, _ = prepare_rows(recs, 3, "2026-03-01T00:00:00.123456Z", GENESIS_CHAIN, CompactRange(), [])
    n = len(prepared.rows)
    derived = _rows_inserted(schema_con, insert_entries_values_sql(n), [v for r in prepared.rows for v in r])
    if prepared.columns is None:
        assert attr_request is not None and type(attr_request) is not str
        assert recs[0][0].approval is None or recs[0][0].approval.request_id is None
        return
    rows = zip(prepared.rows, prepared.columns, strict=True)
    given_ = _rows_inserted(schema_con, insert_rows_sql(n), [v for r, c in rows for v in (*r, *c)])
    assert given_ == derived


def test_small_append_with_a_non_text_request_id_derives_it_in_sql(tmp_path: Path) -> None:
    ev, dec = records(1)[0]
    ev = replace(ev, attributes={"request_id": 7})
    config = make_config(tmp_path, checkpoint_every=1000)
    with Ledger.open(config) as led:
        led.append([(ev, dec)])
        got = led.connection().execute("SELECT request_id FROM entries").fetchone()
        assert got == ("7",)
    assert verify_ledger(config).ok


@pytest.fixture(scope="module")
def schema_con() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    for stmt in SCHEMA:
        con.execute(stmt)
    yield con
    con.close()


@given(st.integers(0, 300), st.integers(0, 300))
def test_extend_hashes_is_append(size: int, more: int) -> None:
    leaves = [hashlib.sha256(b"%d" % i).digest() for i in range(size + more)]
    a, b = CompactRange(), CompactRange()
    for h in leaves[:size]:
        a.append(h)
        b.append(h)
    nodes: list[tuple[int, int, bytes]] = []
    for h in leaves[size:]:
        a.append(h, nodes)
    hashes: list[bytes] = []
    b.extend_hashes(leaves[size:], hashes)
    assert hashes == [h for _, _, h in nodes] and a.root() == b.root() and a.size == b.size


def test_chunked_threaded_append_equals_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_mod, "_CHUNK", 4)  # 23 records: 6 chunks on the insert thread
    config = make_config(tmp_path, checkpoint_every=1000)
    with Ledger.open(config) as led:
        r = led.append(records(23))
        assert [s for s, _ in r.appended] == list(range(23))
        again = led.append(records(30))  # 23 stored duplicates: the UNIQUE index rejects, then skipped
        assert again.duplicates == [f"test:{i}" for i in range(23)]
        assert [s for s, _ in again.appended] == list(range(23, 30))
        entries = [e.entry_bytes for e in led.iter_records()]
        assert led.root_at(30) == merkle.root_hash(entries)
        for i in (0, 5, 29):
            assert led.inclusion_proof(i, 30) == merkle.inclusion_proof(entries, i)
        assert led.consistency_proof(13, 30) == merkle.consistency_proof(entries, 13)
        assert len(led.pending_alerts(100)) == 15  # odd test records are detect-mode denies
        led.checkpoint()
    assert verify_ledger(config).ok


def test_fetch_nodes_is_one_query_with_or_without_the_indexes(tmp_path: Path) -> None:
    config = make_config(tmp_path, checkpoint_every=1000)
    with Ledger.open(config) as led:
        led.append(records(21))
        ids = sorted({n for b, e in [(0, 16), (16, 20), (20, 21), (8, 12)] for n in range_nodes(b, e)})
        want = _query.fetch_nodes(led.connection(), ids)
        assert set(want) == set(ids)
        assert want[(0, 20)] == led.get_seq(20).leaf_hash  # type: ignore[union-attr]
    con = duckdb.connect(str(config.ledger_path))
    con.execute("DROP INDEX nodes_pos")
    con.execute("DROP INDEX entries_seq")
    assert _query.fetch_nodes(con, ids) == want
    con.close()
    with Ledger.open(config) as led:  # a writer re-creates the indexes of an older ledger
        n = (
            led.connection()
            .execute("SELECT count(*) FROM duckdb_indexes() WHERE index_name IN ('nodes_pos', 'entries_seq')")
            .fetchone()
        )
        assert n is not None and n[0] == 2


def test_verify_reads_rows_stored_out_of_order_again_sorted(tmp_path: Path) -> None:
    config = make_config(tmp_path, checkpoint_every=10)
    with Ledger.open(config) as led:
        led.append(records(25))
        led.checkpoint()
    # same content, new storage order: rows 3 and pos 2 move to the end of their tables
    store_last(config.ledger_path, "entries", "seq", 3)
    store_last(config.ledger_path, "nodes", "pos", 2)
    r = verify_ledger(config)
    assert r.ok, r.problems
    assert r.tree_size == 25


def test_synthetic_tree_is_the_rfc6962_tree_of_its_entries(tmp_path: Path) -> None:
    size = 600  # two stored level-8 nodes, a ragged right edge
    build_synthetic_tree(tmp_path / "s.duckdb", size)
    con = duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True)
    entries = [synthetic_entry(i) for i in range(size)]

    def fetch(ids: Any) -> list[bytes]:
        got = _query.fetch_nodes(con, ids)
        return [got[n] for n in ids]

    tree = CompactRange()
    nodes: list[tuple[int, int, bytes]] = []
    for e in entries:
        tree.append(merkle.leaf_hash(e), nodes, every=TILE_HEIGHT)
    assert [lv for lv, _, _ in nodes] == [8, 8]
    stored = con.execute("SELECT pos, level, idx, hash FROM nodes ORDER BY pos").fetchall()
    assert [(int(p), int(lv), int(i), bytes(h)) for p, lv, i, h in stored] == [
        (node_position(lv, i), lv, i, h) for lv, i, h in nodes
    ]
    for n in (1, 2, 5, 16, 37, 256, 511, 512, 513, 600):
        assert root_at(n, fetch) == merkle.root_hash(entries[:n])
    for i in (0, 9, 255, 256, 599):
        assert inclusion_proof_at(i, size, fetch) == merkle.inclusion_proof(entries, i)
    con.close()
