"""serve's two-stage pipeline (evaluate batch N+1 while batch N is appended on another thread) leaves
exactly the ledger that one-batch-at-a-time ``Pipeline.process`` leaves: same entries, same order,
same decisions (approvals are sequential state), each event once. A duplicate whose decision
touches approval state is dropped before evaluation; any other may be decided and left to the
ledger to refuse."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest

from core.config import load_config
from core.event import CanonicalEvent
from railbook.cli._kafka_bench import mixed_stream
from railbook.pipeline import BatchSummary, Evaluated
from railbook.wiring import open_pipeline

pytestmark = pytest.mark.integration


def _batches(seed: int) -> list[list[CanonicalEvent]]:
    """Batches of a mixed stream with re-deliveries: within a batch, of the previous batch (in
    flight when this one is evaluated) and of older ones (already in the ledger)."""
    rng = random.Random(seed)
    events = mixed_stream(1200, seed=seed, run=f"stages{seed}")
    out: list[list[CanonicalEvent]] = []
    pos = 0
    while pos < len(events):
        n = rng.randint(1, 120)
        batch = list(events[pos : pos + n])
        pos = min(pos + n, len(events))
        for _ in range(rng.randint(0, 4)):
            if pos > 1:
                batch.insert(rng.randrange(len(batch) + 1), events[rng.randrange(max(0, pos - 150), pos)])
        out.append(batch)
    return out


def _ledger_rows(pipeline: Any) -> list[tuple[int, str, dict[str, Any]]]:
    return [(e.seq, e.event.event_id, e.decision.to_dict()) for e in pipeline.ledger.iter_records()]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_staged_equals_sequential(tmp_path: Path, seed: int) -> None:
    batches = _batches(seed)
    seq_cfg = load_config(None, ledger=str(tmp_path / "seq.duckdb"))
    with open_pipeline(seq_cfg) as p:
        seq_summary = BatchSummary()
        for b in batches:
            seq_summary.add(p.process(b), keep_entries=False)
        expected = _ledger_rows(p)

    staged_cfg = load_config(None, ledger=str(tmp_path / "staged.duckdb"))
    with open_pipeline(staged_cfg) as p:
        reader = p.reader()
        staged_summary = BatchSummary()
        in_flight: tuple[Evaluated, threading.Thread, dict[str, Any]] | None = None
        evaluated_total = 0
        decided: set[str] = set()
        left_to_ledger: list[str] = []  # re-deliveries decided, then refused by the ledger

        def commit(batch: Evaluated, box: dict[str, Any]) -> None:
            box["summary"] = p.commit(batch)

        for b in batches:
            ids = in_flight[0].event_ids if in_flight is not None else frozenset()
            evaluated = p.evaluate(b, in_flight=ids, existing=reader)
            evaluated_total += len(evaluated.records)
            for e, _ in evaluated.records:
                if e.event_id in decided:
                    left_to_ledger.append(e.event_id)
                decided.add(e.event_id)
            if in_flight is not None:
                in_flight[1].join()
                staged_summary.add(in_flight[2]["summary"], keep_entries=False)
            box: dict[str, Any] = {}
            t = threading.Thread(target=commit, args=(evaluated, box))
            t.start()
            in_flight = (evaluated, t, box)
        assert in_flight is not None
        in_flight[1].join()
        staged_summary.add(in_flight[2]["summary"], keep_entries=False)
        reader.close()
        got = _ledger_rows(p)

    assert got == expected
    assert len({eid for _, eid, _ in got}) == len(got)  # each event once
    # a re-delivery whose decision touches approval state is never decided; any other may be, and
    # the ledger refuses it
    assert evaluated_total == len(got) + len(left_to_ledger)
    with open_pipeline(staged_cfg) as p:
        by_id = {e.event_id: e for b in batches for e in b}
        assert not any(p.engine.touches_approvals(by_id[eid]) for eid in left_to_ledger)
    assert staged_summary.duplicates == seq_summary.duplicates > 0
    assert staged_summary.appended == seq_summary.appended == len(got)
    assert any(d["outcome"] != "allow" for _, _, d in got)
    assert any(d["approval"] is not None for _, _, d in got)  # approval state was exercised
