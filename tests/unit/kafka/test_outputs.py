"""serve's decision and violation documents: what each says about its event, and that building them
leaves an event decided in the consumer process unparsed (``core.deferred``)."""

from __future__ import annotations

import json
import pickle
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from core.canonical import canonical_json
from core.deferred import DeferredEvent, pack, unpack
from core.event import CanonicalEvent
from ingest.kafka import Publisher, event_key, event_key_of_json
from policy import Decision, Reason
from railbook.pipeline import BatchSummary
from railbook.serve._outputs import Outputs, _json_bytes
from tests.unit.kafka.fakes import FakeProducer, Sent
from tests.unit.kafka.strategies import wire_events

ALLOW = Decision("allow", (), "v1")
DENY = Decision("deny", (Reason("rail1-agent-in-prod", 1, "high", "Agent acted on production"),), "v1")


class _Ledger:
    origin = "railbook.test/ledger"
    size = 0


def _published(events: list[CanonicalEvent], decisions: list[Decision]) -> list[Sent]:
    producer = FakeProducer()
    outputs = Outputs(_Ledger(), Publisher("fake:9092", producer=producer), "", 1.0, 0)
    entries = [(seq, ev, dec) for seq, (ev, dec) in enumerate(zip(events, decisions, strict=True))]
    outputs.publish(BatchSummary(entries=entries), [])
    return producer.sent


def _expected(seq: int, ev: CanonicalEvent, dec: Decision) -> dict[str, Any]:
    """The decision document as it was built from the event object before 2026-12-07."""
    d = ev.to_dict()
    return {
        "origin": _Ledger.origin,
        "seq": seq,
        "event_id": ev.event_id,
        "occurred_at": d["occurred_at"],
        "actor": ev.actor.id,
        "action": ev.action,
        "resource": ev.resource.id,
        "environment": ev.resource.environment,
        "decision": json.loads(json.dumps(dec.to_dict())),
    }


@given(st.lists(st.tuples(wire_events, st.booleans()), min_size=1, max_size=6))
def test_each_document_says_what_the_event_and_its_entry_say(
    batch: list[tuple[CanonicalEvent, bool]],
) -> None:
    events = [ev for ev, _ in batch]
    decisions = [DENY if deny else ALLOW for _, deny in batch]
    sent = iter(_published(events, decisions))
    for seq, (ev, dec) in enumerate(zip(events, decisions, strict=True)):
        msg = next(sent)
        assert (msg.topic, msg.key) == ("railbook.decisions", event_key(ev))
        doc = json.loads(msg.value or b"")
        assert doc == _expected(seq, ev, dec)
        if dec.is_violation:
            violation = next(sent)
            assert (violation.topic, violation.key) == ("railbook.violations", event_key(ev))
            got = json.loads(violation.value or b"")
            # the event exactly as its ledger entry holds it
            assert canonical_json(got.pop("event")) == ev.canonical_bytes
            assert got == doc
    assert next(sent, None) is None


@given(wire_events)
def test_the_key_of_the_json_shape_is_the_events_key(event: CanonicalEvent) -> None:
    assert event_key_of_json(event.to_dict()) == event_key(event)


@given(st.lists(wire_events, min_size=1, max_size=6))
def test_events_decided_ahead_are_published_unparsed_and_alike(events: list[CanonicalEvent]) -> None:
    decisions = [DENY] * len(events)
    wire = pickle.loads(pickle.dumps(pack(events, decisions), protocol=pickle.HIGHEST_PROTOCOL))
    received = unpack(wire)
    sent = _published(received, decisions)
    assert [(m.topic, m.key, json.loads(m.value or b"")) for m in sent] == [
        (m.topic, m.key, json.loads(m.value or b"")) for m in _published(events, decisions)
    ]
    for ev in received:
        if type(ev) is DeferredEvent:
            assert "actor" not in ev.__dict__ and "occurred_at" not in ev.__dict__


def test_a_document_orjson_refuses_is_still_written_as_json() -> None:
    doc = {"b": "a lone surrogate \udc80", "a": 1}
    assert json.loads(_json_bytes(doc)) == doc
    assert _json_bytes({"b": "x", "a": 1}) == b'{"a":1,"b":"x"}'
