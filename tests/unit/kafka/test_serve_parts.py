"""serve's parts: batch decoding (fast path = ``decode_message``), GC settings, and the consumer
process's protocol (``railbook.serve._front``) against an in-memory consumer over a real pipe."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import pickle
import threading
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.structs import TopicPartition

import railbook.serve._front as front_mod
from core.avro import encode_event
from core.config import Config
from core.deadletter import DeadLetter
from core.event import CanonicalEvent
from ingest.kafka import decode_message
from policy import ApprovalBook, PolicyEngine
from railbook.serve import ServeOptions, tuned_gc
from railbook.serve._balance import DecodeBalance
from railbook.serve._decode import Decoded, Undecoded, decode_records
from railbook.serve._front import DEPTH, FrontSetup, _Front
from tests.conftest import DEMO_CONFIG
from tests.unit.kafka.strategies import wire_events
from tests.unit.kafka.test_serve import FakeConsumer, Msg

TOPIC = "railbook.events"

_payloads = st.one_of(
    wire_events.map(encode_event),
    st.binary(max_size=40),
    wire_events.map(lambda e: encode_event(e)[:-1]),  # truncated
    st.just(b""),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 1]), _payloads), max_size=12), st.booleans())
def test_decode_records_equals_decode_message_per_message(msgs: list[tuple[int, bytes]], track: bool) -> None:
    records: dict[Any, list[Msg]] = {}
    for i, (part, value) in enumerate(msgs):
        tp = TopicPartition(TOPIC, part)
        records.setdefault(tp, []).append(Msg(TOPIC, part, 100 + i, value, timestamp=i))
    got = decode_records(records, config=None, max_bytes=64, track_latency=track, polled_at=1.0)
    expected = [
        it
        for ms in records.values()
        for m in ms
        for it in decode_message(m.topic, m.partition, m.offset, m.value, max_bytes=64)
    ]
    assert [_comparable(it) for it in got.items] == [_comparable(it) for it in expected]
    assert got.dead == [it for it in got.items if isinstance(it, DeadLetter)]
    assert got.offsets == {(TOPIC, tp.partition): ms[-1].offset + 1 for tp, ms in records.items()}
    assert got.messages == len(msgs)
    assert set(got.sent_ms) == (
        {e.event_id for e in expected if isinstance(e, CanonicalEvent)} if track else set()
    )
    assert pickle.loads(pickle.dumps(got)) == got  # it crosses the process boundary


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from([0, 1]), _payloads), max_size=14),
    st.sampled_from([0.05, 0.3, 0.5, 1.0]),
    st.booleans(),
)
def test_what_the_consumer_process_leaves_undecoded_serve_decodes_the_same(
    msgs: list[tuple[int, bytes]], leave: float, track: bool
) -> None:
    """``leave`` (``railbook.serve._balance``): the items, dead letters, latency stamps and
    decisions serve gets after ``decode_left`` are those of a batch decoded whole, in order."""
    records: dict[Any, list[Msg]] = {}
    for i, (part, value) in enumerate(msgs):
        tp = TopicPartition(TOPIC, part)
        records.setdefault(tp, []).append(Msg(TOPIC, part, 100 + i, value, timestamp=i))
    args: dict[str, Any] = {"config": None, "max_bytes": 64, "track_latency": track, "polled_at": 1.0}
    whole = decode_records(records, keep_canonical=True, **args)
    part = decode_records(records, keep_canonical=True, leave=leave, **args)
    fast = sum(1 for ms in records.values() for m in ms if m.value and len(m.value) <= 64)
    assert part.left == int(fast * leave + 1e-9)  # evenly spread: every 1/leave-th fast message
    assert sum(isinstance(it, Undecoded) for it in part.items) == part.left
    # a decision made ahead stays with its item; what serve decoded, serve decides (None)
    part.decisions = [
        ("ahead", i) if isinstance(it, CanonicalEvent) else None for i, it in enumerate(part.items)
    ]  # type: ignore[misc]
    expected_decisions = list(part.decisions)  # an Undecoded message is one item (event or dead letter)
    sent = pickle.loads(pickle.dumps(part))  # it crosses the process boundary
    items = sent.decode_left(config=None, max_bytes=64, track_latency=track)
    assert [_comparable(it) for it in items] == [_comparable(it) for it in whole.items]
    assert [e.canonical_bytes for e in items if isinstance(e, CanonicalEvent)] == [
        e.canonical_bytes for e in whole.items if isinstance(e, CanonicalEvent)
    ]
    assert [_comparable(d) for d in sent.dead] == [_comparable(d) for d in whole.dead]
    assert sent.sent_ms == whole.sent_ms and sent.offsets == whole.offsets and sent.messages == whole.messages
    assert sent.decisions == expected_decisions
    assert sent.decode_left(config=None, max_bytes=64, track_latency=track) == items  # once only


def _comparable(item: CanonicalEvent | DeadLetter) -> Any:
    return (
        (item.source, item.reason, item.detail, item.raw, item.where)
        if isinstance(item, DeadLetter)
        else item
    )


def test_tuned_gc_freezes_and_restores() -> None:
    before = gc.get_threshold()
    with tuned_gc():
        assert gc.get_threshold()[0] > before[0]
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    with tuned_gc(False):
        assert gc.get_threshold() == before


# --- the consumer process's loop, on a thread, against an in-memory consumer -----------------------


def _events(make_event: CanonicalEvent, n: int) -> list[CanonicalEvent]:
    return [replace(make_event, event_id=f"e{i}") for i in range(n)]


class _Driven:
    """Calls the consumer process's (async) rebalance listener the way kafka-python's loop does."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def on_partitions_assigned(self, tps: Any) -> None:
        _drive(self.inner.on_partitions_assigned(tps))

    def on_partitions_revoked(self, tps: Any) -> None:
        _drive(self.inner.on_partitions_revoked(tps))


def _drive(coro: Any) -> None:
    try:
        coro.send(None)
    except StopIteration:
        return
    raise AssertionError("without kafka-python's event loop the listener must not await")


def _start(
    monkeypatch: pytest.MonkeyPatch,
    consumer: FakeConsumer,
    stored: dict[tuple[str, int], int],
    *,
    config: Config | None = None,
    policy_version: str | None = None,
) -> tuple[Connection, _Front, threading.Thread]:
    def make(_o: Any, _topics: Any, listener: Any) -> FakeConsumer:
        consumer.listener = _Driven(listener)
        return consumer

    monkeypatch.setattr(front_mod, "make_consumer", make)
    parent, child = multiprocessing.Pipe()
    options = ServeOptions("fake:9092", group="g", topics=(TOPIC,), batch_size=3, poll_timeout=0.01)
    setup = FrontSetup(config, options, (TOPIC,), stored, logging.INFO, policy_version)  # type: ignore[arg-type]
    front = _Front(child, setup)
    thread = threading.Thread(target=front.run, daemon=True)
    thread.start()
    assert parent.recv() == ("ready",)
    return parent, front, thread


def _ids(batch: Decoded) -> list[str]:
    return [e.event_id for e in batch.items if isinstance(e, CanonicalEvent)]


def _next(parent: Connection, timeout: float = 5.0) -> tuple[Any, ...] | None:
    """The next message that is not a log record or an assignment notice."""
    while parent.poll(timeout):
        msg: tuple[Any, ...] = parent.recv()
        if msg[0] not in ("log", "assigned", "rebalancing"):
            return msg
    return None


def test_front_hands_over_batches_from_the_ledgers_offset_and_commits_only_acknowledged_ones(
    make_event: CanonicalEvent, monkeypatch: pytest.MonkeyPatch
) -> None:
    evs = _events(make_event, 2 + 3 * (DEPTH + 1))  # DEPTH batches of three, and one more
    p0 = TopicPartition(TOPIC, 0)
    consumer = FakeConsumer({p0: [encode_event(e) for e in evs]}, {p0: 0})
    parent, _front, thread = _start(monkeypatch, consumer, {(TOPIC, 0): 2})  # the ledger has e0, e1
    batches: list[Decoded] = []
    for _ in range(DEPTH):
        msg = _next(parent)
        assert msg is not None and msg[0] == "batch"
        batches.append(msg[1])
    assert _ids(batches[0]) == ["e2", "e3", "e4"]  # sought to the ledger's offset
    assert _next(parent, 0.3) is None  # DEPTH batches unacknowledged: it waits
    assert consumer.commits == []  # and has committed nothing the ledger has not acknowledged
    parent.send(("ack", batches[0].offsets))
    msg = _next(parent)
    first = 2 + 3 * DEPTH
    assert msg is not None and msg[0] == "batch" and _ids(msg[1]) == [f"e{first + k}" for k in range(3)]
    assert consumer.group[p0] == 5  # the acknowledged offset, not the one of the batches in flight
    parent.send(("stop",))
    assert _next(parent) == ("closed",)
    thread.join(5)
    assert consumer.closed and consumer.group[p0] == 5


def test_front_exits_when_serve_is_gone_committing_what_was_acknowledged(
    make_event: CanonicalEvent, monkeypatch: pytest.MonkeyPatch
) -> None:
    evs = _events(make_event, 9)
    p0 = TopicPartition(TOPIC, 0)
    consumer = FakeConsumer({p0: [encode_event(e) for e in evs]}, {})
    parent, _front, thread = _start(monkeypatch, consumer, {})
    first = _next(parent)
    assert first is not None and first[0] == "batch"
    parent.send(("ack", first[1].offsets))
    assert _next(parent) is not None
    parent.close()  # serve killed: EOF
    thread.join(10)
    assert not thread.is_alive()
    assert consumer.closed and consumer.group[p0] == 3


def test_a_rebalance_waits_for_the_batches_in_flight_before_seeking(
    make_event: CanonicalEvent, monkeypatch: pytest.MonkeyPatch
) -> None:
    evs = _events(make_event, 12)
    p0 = TopicPartition(TOPIC, 0)
    consumer = FakeConsumer({p0: [encode_event(e) for e in evs]}, {})
    parent, front, thread = _start(monkeypatch, consumer, {})
    first = _next(parent)
    assert first is not None and _ids(first[1]) == ["e0", "e1", "e2"]
    # revoked and assigned again while e0..e2 are in flight: the seek must use the ledger's offset
    # *after* that batch (3), never the one before it
    front._on_assigned([p0])
    second = _next(parent, 0.5)  # a batch polled before the seek may still be handed over
    parent.send(("ack", first[1].offsets))
    if second is not None and second[0] == "batch":
        parent.send(("ack", second[1].offsets))
    nxt = _next(parent)
    assert nxt is not None and nxt[0] == "batch"
    ids = _ids(nxt[1])
    seen = _ids(first[1]) + (_ids(second[1]) if second else [])
    assert not set(ids) & set(seen)  # nothing handed over twice
    assert ids[0] == f"e{len(seen)}"  # and nothing skipped
    parent.send(("stop",))
    thread.join(5)


def test_an_unreachable_broker_fails_start_with_the_fix_and_leaves_no_consumer_process() -> None:
    import socket

    from core.errors import KafkaError
    from railbook.serve import Server
    from tests.unit.kafka.test_serve import FakeLedger, FakePipeline

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = ServeOptions(f"127.0.0.1:{port}", topics=(TOPIC,), connect_timeout=1.0, publish_outputs=False)
    server = Server(None, FakePipeline(FakeLedger()), options)  # type: ignore[arg-type]
    with pytest.raises(KafkaError, match="cannot reach a Kafka broker"):
        server.run()
    assert server._child is None and _front_children() == []  # none left, not even a zombie


def _front_children() -> list[int]:
    """Pids of this process's children (zombies included) running ``railbook.serve._front``."""
    import os
    from pathlib import Path

    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and (b"railbook.serve._front" in cmd or " Z " in stat[stat.rfind(")") :]):
            out.append(int(d.name))
    return out


@pytest.mark.parametrize("same_pack", [True, False])
def test_front_decides_ahead_what_no_approval_can_change_with_serves_pack_only(
    make_event: CanonicalEvent, monkeypatch: pytest.MonkeyPatch, same_pack: bool
) -> None:
    config = Config.model_validate(DEMO_CONFIG)
    engine = PolicyEngine.load(config)
    evs = [
        replace(make_event, event_id="alter"),  # destructive: left to serve and its approval book
        replace(make_event, event_id="read", action="sql:Select"),
        replace(make_event, event_id="edit", action="file:Write", attributes={"tool": "Edit"}),
    ]
    p0 = TopicPartition(TOPIC, 0)
    consumer = FakeConsumer(
        {p0: [encode_event(evs[0]), b"not avro", *(encode_event(e) for e in evs[1:])]}, {p0: 0}
    )
    version = engine.version if same_pack else "0" * 64
    parent, _front, thread = _start(monkeypatch, consumer, {}, config=config, policy_version=version)
    first, second = _next(parent), _next(parent)
    assert first is not None and second is not None
    parent.send(("stop",))
    thread.join(5)
    batches: list[Decoded] = [first[1], second[1]]
    items = [it for b in batches for it in b.items]
    # an event decided ahead crosses as its canonical bytes (core.deferred): the same event
    ahead = "DeferredEvent" if same_pack else "CanonicalEvent"
    assert [type(it).__name__ for it in items] == ["CanonicalEvent", "DeadLetter", ahead, ahead]
    assert [items[0], *items[2:]] == evs
    if not same_pack:  # another pack version (changed on disk in between?): serve decides everything
        assert all(b.decisions is None for b in batches)
        return
    known = [d for b in batches for d in (b.decisions or [])]
    expected = engine.evaluate(evs, approvals=ApprovalBook(config))
    assert known == [None, None, expected[1], expected[2]]  # one per item; none for the dead letter


def test_front_leaves_a_share_undecoded_and_serve_gets_the_same_events(
    make_event: CanonicalEvent, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consumer process hands over part of a batch as ``Undecoded`` messages (its balance
    with serve); serve's ``decode_left`` turns the batches into exactly the events published."""
    monkeypatch.setattr(front_mod, "DecodeBalance", lambda depth, enabled: DecodeBalance(depth, start=0.5))
    evs = _events(make_event, 12)
    p0 = TopicPartition(TOPIC, 0)
    consumer = FakeConsumer({p0: [encode_event(e) for e in evs]}, {p0: 0})
    parent, _front, thread = _start(monkeypatch, consumer, {})
    got: list[CanonicalEvent | DeadLetter] = []
    left = 0
    while len(got) < len(evs):
        msg = _next(parent)
        assert msg is not None and msg[0] == "batch"
        batch: Decoded = msg[1]
        left += batch.left
        got += batch.decode_left(config=None, max_bytes=1 << 20, track_latency=False)
        parent.send(("ack", batch.offsets))
    parent.send(("stop",))
    thread.join(5)
    assert left >= 4  # half of the first batches at least (the share only moves by steps)
    assert got == evs and all(isinstance(e, CanonicalEvent) and e.canonical_bytes for e in got)
