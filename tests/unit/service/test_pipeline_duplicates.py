"""Duplicates in ``Pipeline``: only an event whose decision touches approval state is looked up in
the ledger before it is decided; any other is decided and then refused by the ledger's UNIQUE
event id. Either way it is counted once and never appended twice."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from core.config import Config, load_config
from railbook.cli._kafka_bench import mixed_stream
from railbook.wiring import open_pipeline
from tests.conftest import DEMO_CONFIG
from tests.unit.policy.conftest import ev, grant


def test_only_events_that_touch_approvals_are_looked_up_and_every_duplicate_is_skipped(
    tmp_path: Path,
) -> None:
    config = load_config(None, ledger=str(tmp_path / "ledger.duckdb"))
    stored = mixed_stream(600, run="dup")
    new = mixed_stream(200, seed=8, run="new")
    with open_pipeline(config) as p:
        p.process(stored)
        rows = [(e.seq, e.entry_bytes) for e in p.ledger.iter_records()]
        asked: list[str] = []

        def existing(ids: Iterable[str]) -> set[str]:
            ids = list(ids)
            asked.extend(ids)
            return p.ledger.existing(ids)

        batch = [e for pair in zip(stored[:200], new, strict=True) for e in pair] + stored[200:]
        evaluated = p.evaluate(batch, existing=existing)
        touching = [e.event_id for e in batch if p.engine.touches_approvals(e)]
        assert 0 < len(touching) < len(batch) // 4
        assert asked == touching  # the rest is left to the ledger
        summary = p.commit(evaluated)
        assert summary.appended == len(new)
        assert summary.duplicates == len(stored)
        assert summary.read == len(batch)
        after = [(e.seq, e.entry_bytes) for e in p.ledger.iter_records()]
        assert after[: len(rows)] == rows
        assert [e.event.event_id for e in p.ledger.iter_records()][len(rows) :] == [e.event_id for e in new]
        assert [e.event_id for _, e, _ in summary.entries] == [e.event_id for e in new]


def test_a_forged_copy_of_a_stored_id_spends_no_grant(tmp_path: Path) -> None:
    """An action the grant covers, sent under the id of a stored read, is dropped before it is
    decided: the grant stays unspent for the run it was given for."""
    config = Config.model_validate({**DEMO_CONFIG, "ledger": {"path": str(tmp_path / "ledger.duckdb")}})
    with open_pipeline(config) as p:
        p.process([grant(eid="g1"), ev("sql:Select", eid="read")])
        assert [r.status for r in p.approvals.requests()] == ["granted"]
        summary = p.process([ev("sql:AlterTable", eid="read")])
        assert (summary.appended, summary.duplicates) == (0, 1)
        assert [r.status for r in p.approvals.requests()] == ["granted"]
        assert p.process([ev("sql:AlterTable", eid="run")]).entries[0][2].approval is not None
        assert [r.status for r in p.approvals.requests()] == ["used"]
