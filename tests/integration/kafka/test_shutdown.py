"""SIGTERM / SIGINT: ``railbook serve`` finishes the batch in flight, commits, and exits 0."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from railbook.cli._kafka_bench import mixed_stream
from tests.integration.kafka.helpers import (
    create_topic,
    ledger_event_ids,
    ledger_offsets,
    publish_events,
    run_serve,
    start_serve,
)

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_graceful_stop_mid_stream(kafka_broker: str, kafka_ns: str, tmp_path: Path, signum: int) -> None:
    from kafka import KafkaConsumer, TopicPartition

    topic = f"{kafka_ns}railbook.events"
    group = f"{kafka_ns}g"
    create_topic(kafka_broker, topic, 2)
    events = mixed_stream(6000, run=kafka_ns)
    publish_events(kafka_broker, topic, events)
    ledger = tmp_path / "ledger.duckdb"
    log = ledger.with_suffix(".serve.log")
    proc = start_serve(ledger, kafka_broker, "--namespace", kafka_ns, "--group", group, "--batch-size", "100")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "assigned topic=" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signum)
    assert proc.wait(30) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "finishing the batch in flight" in text and "serve stopped" in text
    ids = ledger_event_ids(ledger)
    assert 0 < len(ids) < len(events), "the stop did not land mid-stream"
    assert len(ids) == len(set(ids))
    # the group's Kafka offsets equal the ledger's: a clean hand-over point
    stored = {k: v for k, v in ledger_offsets(ledger, group).items() if k[0] == topic}
    c = KafkaConsumer(bootstrap_servers=kafka_broker, group_id=group, enable_auto_commit=False)
    try:
        kafka = {(topic, p): c.committed(TopicPartition(topic, p)) for p in (0, 1)}
    finally:
        c.close(autocommit=False)
    assert {k: v for k, v in kafka.items() if v is not None} == stored
    assert sum(stored.values()) == len(ids)  # one event per message here
    run_serve(ledger, kafka_broker, "--namespace", kafka_ns, "--group", group, "--idle-exit", "4")
    ids = ledger_event_ids(ledger)
    assert sorted(ids) == sorted(e.event_id for e in events)
