"""publish → serve → ledger against a real broker: exactly once, offsets in the ledger, outputs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from core.avro import MAGIC, decode_event, encode_event
from ingest.kafka import Publisher, event_key
from railbook.cli._kafka_bench import mixed_stream
from tests.integration.kafka.helpers import (
    consume_all,
    create_topic,
    ledger_dead_letters,
    ledger_event_ids,
    ledger_offsets,
    publish_events,
    run_cli,
    run_serve,
)

pytestmark = pytest.mark.integration


def test_publisher_keys_keep_one_actors_events_on_one_partition(kafka_broker: str, kafka_ns: str) -> None:
    topic = f"{kafka_ns}railbook.events"
    create_topic(kafka_broker, topic, 4)
    events = mixed_stream(300, run=kafka_ns)
    publish_events(kafka_broker, topic, events)
    msgs = consume_all(kafka_broker, topic, expect=300)
    assert len(msgs) == 300
    partitions_by_key: dict[bytes, set[int]] = {}
    for m in msgs:
        partitions_by_key.setdefault(m.key, set()).add(m.partition)
        assert m.value[:2] == MAGIC
    assert all(len(p) == 1 for p in partitions_by_key.values()), partitions_by_key
    assert len({p for ps in partitions_by_key.values() for p in ps}) > 1  # keys do spread
    decoded = {decode_event(m.value).event_id: m for m in msgs}
    assert set(decoded) == {e.event_id for e in events}
    for e in events:  # order within each key is publication order
        assert decoded[e.event_id].key == event_key(e)
    by_key: dict[bytes, list[int]] = {}
    for m in sorted(msgs, key=lambda m: (m.partition, m.offset)):
        by_key.setdefault(m.key, []).append(int(decode_event(m.value).event_id.rsplit(":", 1)[1]))
    assert all(seq == sorted(seq) for seq in by_key.values())


def test_publish_serve_ledger_exactly_once_with_outputs(
    kafka_broker: str, kafka_ns: str, tmp_path: Path
) -> None:
    topic = f"{kafka_ns}railbook.events"
    create_topic(kafka_broker, topic, 2)
    events = mixed_stream(1500, run=kafka_ns)
    # the same event published twice (a producer retry at the application level) is one entry
    publish_events(kafka_broker, topic, [*events, *events[:100]])
    ledger = tmp_path / "ledger.duckdb"
    group = f"{kafka_ns}g"
    doc = run_serve(
        ledger,
        kafka_broker,
        "--namespace",
        kafka_ns,
        "--group",
        group,
        "--idle-exit",
        "4",
        "--batch-size",
        "500",
    )
    assert doc["messages"] == 1600
    assert doc["appended"] == 1500 and doc["duplicates"] == 100 and doc["dead_lettered"] == 0
    # the consumer process left part of the batches to serve (railbook.serve._balance): serve had
    # acknowledged everything when the first batch was ready, so from the second on it leaves some
    assert doc["decoded_in_serve"] > 0
    ids = ledger_event_ids(ledger)
    assert sorted(ids) == sorted(e.event_id for e in events)
    # offsets stored with the entries: next offset of every partition = its end
    offsets = ledger_offsets(ledger, group)
    msgs = consume_all(kafka_broker, topic, expect=1600)
    ends: dict[tuple[str, int], int] = {}
    for m in msgs:
        ends[(m.topic, m.partition)] = max(ends.get((m.topic, m.partition), 0), m.offset + 1)
    assert {k: v for k, v in offsets.items() if k[0] == topic} == ends

    # outputs: one decision per entry (at least once), violations among them, a signed checkpoint
    decisions = consume_all(kafka_broker, f"{kafka_ns}railbook.decisions", timeout=10)
    mine = [json.loads(m.value) for m in decisions if json.loads(m.value)["event_id"].startswith(kafka_ns)]
    assert {d["event_id"] for d in mine} == set(ids)
    assert {d["seq"] for d in mine} == set(range(1500))
    violations = [
        json.loads(m.value) for m in consume_all(kafka_broker, f"{kafka_ns}railbook.violations", timeout=10)
    ]
    mine_v = {v["event_id"] for v in violations if v["event_id"].startswith(kafka_ns)}
    assert mine_v == {d["event_id"] for d in mine if d["decision"]["outcome"] == "deny"}
    assert doc["violations"] == len(mine_v) > 0
    checkpoints = consume_all(kafka_broker, f"{kafka_ns}railbook.checkpoints", timeout=10)
    sizes = {int(dict(m.headers)["railbook-tree-size"]) for m in checkpoints}
    assert 1500 in sizes
    assert any(m.value.decode().count("\n\n") == 1 and "\n1500\n" in m.value.decode() for m in checkpoints)

    # a restart reads nothing again, even when the group's Kafka offsets are reset to 0:
    # the ledger's offsets are the record, not Kafka's
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    c = KafkaConsumer(bootstrap_servers=kafka_broker, group_id=group, enable_auto_commit=False)
    c.commit({TopicPartition(topic, p): OffsetAndMetadata(0, "", -1) for p in (0, 1)})
    c.close(autocommit=False)
    more = mixed_stream(10, run=f"{kafka_ns}more")
    publish_events(kafka_broker, topic, more)
    doc = run_serve(ledger, kafka_broker, "--namespace", kafka_ns, "--group", group, "--idle-exit", "4")
    assert doc["messages"] == 10 and doc["appended"] == 10 and doc["duplicates"] == 0
    assert len(ledger_event_ids(ledger)) == 1510
    verify = run_cli(ledger, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert_decided_as_in_order(ledger)


def assert_decided_as_in_order(path: Path) -> None:
    """The consumer process decided most events ahead (serve's default); the ledger must hold
    exactly what deciding every event in ledger order, with one approval book, gives."""
    from core.config import load_config
    from ledger import Ledger
    from policy import ApprovalBook, PolicyEngine

    config = load_config(None, ledger=str(path))
    with Ledger.open(config, read_only=True) as led:
        records = list(led.iter_records())
    engine = PolicyEngine.load(config)
    again = engine.evaluate([r.event for r in records], approvals=ApprovalBook(config))
    assert sum(r.decision.outcome == "deny" for r in records) > 0
    assert (
        sum(
            engine.catalog.resolve(
                r.event.action, r.event.attributes, r.event.resource.environment
            ).destructive
            for r in records
        )
        > 0
    )
    assert [r.decision.canonical_bytes for r in records] == [d.canonical_bytes for d in again]


def test_bad_messages_become_dead_letters_with_topic_partition_offset(
    kafka_broker: str, kafka_ns: str, tmp_path: Path
) -> None:
    events_topic = f"{kafka_ns}railbook.events"
    raw_k8s = f"{kafka_ns}railbook.raw.k8s-audit"
    create_topic(kafka_broker, events_topic, 1)
    create_topic(kafka_broker, raw_k8s, 1)
    good = mixed_stream(3, run=kafka_ns)
    valid = encode_event(good[0])
    bad = {
        "bad-avro": valid[:10] + b"\xff" * 30,
        "unknown-schema": MAGIC + b"\x11" * 8 + valid[10:],
        "bad-header": b'{"event_id": "json on the Avro topic"}',
        "oversized": encode_event(replace(good[1], event_id=f"{kafka_ns}big", raw="x" * 300_000)),
    }
    with Publisher(kafka_broker, producer_config={"max_request_size": 8 << 20}) as pub:
        pub.send(events_topic, encode_event(good[0]))
        offsets = {}
        for i, (reason, value) in enumerate(bad.items()):
            pub.send(events_topic, value)
            offsets[reason] = i + 1
        pub.send(events_topic, encode_event(good[2]))
        # JSON of the wrong shape on a raw topic, and bytes that are not JSON at all
        pub.send(raw_k8s, b'{"kind": "Event", "apiVersion": "audit.k8s.io/v1", "verb": 7}')
        pub.send(raw_k8s, b"\x00\x01 not json")
    ledger = tmp_path / "ledger.duckdb"
    doc = run_serve(
        ledger,
        kafka_broker,
        "--namespace",
        kafka_ns,
        "--group",
        f"{kafka_ns}g",
        "--topics",
        f"{events_topic},{raw_k8s}",
        "--idle-exit",
        "4",
        "--max-message-bytes",
        "200000",
    )
    assert doc["messages"] == 8
    assert doc["appended"] == 2 and doc["dead_lettered"] == 6
    assert sorted(ledger_event_ids(ledger)) == sorted([good[0].event_id, good[2].event_id])
    dls = {d.where: d for d in ledger_dead_letters(ledger)}
    for reason, offset in offsets.items():
        d = dls[f"kafka:{events_topic}/0@{offset}"]
        assert d.reason == reason, (reason, d.reason, d.detail)
        assert d.source == "kafka"
        assert d.raw == bad[reason][: len(d.raw)]
    raw_dls = [d for w, d in dls.items() if w.startswith(f"kafka:{raw_k8s}/0@")]
    assert len(raw_dls) == 2 and all(d.source == "k8s-audit" and d.reason for d in raw_dls)
    assert {d.raw for d in raw_dls} == {
        b'{"kind": "Event", "apiVersion": "audit.k8s.io/v1", "verb": 7}',
        b"\x00\x01 not json",
    }
    # and the dead-letter topic carries them too, reason and origin in the headers
    out = [
        m
        for m in consume_all(kafka_broker, f"{kafka_ns}railbook.deadletters", timeout=10)
        if dict(m.headers)["railbook-where"].decode().startswith(f"kafka:{kafka_ns}")
    ]
    assert sorted(dict(m.headers)["railbook-reason"].decode() for m in out) == sorted(
        [*bad, *(d.reason for d in raw_dls)]
    )
