"""Two ``railbook serve`` processes in one consumer group on a multi-partition topic."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from railbook.cli._kafka_bench import mixed_stream
from tests.integration.kafka.helpers import create_topic, ledger_event_ids, publish_events, start_serve

pytestmark = pytest.mark.integration


def _group_members(bootstrap: str, group: str) -> int:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, bootstrap_timeout_ms=5000)
    try:
        desc = admin.describe_groups([group])[group]
        return len(desc["members"]) if desc["group_state"] == "Stable" else 0
    except Exception:  # coordinator not elected yet on a fresh broker
        return 0
    finally:
        admin.close()


def test_two_serve_processes_in_one_group_every_event_exactly_once(
    kafka_broker: str, kafka_ns: str, tmp_path: Path
) -> None:
    topic = f"{kafka_ns}railbook.events"
    group = f"{kafka_ns}g"
    create_topic(kafka_broker, topic, 4)
    first, second = mixed_stream(3000, run=f"{kafka_ns}a"), mixed_stream(3000, run=f"{kafka_ns}b")
    a_ledger, b_ledger = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    args = ("--group", group, "--topics", topic, "--idle-exit", "6", "--batch-size", "200", "--no-outputs")
    a = start_serve(a_ledger, kafka_broker, *args)
    b = None
    try:
        publish_events(kafka_broker, topic, first)
        time.sleep(1.0)  # let A consume part of the first half alone …
        b = start_serve(b_ledger, kafka_broker, *args)  # … then B joins: a rebalance mid-stream
        deadline = time.monotonic() + 60
        while _group_members(kafka_broker, group) < 2 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert _group_members(kafka_broker, group) == 2, "B never joined the group"
        publish_events(kafka_broker, topic, second)
        assert a.wait(180) == 0, (tmp_path / "a.serve.log").read_text()[-3000:]
        assert b.wait(180) == 0, (tmp_path / "b.serve.log").read_text()[-3000:]
    finally:
        for p in (a, b):
            if p is not None and p.poll() is None:
                p.kill()
    ids_a, ids_b = ledger_event_ids(a_ledger), ledger_event_ids(b_ledger)
    assert ids_a and ids_b, "both members must have consumed something"
    assert not set(ids_a) & set(ids_b), "an event landed in both ledgers"
    assert len(ids_a) == len(set(ids_a)) and len(ids_b) == len(set(ids_b))
    assert sorted(ids_a + ids_b) == sorted(e.event_id for e in first + second)
