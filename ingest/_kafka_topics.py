"""Kafka topic names, partition keys and content types shared by the publisher and the consumer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from core.errors import KafkaError

if TYPE_CHECKING:
    from core.event import CanonicalEvent

__all__ = [
    "AVRO_CONTENT_TYPE",
    "CHECKPOINTS_TOPIC",
    "CONTENT_TYPE_HEADER",
    "DEADLETTERS_TOPIC",
    "DECISIONS_TOPIC",
    "EVENTS_TOPIC",
    "JSON_CONTENT_TYPE",
    "RAW_SOURCES",
    "RAW_TOPIC_PREFIX",
    "VIOLATIONS_TOPIC",
    "event_key",
    "raw_topic",
    "source_for_topic",
]

EVENTS_TOPIC = "railbook.events"
CHECKPOINTS_TOPIC = "railbook.checkpoints"
DECISIONS_TOPIC = "railbook.decisions"
VIOLATIONS_TOPIC = "railbook.violations"
DEADLETTERS_TOPIC = "railbook.deadletters"
RAW_TOPIC_PREFIX = "railbook.raw."
#: sources whose original records travel on a raw topic of their own
RAW_SOURCES: tuple[str, ...] = ("cloudtrail", "github", "k8s-audit", "claude-code", "mcp")

#: header naming the schema of a message's value (consumers may route on it; decoding never trusts it)
CONTENT_TYPE_HEADER = "content-type"
AVRO_CONTENT_TYPE = b"application/vnd.railbook.event.v1+avro"
JSON_CONTENT_TYPE = b"application/json"


def raw_topic(source: str) -> str:
    """The raw topic of a source: ``railbook.raw.cloudtrail``, …"""
    if source not in RAW_SOURCES:
        raise KafkaError(
            f"no raw topic for source {source!r}; expected one of {', '.join(RAW_SOURCES)} "
            "(canonical events go to railbook.events with publish())"
        )
    return RAW_TOPIC_PREFIX + source


def source_for_topic(topic: str) -> str | None:
    """``'event'`` for railbook.events, the source for a raw topic, ``None`` for anything else.

    A namespace prefix ending in a dot is allowed (``team-a.railbook.events``,
    ``bench-7.railbook.raw.github``), so several deployments, tests or benchmark runs can share
    one cluster without sharing topics.
    """
    for prefix in ("", *_namespaces(topic)):
        name = topic[len(prefix) :]
        if name == EVENTS_TOPIC:
            return "event"
        if name.startswith(RAW_TOPIC_PREFIX):
            return name[len(RAW_TOPIC_PREFIX) :] or None
    return None


def _namespaces(topic: str) -> list[str]:
    # every prefix that ends just before a "railbook." component
    out = []
    start = 0
    while (i := topic.find(".railbook.", start)) != -1:
        out.append(topic[: i + 1])
        start = i + 1
    return out


def event_key(event: CanonicalEvent) -> bytes:
    """Partition key: the acting actor, or for an approval the actor it approves (see module doc)."""
    actor = event.approval.actor if event.approval is not None else event.actor.id
    return actor.encode("utf-8")


def event_key_of_json(event: Mapping[str, Any]) -> bytes:
    """:func:`event_key` of an event in its JSON shape (``CanonicalEvent.to_dict``, or its canonical
    bytes parsed): for code that holds the JSON and should not rebuild the event to key it."""
    approval = event.get("approval")
    actor: str = approval["actor"] if approval is not None else event["actor"]["id"]
    return actor.encode("utf-8")
