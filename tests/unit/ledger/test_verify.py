"""Tamper tests: each kind of change to the database is caught, naming the right seq and kind."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from core.config import Config
from ledger import Ledger, verify_ledger
from ledger.checkpoint import sign_checkpoint
from ledger.entry import GENESIS_CHAIN, chain_hash, encode_entry
from ledger.keys import keygen, load_signer
from ledger.merkle import leaf_hash
from ledger.proofs import CompactRange, node_position
from tests.unit.ledger.conftest import make_config, make_decision, make_event, records


@pytest.fixture
def built(tmp_path: Path) -> Config:
    config = make_config(tmp_path / "orig", checkpoint_every=10)
    with Ledger.open(config) as led:
        for start in range(0, 45, 5):
            led.append(records(5, start=start))  # checkpoints at 10, 20, 30, 40
        led.checkpoint()  # and 45
    return config


def _copy(config: Config, to: Path) -> Config:
    shutil.copytree(config.ledger_path.parent, to)
    return make_config(to, checkpoint_every=10)


def _tamper(config: Config, tmp_path: Path, *sql: str) -> Config:
    c = _copy(config, tmp_path / "tampered")
    con = duckdb.connect(str(c.ledger_path))
    for q in sql:
        con.execute(q)
    con.close()
    return c


def test_clean_ledger_verifies(built: Config) -> None:
    r = verify_ledger(built, against=built.checkpoints_file, segments=built.segments_dir)
    assert r.ok, r.problems
    assert (
        r.tree_size == 45
        and r.checkpoints_checked >= 4
        and r.segments_checked >= 4
        and r.unsigned_entries == 0
    )


@pytest.mark.parametrize(
    ("sql", "kind", "seq"),
    [
        (["UPDATE entries SET outcome = 'allow' WHERE seq = 13"], "modified", 13),
        (["UPDATE entries SET actor_id = 'human:bob' WHERE seq = 30"], "modified", 30),
        (
            ["UPDATE entries SET entry = replace(decode(entry), 'deny', 'allow')::BLOB WHERE seq = 21"],
            "modified",
            21,
        ),
        (["DELETE FROM entries WHERE seq = 17"], "deleted", 17),
        (["DELETE FROM entries WHERE seq = 44"], "deleted", 44),
        (
            ["UPDATE entries SET seq = CASE seq WHEN 13 THEN 27 ELSE 13 END WHERE seq IN (13, 27)"],
            "reordered",
            13,
        ),
        (
            ["INSERT INTO entries SELECT * REPLACE ('forged:1' AS event_id) FROM entries WHERE seq = 8"],
            "inserted",
            8,
        ),
    ],
)
def test_each_tamper_is_caught_with_the_right_seq(
    built: Config, tmp_path: Path, sql: list[str], kind: str, seq: int | None
) -> None:
    r = verify_ledger(_tamper(built, tmp_path, *sql))
    assert not r.ok
    assert r.first is not None
    assert (r.first.kind, r.first.seq) == (kind, seq), r.problems


def _rewrite_from(
    config: Config, at: int, mutate: Callable[[int], tuple[object, object]], *, new_key: bool
) -> None:
    """An attacker with write access: rebuild entries >= ``at`` (and everything derived) consistently."""
    con = duckdb.connect(str(config.ledger_path))
    rows = con.execute("SELECT seq, entry, chain_hash FROM entries ORDER BY seq").fetchall()
    chain = GENESIS_CHAIN if at == 0 else bytes(rows[at - 1][2])
    tree = CompactRange()
    for _s, e, _ in rows[:at]:
        tree.append(leaf_hash(bytes(e)))
    for s, e, _ in rows[at:]:
        ev, dec = mutate(int(s))
        ingested = __import__("json").loads(bytes(e))["ingested_at"]
        entry = encode_entry(int(s), ingested, ev, dec)  # type: ignore[arg-type]
        lh = leaf_hash(entry)
        chain = chain_hash(chain, lh)
        nodes: list[tuple[int, int, bytes]] = []
        tree.append(lh, nodes)
        con.execute(
            "UPDATE entries SET entry = ?, leaf_hash = ?, chain_hash = ?, outcome = ?, rails = ?, "
            "policies = ?, severity = ? WHERE seq = ?",
            [entry, lh, chain, dec.outcome, list(dec.rails), list(dec.policy_ids), dec.severity, s],
        )  # type: ignore[attr-defined]
        for lv, idx, h in nodes:
            con.execute("UPDATE nodes SET hash = ? WHERE pos = ?", [h, node_position(lv, idx)])
    if new_key:
        config.key_path.unlink()
        keygen(config.key_path, config.ledger.origin)
        signer = load_signer(config.key_path)
        sizes = [
            int(r[0]) for r in con.execute("SELECT tree_size FROM checkpoints ORDER BY tree_size").fetchall()
        ]
        con.execute("DELETE FROM checkpoints")
        full = CompactRange()
        leaves = [bytes(r[0]) for r in con.execute("SELECT leaf_hash FROM entries ORDER BY seq").fetchall()]
        for size in sizes:
            while full.size < size:
                full.append(leaves[full.size])
            cp = sign_checkpoint(signer, config.ledger.origin, size, full.root(), datetime.now(UTC))
            con.execute(
                "INSERT INTO checkpoints VALUES (?, ?, ?, ?)",
                [size, cp.root_hash, cp.signed_note_text, cp.created_at],
            )
        config.checkpoints_file.write_text("")
    con.close()


def test_consistent_rewrite_without_the_key_is_caught_against_an_earlier_checkpoints_file(
    built: Config, tmp_path: Path
) -> None:
    held_elsewhere = tmp_path / "auditor-copy.log"
    shutil.copy(built.checkpoints_file, held_elsewhere)
    c = _copy(built, tmp_path / "rewritten")

    def whitewash(seq: int) -> tuple[object, object]:
        return make_event(seq), make_decision(deny=False)  # every violation from 23 on becomes "allow"

    _rewrite_from(c, 23, whitewash, new_key=True)
    alone = verify_ledger(c)
    assert alone.ok, "a consistent rewrite with a new key cannot be seen from the database alone"
    r = verify_ledger(c, against=held_elsewhere)
    assert not r.ok and r.first is not None
    assert r.first.kind == "root-mismatch"
    # Checkpoints were signed at 10, 20, 30, 40, 45: the one at 20 still agrees, the one at 30 does not.
    # Roots alone cannot say which entry in between changed; the report names the range's first seq.
    assert r.first.seq == 20
    assert "[20, 30)" in r.first.detail
    assert any(p.kind == "bad-signature" for p in r.problems)


def test_rewrite_keeping_old_checkpoints_is_caught_without_against(built: Config, tmp_path: Path) -> None:
    c = _copy(built, tmp_path / "rewritten")
    _rewrite_from(c, 31, lambda s: (make_event(s), make_decision(deny=False)), new_key=False)
    r = verify_ledger(c)
    assert not r.ok and r.first is not None and r.first.kind == "root-mismatch"
    assert r.first.seq is not None and r.first.seq <= 31


def test_edited_checkpoint_note_fails_its_signature(built: Config, tmp_path: Path) -> None:
    c = _tamper(built, tmp_path, "UPDATE checkpoints SET note = replace(note, '\n20\n', '\n21\n')")
    r = verify_ledger(c)
    assert not r.ok
    assert any(p.kind == "bad-signature" and "tree_size 21" in p.detail for p in r.problems), r.problems
