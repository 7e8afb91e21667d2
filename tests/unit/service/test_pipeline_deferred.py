"""A batch as serve receives it from its consumer process (``Decoded``, pickled): the events decided
ahead arrive as ``core.deferred.DeferredEvent``s, are decided and appended without being parsed
again, and the ledger records exactly what it records for the plain events."""

from __future__ import annotations

import pickle
from pathlib import Path

from core.config import load_config
from core.deferred import DeferredEvent
from railbook.cli._kafka_bench import mixed_stream
from railbook.serve._decode import Decoded
from railbook.wiring import open_pipeline


def test_events_decided_ahead_are_appended_unparsed_and_recorded_alike(tmp_path: Path) -> None:
    events = mixed_stream(1500, run="deferred")
    recorded = []
    for name, sent in (("plain", False), ("sent", True)):
        config = load_config(None, ledger=str(tmp_path / f"{name}.duckdb"))
        with open_pipeline(config) as p:
            known = p.engine.prejudge(events)
            items = list(events)
            if sent:
                for e in events:
                    e.keep_canonical_bytes()  # as the consumer process does
                batch = pickle.loads(pickle.dumps(Decoded(items=items, decisions=known)))
                items, known = batch.items, batch.decisions
                deferred = [e for e in items if type(e) is DeferredEvent]
                assert len(deferred) > len(items) * 0.8
            summary = p.commit(p.evaluate(items, known=known))
            assert summary.appended == len(events)
            if sent:
                assert not any("actor" in e.__dict__ for e in deferred)  # nothing parsed them
            recorded.append([(r.event, r.event.canonical_bytes, r.decision) for r in p.ledger.iter_records()])
    assert recorded[0] == recorded[1]
    assert [e for e, _, _ in recorded[1]] == events
