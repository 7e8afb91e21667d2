"""A batch as serve receives it from its consumer process (``Decoded``, pickled): the events decided
ahead arrive as ``core.deferred.DeferredEvent``s, are decided and appended without being parsed
again, and the ledger records exactly what it records for the plain events."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.avro import encode_event
from core.config import Config, load_config
from core.deferred import DeferredEvent
from core.event import CanonicalEvent
from railbook.cli._kafka_bench import mixed_stream
from railbook.serve._decode import Decoded, Undecoded
from railbook.wiring import open_pipeline

#: (config, events, decisions made ahead) → what serve evaluates: (items, decisions)
Send = Callable[[Config, list[CanonicalEvent], list[Any]], tuple[Sequence[Any], Sequence[Any] | None]]


def _recorded(tmp_path: Path, name: str, events: list[CanonicalEvent], send: Send) -> list[Any]:
    """Decide ``events`` ahead, ``send`` them, decide the rest and append; the ledger's records."""
    config = load_config(None, ledger=str(tmp_path / f"{name}.duckdb"))
    with open_pipeline(config) as p:
        items, known = send(config, events, p.engine.prejudge(events))
        summary = p.commit(p.evaluate(items, known=known))
        assert summary.appended == len(events)
        return [(r.event, r.event.canonical_bytes, r.decision) for r in p.ledger.iter_records()]


def _plain(_config: Config, events: list[CanonicalEvent], known: list[Any]) -> tuple[Any, Any]:
    return list(events), known


def test_events_decided_ahead_are_appended_unparsed_and_recorded_alike(tmp_path: Path) -> None:
    events = mixed_stream(1500, run="deferred")
    deferred: list[DeferredEvent] = []

    def sent(_config: Config, events: list[CanonicalEvent], known: list[Any]) -> tuple[Any, Any]:
        for e in events:
            e.keep_canonical_bytes()  # as the consumer process does
        batch = pickle.loads(pickle.dumps(Decoded(items=list(events), decisions=known)))
        deferred.extend(e for e in batch.items if type(e) is DeferredEvent)
        assert len(deferred) > len(events) * 0.8
        return batch.items, batch.decisions

    plain = _recorded(tmp_path, "plain", events, _plain)
    assert _recorded(tmp_path, "sent", events, sent) == plain
    assert not any("actor" in e.__dict__ for e in deferred)  # nothing parsed them
    assert [e for e, _, _ in plain] == events


def test_a_share_left_undecoded_is_decoded_decided_and_recorded_alike(tmp_path: Path) -> None:
    """The consumer process's balance with serve (``railbook.serve._balance``): every third event
    crosses as its Avro message, undecided; serve decodes and decides it in its place, and the
    ledger is the same entry for entry."""
    events = mixed_stream(1500, run="balanced")

    def balanced(config: Config, events: list[CanonicalEvent], known: list[Any]) -> tuple[Any, Any]:
        items: list[Any] = list(events)
        for k, e in enumerate(events):
            e.keep_canonical_bytes()
            if k % 3 == 1:
                items[k] = Undecoded("railbook.events", 0, k, encode_event(e), 0, [])
                known[k] = None
        sent = pickle.loads(pickle.dumps(Decoded(items=items, decisions=known, left=500)))
        decoded = sent.decode_left(config=config, max_bytes=1 << 20, track_latency=False)
        assert sum(type(e) is DeferredEvent for e in decoded) > 500
        assert sum(d is None for d in sent.decisions) >= 500  # serve decides what it decoded
        return decoded, sent.decisions

    assert _recorded(tmp_path, "balanced", events, balanced) == _recorded(tmp_path, "plain", events, _plain)
