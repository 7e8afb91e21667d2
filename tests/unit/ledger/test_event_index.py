"""The ledger's duplicate detection over its event-id index: exact, crash-safe, and checked by verify."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from core.config import Config
from ledger import Ledger
from ledger._dedup import index_path
from ledger._idindex import EventIdIndex
from ledger.verify import verify_ledger
from tests.unit.ledger.conftest import make_decision, make_event, records


def ids_of(result: Any) -> list[str]:
    return [eid for _, eid in result.appended]


def test_append_many_finds_duplicates_of_the_batch_still_committing_and_of_stored_ones(
    ledger: Ledger,
) -> None:
    ledger.append(records(5))
    results: list[Any] = []
    batches = [records(10, start=3), records(10, start=8), records(4, start=100)]
    ledger.append_many(batches, on_result=results.append)
    assert [r.duplicates for r in results] == [
        ["test:3", "test:4"],  # stored before
        ["test:8", "test:9", "test:10", "test:11", "test:12"],  # in the batch committing beside it
        [],
    ]
    assert ledger.size == 5 + 8 + 5 + 4
    assert ledger.existing([f"test:{i}" for i in range(20)]) == {f"test:{i}" for i in range(18)}


def test_a_hash_collision_never_makes_a_new_event_a_duplicate(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every id hashed alike: each lookup has candidates, and only the stored entry decides."""
    assert ledger._ids is not None
    monkeypatch.setattr(ledger._ids, "keys", lambda ids: np.zeros(len(ids), np.uint64))
    ledger.append(records(6))
    r = ledger.append(records(4, start=4))
    assert r.duplicates == ["test:4", "test:5"] and ids_of(r) == ["test:6", "test:7"]
    results: list[Any] = []
    ledger.append_many([records(3, start=7), records(3, start=9)], on_result=results.append)
    assert [r.duplicates for r in results] == [["test:7"], ["test:9"]]
    assert ledger.size == 12


@pytest.mark.parametrize("damage", ["deleted", "stale-copy"])
def test_a_lost_or_stale_index_is_rebuilt_or_caught_up_on_open(config: Config, damage: str) -> None:
    path = index_path(config.ledger_path)
    with Ledger.open(config) as ledger:
        ledger.append(records(10))
    stale = path.read_bytes()
    with Ledger.open(config) as ledger:
        ledger.append(records(10, start=10))
    if damage == "deleted":
        path.unlink()
    else:  # an index from before the last 10 entries
        path.write_bytes(stale)
    with Ledger.open(config) as ledger:
        r = ledger.append(records(6, start=17))
        assert r.duplicates == ["test:17", "test:18", "test:19"]
        assert ledger.size == 23


def test_an_index_that_fails_to_update_is_dropped_and_duplicates_are_still_found(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Ledger.open(config) as ledger:
        ledger.append(records(5))
        lookup = ledger.existing_lookup()  # made while the index worked

        def broken(*_: object, **__: object) -> None:
            raise OSError("no space left on device")

        monkeypatch.setattr(EventIdIndex, "add", broken)
        assert ledger.append(records(5, start=5)).appended  # committed; the index is dropped
        assert ledger._ids is None and not index_path(config.ledger_path).exists()
        r = ledger.append(records(4, start=8))  # found by DuckDB instead
        assert r.duplicates == ["test:8", "test:9"]
        assert lookup(["test:2", "test:9", "nope"]) == {"test:2", "test:9"}  # not the closed index
        lookup.close()
        monkeypatch.undo()
    with Ledger.open(config) as ledger:  # rebuilt from the entries
        assert ledger.append(records(13)).duplicates == [f"test:{i}" for i in range(12)]


def test_verify_names_an_event_recorded_twice(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """A faulty writer (here: one whose duplicate check is switched off) signs a duplicate into a
    chain that is otherwise sound; verify still names the second entry."""
    with Ledger.open(config) as ledger:
        ledger.append(records(8))
        monkeypatch.setattr(ledger, "_ids", None)
        monkeypatch.setattr("ledger.store._existing", lambda *_: set())
        ledger.append([(make_event(3), make_decision())])
        ledger.checkpoint()
    report = verify_ledger(config)
    assert not report.ok
    assert report.first is not None and report.first.kind == "duplicate-event" and report.first.seq == 8
    assert "first recorded at seq 3" in report.first.detail


def test_the_event_id_column_has_no_unique_constraint_in_a_new_ledger(ledger: Ledger) -> None:
    """Uniqueness is the index's job: DuckDB's UNIQUE index would hold every id in memory."""
    rows = ledger._con.execute(
        "SELECT constraint_type FROM duckdb_constraints() WHERE table_name = 'entries'"
    ).fetchall()
    assert ("UNIQUE",) not in rows and ("PRIMARY KEY",) not in rows


def test_append_many_passes_over_a_batch_that_is_all_duplicates(ledger: Ledger) -> None:
    """It has nothing to commit (it used to hand the helper thread an empty list of tables)."""
    ledger.append(records(5))
    results: list[Any] = []
    batches = [records(5), records(3, start=5), records(3, start=5), records(2, start=8)]
    assert ledger.append_many(batches, on_result=results.append) == 5
    assert [r.duplicates for r in results] == [
        [f"test:{i}" for i in range(5)],
        [],
        ["test:5", "test:6", "test:7"],
        [],
    ]
    assert [ids_of(r) for r in results][1::2] == [["test:5", "test:6", "test:7"], ["test:8", "test:9"]]
    assert ledger.size == 10
