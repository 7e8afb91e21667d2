"""serve's loop against an in-memory consumer, pipeline and producer: seeks, offsets, outputs, stop."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from kafka.structs import OffsetAndMetadata, TopicPartition

from core.avro import encode_event
from core.deadletter import DeadLetter
from core.errors import LedgerError
from core.event import CanonicalEvent
from ingest.kafka import Publisher
from policy import Decision, Reason
from railbook.pipeline import BatchSummary, Evaluated
from railbook.serve import OUTPUT_CURSOR, ServeOptions, Server
from tests.unit.kafka.fakes import FakeProducer

TOPIC = "railbook.events"


@dataclass
class Msg:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    timestamp: int = 0
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class FakeConsumer:
    """Partitions as lists; the first poll "rebalances" (calls the listener), like kafka-python."""

    def __init__(
        self, logs: dict[TopicPartition, list[bytes]], group_offsets: dict[TopicPartition, int]
    ) -> None:
        self.logs = logs
        self.group = dict(group_offsets)
        self.pos = {tp: self.group.get(tp, 0) for tp in logs}  # Kafka's own idea: the group offset
        self.listener: Any = None
        self.assigned: set[TopicPartition] = set()
        self.commits: list[dict[TopicPartition, int]] = []
        self.closed = False

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[TopicPartition, list[Msg]]:
        if not self.assigned:
            self.assigned = set(self.logs)
            self.listener.on_partitions_assigned(self.assigned)
        out: dict[TopicPartition, list[Msg]] = {}
        budget = max_records or 10**9
        for tp in sorted(self.assigned):
            log = self.logs[tp]
            take = log[self.pos[tp] : self.pos[tp] + budget]
            if take:
                out[tp] = [Msg(tp.topic, tp.partition, self.pos[tp] + i, v) for i, v in enumerate(take)]
                self.pos[tp] += len(take)
                budget -= len(take)
        return out

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.pos[tp] = offset

    def seek_to_beginning(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self.pos[tp] = 0

    def committed(self, tp: TopicPartition) -> int | None:
        return self.group.get(tp)

    def commit(self, offsets: Mapping[TopicPartition, OffsetAndMetadata]) -> None:
        self.commits.append({tp: o.offset for tp, o in offsets.items()})
        self.group.update({tp: o.offset for tp, o in offsets.items()})

    commit_async = commit

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def close(self, autocommit: bool = True) -> None:
        self.closed = True


@dataclass
class FakeCheckpoint:
    origin: str
    tree_size: int
    signed_note_text: str


class FakeLedger:
    origin = "test.example/ledger"

    def __init__(self, offsets: dict[str, dict[tuple[str, int], int]] | None = None) -> None:
        self.offsets = offsets or {}
        self.entries: list[tuple[CanonicalEvent, Decision]] = []
        self.dead: list[DeadLetter] = []
        self.transactions = 0
        self.on_checkpoint: Any = None

    @property
    def size(self) -> int:
        return len(self.entries)

    def committed_offsets(self, group: str) -> dict[tuple[str, int], int]:
        return dict(self.offsets.get(group, {}))

    def append(
        self,
        records: Sequence[Any],
        *,
        dead_letters: Sequence[DeadLetter] = (),
        offsets: Mapping[str, Mapping[tuple[str, int], int]] | None = None,
    ) -> None:
        self.transactions += 1
        self.entries.extend(records)
        self.dead.extend(dead_letters)
        for g, parts in (offsets or {}).items():
            self.offsets.setdefault(g, {}).update(parts)

    def iter_records(self, *, from_seq: int = 0) -> Iterable[Any]:
        for seq, (ev, dec) in enumerate(self.entries):
            if seq >= from_seq:
                yield type("E", (), {"seq": seq, "event": ev, "decision": dec})()

    def latest_checkpoint(self) -> FakeCheckpoint | None:
        return FakeCheckpoint(self.origin, self.size, f"{self.origin}\n{self.size}\nROOT=\n\n— sig\n")

    def checkpoint(self) -> None:
        if self.on_checkpoint is not None:
            cp = self.latest_checkpoint()
            self.on_checkpoint(cp)


DENY = Decision("deny", (Reason("rail1-agent-in-prod", 1, "high", "agent in prod"),), "v1")
ALLOW = Decision("allow", (), "v1")


class FakePipeline:
    """Dedupes by event id, evaluates, then appends in one 'transaction', like
    railbook.pipeline.Pipeline (evaluate on the main thread, commit on serve's writer thread)."""

    def __init__(self, ledger: FakeLedger, *, fail_commit: int | None = None) -> None:
        self.ledger = ledger
        self.calls: list[tuple[list[Any], Any]] = []
        self.evaluated: list[list[str]] = []
        self.rebuilds = 0
        self.fail_commit = fail_commit
        """Raise on the commit with this index (0-based)."""
        self.commits = 0

    def evaluate(
        self,
        items: Iterable[Any],
        *,
        in_flight: AbstractSet[str] = frozenset(),
        existing: Callable[[Iterable[str]], AbstractSet[str]] | None = None,
        known: Any = None,  # decisions made ahead: none without the consumer process
    ) -> Evaluated:
        assert known is None
        items = list(items)
        self.calls.append((items, None))
        have = {e.event_id for e, _ in self.ledger.entries} | set(in_flight)
        fresh = []
        duplicates = 0
        for it in items:
            if isinstance(it, DeadLetter):
                continue
            if it.event_id in have:
                duplicates += 1
            else:
                have.add(it.event_id)
                fresh.append((it, DENY if it.resource.environment == "prod" else ALLOW))
        self.evaluated.append([e.event_id for e, _ in fresh])
        dead = tuple(it for it in items if isinstance(it, DeadLetter))
        return Evaluated(len(items), duplicates, tuple(fresh), dead)

    def commit(self, batch: Evaluated, *, offsets: Any = None) -> BatchSummary:
        n, self.commits = self.commits, self.commits + 1
        if n == self.fail_commit:
            raise LedgerError("disk full (fake)")
        s = BatchSummary(read=batch.read, duplicates=batch.duplicates, dead_lettered=len(batch.dead))
        start = self.ledger.size
        self.ledger.append(list(batch.records), dead_letters=batch.dead, offsets=offsets)
        for i, (ev, dec) in enumerate(batch.records):
            s.entries.append((start + i, ev, dec))
            s.violations += dec.is_violation
        s.appended = len(batch.records)
        return s

    def rebuild_approvals(self) -> None:
        self.rebuilds += 1


def _events(make_event: CanonicalEvent, n: int) -> list[CanonicalEvent]:
    envs = ["prod", "dev", "staging"]
    return [
        replace(make_event, event_id=f"e{i}", resource=replace(make_event.resource, environment=envs[i % 3]))
        for i in range(n)
    ]


def _server(ledger: FakeLedger, consumer: FakeConsumer, producer: FakeProducer | None, **opts: Any) -> Server:
    options = ServeOptions(
        "fake:9092",
        group="g",
        topics=(TOPIC,),
        batch_size=opts.pop("batch_size", 4),
        poll_timeout=0.0,
        publish_outputs=producer is not None,
        **opts,
    )
    pub = Publisher("fake:9092", producer=producer) if producer is not None else None
    server = Server(None, FakePipeline(ledger), options, consumer=consumer, publisher=pub)  # type: ignore[arg-type]
    consumer.listener = type(
        "L",
        (),
        {
            "on_partitions_assigned": lambda _s, a: server._on_assigned(a),
            "on_partitions_revoked": lambda _s, r: server._on_revoked(r),
        },
    )()
    return server


def _drain(server: Server, consumer: FakeConsumer) -> None:
    def stop_when_done(_s: BatchSummary) -> None:
        if all(consumer.pos[tp] >= len(log) for tp, log in consumer.logs.items()):
            server.stop()

    server.on_batch = stop_when_done
    server.run()


def test_seeks_to_the_ledgers_offsets_not_kafkas_and_stores_next_offsets(make_event: CanonicalEvent) -> None:
    evs = _events(make_event, 10)
    p0, p1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
    logs = {p0: [encode_event(e) for e in evs[:6]], p1: [encode_event(e) for e in evs[6:]]}
    # the ledger already holds p0 up to offset 4; Kafka's group offset lags (a commit was lost)
    ledger = FakeLedger({"g": {(TOPIC, 0): 4}})
    ledger.entries = [(e, ALLOW) for e in evs[:4]]
    consumer = FakeConsumer(logs, {p0: 1})
    _drain(_server(ledger, consumer, None), consumer)
    assert [e.event_id for e, _ in ledger.entries] == [f"e{i}" for i in range(10)]  # nothing twice
    assert ledger.offsets["g"][(TOPIC, 0)] == 6 and ledger.offsets["g"][(TOPIC, 1)] == 4
    assert consumer.group[p0] == 6 and consumer.group[p1] == 4  # the group follows the ledger
    assert consumer.closed


def test_records_fetched_before_the_seek_are_dropped_unprocessed(make_event: CanonicalEvent) -> None:
    evs = _events(make_event, 5)
    p0 = TopicPartition(TOPIC, 0)
    ledger = FakeLedger({"g": {(TOPIC, 0): 3}})
    ledger.entries = [(e, ALLOW) for e in evs[:3]]
    consumer = FakeConsumer({p0: [encode_event(e) for e in evs]}, {})  # Kafka would start at 0
    server = _server(ledger, consumer, None)
    _drain(server, consumer)
    pipeline = server.pipeline
    assert isinstance(pipeline, FakePipeline)
    processed = [it.event_id for items, _ in pipeline.calls for it in items]
    assert processed == ["e3", "e4"]  # e0..e2 were fetched by the rebalancing poll and dropped


def test_group_offset_ahead_of_the_ledger_is_a_hand_over_from_another_ledger(
    make_event: CanonicalEvent,
) -> None:
    evs = _events(make_event, 6)
    p0 = TopicPartition(TOPIC, 0)
    ledger = FakeLedger({"g": {(TOPIC, 0): 1}})
    consumer = FakeConsumer({p0: [encode_event(e) for e in evs]}, {p0: 4})
    _drain(_server(ledger, consumer, None), consumer)
    assert [e.event_id for e, _ in ledger.entries] == ["e4", "e5"]


def test_bad_messages_are_dead_letters_in_the_same_transaction_and_on_the_topic(
    make_event: CanonicalEvent,
) -> None:
    p0 = TopicPartition(TOPIC, 0)
    logs = {p0: [encode_event(make_event), b"garbage", b"", encode_event(replace(make_event, event_id="e2"))]}
    ledger = FakeLedger()
    consumer = FakeConsumer(logs, {})
    producer = FakeProducer()
    _drain(_server(ledger, consumer, producer), consumer)
    assert [d.where for d in ledger.dead] == [f"kafka:{TOPIC}/0@1", f"kafka:{TOPIC}/0@2"]
    assert [d.reason for d in ledger.dead] == ["bad-header", "empty"]
    assert ledger.offsets["g"][(TOPIC, 0)] == 4
    dl_msgs = [m for m in producer.sent if m.topic == "railbook.deadletters"]
    assert [dict(m.headers)["railbook-where"] for m in dl_msgs] == [
        f"kafka:{TOPIC}/0@1".encode(),
        f"kafka:{TOPIC}/0@2".encode(),
    ]
    assert dl_msgs[0].value == b"garbage"


def test_decisions_violations_and_checkpoints_are_published_and_the_cursor_stored(
    make_event: CanonicalEvent,
) -> None:
    evs = _events(make_event, 9)
    p0 = TopicPartition(TOPIC, 0)
    ledger = FakeLedger()
    consumer = FakeConsumer({p0: [encode_event(e) for e in evs]}, {})
    producer = FakeProducer()
    _drain(_server(ledger, consumer, producer, output_flush_seconds=0.0), consumer)
    decisions = [json.loads(m.value or b"") for m in producer.sent if m.topic == "railbook.decisions"]
    assert [d["seq"] for d in decisions] == list(range(9))
    assert [d["event_id"] for d in decisions] == [e.event_id for e in evs]
    violations = [json.loads(m.value or b"") for m in producer.sent if m.topic == "railbook.violations"]
    assert [v["event_id"] for v in violations] == ["e0", "e3", "e6"]  # the prod ones
    assert violations[0]["event"]["event_id"] == "e0" and violations[0]["decision"]["outcome"] == "deny"
    cps = [m for m in producer.sent if m.topic == "railbook.checkpoints"]
    assert cps and dict(cps[-1].headers)["railbook-tree-size"] == b"9"
    assert ledger.offsets["g"][OUTPUT_CURSOR] == 9


def test_restart_republishes_decisions_after_the_stored_cursor(make_event: CanonicalEvent) -> None:
    evs = _events(make_event, 5)
    ledger = FakeLedger({"g": {OUTPUT_CURSOR: 3, (TOPIC, 0): 5}})
    ledger.entries = [(e, ALLOW) for e in evs]
    consumer = FakeConsumer({TopicPartition(TOPIC, 0): [encode_event(e) for e in evs]}, {})
    producer = FakeProducer()
    server = _server(ledger, consumer, producer)
    server.on_batch = None
    server._stop.set()  # start, republish, stop at once
    server.run()
    decisions = [json.loads(m.value or b"") for m in producer.sent if m.topic == "railbook.decisions"]
    assert [d["seq"] for d in decisions] == [3, 4]
    assert ledger.offsets["g"][OUTPUT_CURSOR] == 5


def test_stop_finishes_the_batch_in_flight_then_returns(make_event: CanonicalEvent) -> None:
    evs = _events(make_event, 20)
    p0 = TopicPartition(TOPIC, 0)
    ledger = FakeLedger()
    consumer = FakeConsumer({p0: [encode_event(e) for e in evs]}, {})
    server = _server(ledger, consumer, None, batch_size=5)
    server.on_batch = lambda _s: server.stop()  # a SIGTERM arriving during the first batch
    stats = server.run()
    # the batch being appended and the one already evaluated behind it are finished, no more
    assert stats.batches in (1, 2) and ledger.size == 5 * stats.batches
    assert ledger.offsets["g"][(TOPIC, 0)] == ledger.size and consumer.group[p0] == ledger.size


@pytest.mark.parametrize("limit", [3, 7])
def test_max_messages_stops_after_that_many(make_event: CanonicalEvent, limit: int) -> None:
    evs = _events(make_event, 12)
    consumer = FakeConsumer({TopicPartition(TOPIC, 0): [encode_event(e) for e in evs]}, {})
    ledger = FakeLedger()
    stats = _server(ledger, consumer, None, batch_size=limit, max_messages=limit).run()
    assert stats.messages == limit and ledger.size == limit


@pytest.mark.parametrize("ahead", [False, True])
def test_a_failed_append_rebuilds_approvals_and_a_restart_loses_and_repeats_nothing(
    make_event: CanonicalEvent, ahead: bool
) -> None:
    evs = _events(make_event, 12)
    p0 = TopicPartition(TOPIC, 0)
    log = [encode_event(e) for e in evs]
    ledger = FakeLedger()
    consumer = FakeConsumer({p0: log}, {})
    server = _server(ledger, consumer, None, batch_size=4, evaluate_ahead=ahead)
    failing = FakePipeline(ledger, fail_commit=1)
    failing.reader = lambda: lambda ids: set()  # type: ignore[attr-defined]
    server.pipeline = failing  # type: ignore[assignment]
    with pytest.raises(LedgerError, match="disk full"):
        _drain(server, consumer)
    # batch 0 committed with its offsets; batch 1 rolled back; batch 2 (evaluated behind it) dropped
    assert [e.event_id for e, _ in ledger.entries] == ["e0", "e1", "e2", "e3"]
    assert ledger.offsets["g"][(TOPIC, 0)] == 4 and consumer.group.get(p0, 0) <= 4
    assert failing.rebuilds == 1 and len(failing.evaluated) == (3 if ahead else 2)
    # the restart starts from the ledger's offsets: every event exactly once
    consumer2 = FakeConsumer({p0: log}, dict(consumer.group))
    _drain(_server(ledger, consumer2, None, batch_size=4), consumer2)
    assert [e.event_id for e, _ in ledger.entries] == [f"e{i}" for i in range(12)]
    assert ledger.offsets["g"][(TOPIC, 0)] == 12


def test_the_next_batch_is_evaluated_while_the_previous_one_is_appended(make_event: CanonicalEvent) -> None:
    evs = _events(make_event, 12)
    p0 = TopicPartition(TOPIC, 0)
    ledger = FakeLedger()
    consumer = FakeConsumer({p0: [encode_event(e) for e in evs]}, {})
    server = _server(ledger, consumer, None, batch_size=4, evaluate_ahead=True)
    pipeline = server.pipeline
    assert isinstance(pipeline, FakePipeline)
    overlapped: list[bool] = []
    gate = __import__("threading").Event()
    real_commit, real_evaluate = pipeline.commit, pipeline.evaluate

    def slow_commit(batch: Evaluated, *, offsets: Any = None) -> BatchSummary:
        gate.wait(5)  # held until the main thread has evaluated the next batch
        return real_commit(batch, offsets=offsets)

    def evaluate(items: Iterable[Any], **kw: Any) -> Evaluated:
        overlapped.append(server._inflight is not None)
        out = real_evaluate(items, **kw)
        if server._inflight is not None:
            gate.set()
        return out

    pipeline.commit = slow_commit
    pipeline.evaluate = evaluate
    pipeline.reader = lambda: lambda ids: set()
    _drain(server, consumer)
    assert overlapped[:3] == [False, True, True]
    assert [e.event_id for e, _ in ledger.entries] == [f"e{i}" for i in range(12)]
