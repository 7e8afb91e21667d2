"""A batch as serve receives it from its consumer process (``Decoded``, pickled): the events decided
ahead arrive as ``core.deferred.DeferredEvent``s, are decided and appended without being parsed
again, and the ledger records exactly what it records for the plain events."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from core.avro import encode_event
from core.config import load_config
from core.deferred import DeferredEvent
from railbook.cli._kafka_bench import mixed_stream
from railbook.serve._decode import Decoded, Undecoded
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


def test_a_share_left_undecoded_is_decoded_decided_and_recorded_alike(tmp_path: Path) -> None:
    """The consumer process's balance with serve (``railbook.serve._balance``): every third event
    crosses as its Avro message, undecided; serve decodes and decides it in its place, and the
    ledger is the same entry for entry."""
    events = mixed_stream(1500, run="balanced")
    recorded = []
    for name, share in (("plain", False), ("balanced", True)):
        config = load_config(None, ledger=str(tmp_path / f"{name}.duckdb"))
        with open_pipeline(config) as p:
            known = p.engine.prejudge(events)
            items: list[Any] = list(events)
            if share:
                for k, e in enumerate(events):
                    e.keep_canonical_bytes()
                    if k % 3 == 1:
                        items[k] = Undecoded("railbook.events", 0, k, encode_event(e), 0, [])
                        known[k] = None
                sent = pickle.loads(pickle.dumps(Decoded(items=items, decisions=known, left=500)))
                items = sent.decode_left(config=config, max_bytes=1 << 20, track_latency=False)
                known = sent.decisions
                assert sum(type(e) is DeferredEvent for e in items) > 500
            summary = p.commit(p.evaluate(items, known=known))
            assert summary.appended == len(events)
            recorded.append([(r.event, r.event.canonical_bytes, r.decision) for r in p.ledger.iter_records()])
    assert recorded[0] == recorded[1]
