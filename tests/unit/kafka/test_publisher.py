"""The publisher: Avro encoding, keys, raw topics, delivery errors — against an in-memory producer."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from hypothesis import given, settings

from core.avro import decode_event
from core.errors import KafkaError
from core.event import Approval
from ingest.kafka import (
    EVENTS_TOPIC,
    RAW_SOURCES,
    Publisher,
    event_key,
    make_producer,
    raw_topic,
    source_for_topic,
)
from ingest.kafka import _producer_config as producer_config
from tests.unit.kafka.fakes import FakeProducer
from tests.unit.kafka.strategies import wire_events as events


@settings(max_examples=150, deadline=None)
@given(events)
def test_publish_sends_avro_that_decodes_to_the_same_event_keyed_by_actor(event) -> None:  # type: ignore[no-untyped-def]
    fake = FakeProducer()
    Publisher(producer=fake).publish(event)
    [msg] = fake.sent
    assert msg.topic == EVENTS_TOPIC
    assert msg.value is not None and msg.value[:2] == b"\xc3\x01"
    assert decode_event(msg.value) == event
    expected = event.approval.actor if event.approval is not None else event.actor.id
    assert msg.key == expected.encode()
    assert ("content-type", b"application/vnd.railbook.event.v1+avro") in msg.headers


@given(events)
def test_approval_is_keyed_by_the_approved_actor_so_it_shares_the_actions_partition(event) -> None:  # type: ignore[no-untyped-def]
    grant = replace(event, approval=Approval("req-1", "grant", "agent:deployer", "sql:AlterTable", "db://x"))
    action = replace(event, approval=None, actor=replace(event.actor, id="agent:deployer"))
    assert event_key(grant) == event_key(action) == b"agent:deployer"


def test_publish_many_keeps_order_and_counts() -> None:
    from hypothesis import find

    evs = [find(events, lambda e: e.approval is None and len(e.event_id) > 0)]
    evs = [replace(evs[0], event_id=f"e{i}") for i in range(5)]
    fake = FakeProducer()
    pub = Publisher(producer=fake)
    assert pub.publish_many(evs) == 5
    assert [decode_event(m.value or b"").event_id for m in fake.sent] == [f"e{i}" for i in range(5)]
    assert pub.sent == 5 and pub.failed == 0


def test_publish_raw_goes_to_the_sources_raw_topic_with_headers() -> None:
    fake = FakeProducer()
    pub = Publisher(producer=fake)
    body = b'{"action": "opened"}'
    pub.publish_raw("github", body, key="delivery-1", headers={"X-GitHub-Event": "pull_request"})
    [msg] = fake.sent
    assert msg.topic == "railbook.raw.github"
    assert msg.value == body and msg.key == b"delivery-1"
    assert ("X-GitHub-Event", b"pull_request") in msg.headers
    assert ("content-type", b"application/json") in msg.headers


def test_raw_topic_rejects_unknown_sources_naming_the_known_ones() -> None:
    with pytest.raises(KafkaError, match="expected one of cloudtrail, github"):
        raw_topic("syslog")
    with pytest.raises(KafkaError):
        Publisher(producer=FakeProducer()).publish_raw("event", b"{}")


@pytest.mark.parametrize("source", RAW_SOURCES)
def test_raw_topics_map_back_to_their_source(source: str) -> None:
    assert source_for_topic(raw_topic(source)) == source


def test_topic_to_source() -> None:
    assert source_for_topic("railbook.events") == "event"
    assert source_for_topic("railbook.raw.") is None
    assert source_for_topic("railbook.decisions") is None
    assert source_for_topic("other") is None


def test_delivery_failures_surface_at_flush_once_with_count_and_topic() -> None:
    fake = FakeProducer(fail_topics={"railbook.raw.cloudtrail"})
    pub = Publisher("broker:9092", producer=fake)
    pub.publish_raw("cloudtrail", b"{}")
    pub.publish_raw("cloudtrail", b"{}")
    pub.publish_raw("k8s-audit", b"{}")
    assert pub.failed == 2 and pub.sent == 3
    with pytest.raises(KafkaError, match=r"2 message\(s\) could not be delivered to 'broker:9092'") as info:
        pub.flush()
    assert "railbook.raw.cloudtrail: RuntimeError" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)
    pub.flush()  # reported once, not forever


def test_send_exceptions_are_wrapped_with_the_topic() -> None:
    class MessageSizeTooLargeError(Exception):
        pass

    pub = Publisher("b:1", producer=FakeProducer(raise_on_send=MessageSizeTooLargeError("too big")))
    with pytest.raises(KafkaError, match=r"cannot publish to 'railbook.raw.mcp'.*max_request_size"):
        pub.publish_raw("mcp", b"x" * 10)


def test_context_manager_flushes_and_closes_and_refuses_later_sends() -> None:
    fake = FakeProducer()
    with Publisher(producer=fake) as pub:
        pub.publish_raw("mcp", b"{}")
    assert fake.flushed == 1 and fake.closed
    with pytest.raises(KafkaError, match="closed"):
        pub.publish_raw("mcp", b"{}")
    pub.close()  # idempotent


def test_context_manager_does_not_mask_the_original_error() -> None:
    fake = FakeProducer(fail_topics={"railbook.raw.mcp"})
    with pytest.raises(ValueError, match="original"), Publisher(producer=fake) as pub:
        pub.publish_raw("mcp", b"{}")
        raise ValueError("original")
    assert fake.closed


def test_publisher_needs_a_bootstrap_or_a_producer() -> None:
    with pytest.raises(KafkaError, match="bootstrap"):
        Publisher()


def test_producer_config_is_idempotent_acks_all_with_short_connect_timeout() -> None:
    cfg = producer_config("h:1", "cid", 2.0, 30.0, {"linger_ms": 50})
    assert cfg["acks"] == "all" and cfg["enable_idempotence"] is True
    assert cfg["max_in_flight_requests_per_connection"] <= 5
    assert cfg["bootstrap_timeout_ms"] == 2000
    assert cfg["delivery_timeout_ms"] >= cfg["request_timeout_ms"] + cfg["linger_ms"]
    assert cfg["linger_ms"] == 50


def test_unreachable_broker_is_a_clear_kafka_error_within_the_connect_timeout() -> None:
    from ingest._kafka_broker import free_port

    port = free_port()  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(
        KafkaError, match=rf"cannot reach a Kafka broker at '127.0.0.1:{port}' within 1s"
    ) as info:
        make_producer(f"127.0.0.1:{port}", connect_timeout=1.0)
    assert time.monotonic() - t0 < 10
    assert "scripts/kafka-broker.sh start" in info.value.diagnostics()


@pytest.mark.parametrize(
    ("topic", "source"),
    [
        ("team-a.railbook.events", "event"),
        ("bench.7.railbook.raw.github", "github"),
        ("xrailbook.events", None),
        ("railbook.events.x", None),
        ("a.railbook.decisions", None),
    ],
)
def test_namespaced_topics(topic: str, source: str | None) -> None:
    assert source_for_topic(topic) == source
