"""``core.deferred``: an event sent as its canonical bytes is the same event on the other side,
and what serve reads of an event decided ahead does not parse it."""

from __future__ import annotations

import pickle
from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from core.deadletter import DeadLetter
from core.deferred import DeferredEvent, pack, unpack
from core.event import CanonicalEvent
from tests.unit.core.strategies import events

DECIDED = object()  # stands for a decision made ahead: pack only looks at whether there is one
DEAD = DeadLetter(source="event", reason="bad-avro", detail="truncated", raw=b"\xc3\x01", where="t/0@1")


def _sent(items: list[Any], decided: list[Any] | None) -> list[Any]:
    return unpack(pickle.loads(pickle.dumps(pack(items, decided), protocol=pickle.HIGHEST_PROTOCOL)))


@given(st.lists(st.tuples(events, st.booleans()), max_size=8))
def test_what_is_sent_is_the_same_event(batch: list[tuple[CanonicalEvent, bool]]) -> None:
    items: list[Any] = [ev for ev, _ in batch] + [DEAD]
    decided = [DECIDED if ahead else None for _, ahead in batch] + [None]
    got = _sent(items, decided)
    assert got == items
    for (ev, ahead), back in zip(batch, got, strict=False):
        deferred = ahead and ev.approval is None
        assert (type(back) is DeferredEvent) is deferred
        assert back.canonical_bytes == ev.canonical_bytes
        assert hash(back) == hash(ev) and back == ev and ev == back
        assert back.to_dict() == ev.to_dict()
        assert [getattr(back, f) for f in CanonicalEvent.__dataclass_fields__] == [
            getattr(ev, f) for f in CanonicalEvent.__dataclass_fields__
        ]
    assert got[-1] == DEAD


@given(events)
def test_reading_what_serve_reads_does_not_parse_the_event(event: CanonicalEvent) -> None:
    event = replace(event, approval=None)
    (back,) = _sent([event], [DECIDED])
    assert isinstance(back, DeferredEvent)
    # what PolicyEngine.touches_approvals, its check of a decision made ahead and the ledger read
    seen = (back.event_id, back.action, back.attributes, back.resource, back.approval, back.canonical_bytes)
    sent = (event.event_id, event.action, event.attributes, event.resource, None, event.canonical_bytes)
    assert seen == sent
    assert not {"actor", "occurred_at", "source", "change"} & back.__dict__.keys()
    assert back.actor == event.actor  # parsed on first read, then held
    assert {"actor", "occurred_at", "source", "change"} <= back.__dict__.keys()


def test_an_event_that_is_not_decided_ahead_travels_whole() -> None:
    items: list[Any] = [DEAD]
    assert _sent(items, None) == items
    assert pack(items, None) == items


@given(events)
def test_a_deferred_event_pickles_and_copies_as_itself(event: CanonicalEvent) -> None:
    event = replace(event, approval=None)
    (back,) = _sent([event], [DECIDED])
    again = pickle.loads(pickle.dumps(back))
    assert again == event and again.canonical_bytes == event.canonical_bytes
    assert replace(back, source="other") == replace(event, source="other")
