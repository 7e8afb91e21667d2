"""Publishing to Kafka: the small API agent runtimes, CI jobs and ``railbook publish`` use.

Topics (DESIGN.md, "Modes: Kafka")::

    railbook.events          canonical events, Avro single-object encoding (core.avro)
    railbook.raw.<source>    original JSON records (cloudtrail, github, k8s-audit, claude-code, mcp),
                             normalised by the adapters on the consumer side
    railbook.checkpoints     signed checkpoints (C2SP signed note text), published by ``railbook serve``
    railbook.decisions       one JSON document per ledger entry: seq, event id, decision
    railbook.violations      the same, for violations only (what a SIEM subscribes to)
    railbook.deadletters     raw bytes of every dead letter, reason and origin in the headers

Keys: an event is keyed by the actor whose action it is — for an approval event that is the
approved actor (``approval.actor``), not the approver. Kafka orders messages within a partition
only, so this keeps one actor's actions, and the grants that cover them, in publication order:
a grant published before the action it covers is consumed before it, and "not used before" is
decided in the order the actor acted. Raw records are keyed by the caller (e.g. the GitHub
delivery id) or left unkeyed.

The producer is idempotent with ``acks=all``: a retry after a lost acknowledgement cannot write
a message twice, and a message is acknowledged only once every in-sync replica has it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from core.avro import encode_event
from core.errors import KafkaError
from ingest._kafka_decode import decode_message, message_where
from ingest._kafka_topics import (
    AVRO_CONTENT_TYPE,
    CHECKPOINTS_TOPIC,
    CONTENT_TYPE_HEADER,
    DEADLETTERS_TOPIC,
    DECISIONS_TOPIC,
    EVENTS_TOPIC,
    JSON_CONTENT_TYPE,
    RAW_SOURCES,
    RAW_TOPIC_PREFIX,
    VIOLATIONS_TOPIC,
    event_key,
    event_key_of_json,
    raw_topic,
    source_for_topic,
)

if TYPE_CHECKING:
    from types import TracebackType

    from core.event import CanonicalEvent

__all__ = [
    "CHECKPOINTS_TOPIC",
    "DEADLETTERS_TOPIC",
    "DECISIONS_TOPIC",
    "EVENTS_TOPIC",
    "RAW_SOURCES",
    "RAW_TOPIC_PREFIX",
    "VIOLATIONS_TOPIC",
    "ProducerLike",
    "Publisher",
    "decode_message",
    "event_key",
    "event_key_of_json",
    "make_producer",
    "message_where",
    "raw_topic",
    "source_for_topic",
]

logger = logging.getLogger(__name__)


class FutureLike(Protocol):
    """What ``ProducerLike.send`` returns (kafka-python's ``FutureRecordMetadata``)."""

    def add_errback(self, f: Any, *args: Any, **kwargs: Any) -> Any: ...


class ProducerLike(Protocol):
    """The part of ``kafka.KafkaProducer`` the publisher uses; tests pass an in-memory fake."""

    def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> FutureLike: ...

    def flush(self, timeout: float | None = None) -> None: ...

    def close(self, timeout: float | None = None) -> None: ...


def _producer_config(
    bootstrap: str,
    client_id: str,
    connect_timeout: float,
    delivery_timeout: float,
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        # ≤ 5 in flight keeps ordering under idempotence (the broker deduplicates per sequence)
        "max_in_flight_requests_per_connection": 5,
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        # kafka-python blocks 30 s by default when nobody answers; a CLI user wants to know sooner
        "bootstrap_timeout_ms": int(connect_timeout * 1000),
        "max_block_ms": int(max(connect_timeout, 1.0) * 2000),
        "request_timeout_ms": int(min(delivery_timeout, 30.0) * 1000),
        "delivery_timeout_ms": int(delivery_timeout * 1000),
    }
    cfg.update(extra or {})
    # kafka-python refuses delivery_timeout_ms < request_timeout_ms + linger_ms
    cfg["delivery_timeout_ms"] = max(cfg["delivery_timeout_ms"], cfg["request_timeout_ms"] + cfg["linger_ms"])
    return cfg


def make_producer(
    bootstrap: str,
    *,
    client_id: str = "railbook-publisher",
    connect_timeout: float = 5.0,
    delivery_timeout: float = 30.0,
    extra: Mapping[str, Any] | None = None,
) -> ProducerLike:
    """A real ``KafkaProducer`` with Railbook's settings; ``KafkaError`` when no broker answers."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError as _KafkaPythonError

    cfg = _producer_config(bootstrap, client_id, connect_timeout, delivery_timeout, extra)
    try:
        producer: ProducerLike = KafkaProducer(**cfg)
    except _KafkaPythonError as exc:
        raise KafkaError(
            f"cannot reach a Kafka broker at {bootstrap!r} within {connect_timeout:g}s "
            f"({type(exc).__name__}); check --kafka host:port and that the broker is running "
            "(for a local one: scripts/kafka-broker.sh start)"
        ) from exc
    except Exception as exc:  # bad config values surface as ValueError/AssertionError/KeyError
        raise KafkaError(
            f"cannot create a Kafka producer for {bootstrap!r}: {type(exc).__name__}: {exc}"
        ) from exc
    return producer


class Publisher:
    """Publish canonical events (Avro) and raw source records (JSON) to Kafka.

    Sends are asynchronous; :meth:`flush` waits for every acknowledgement and raises
    ``KafkaError`` if any message could not be delivered. Use it as a context manager::

        with Publisher("127.0.0.1:9092") as pub:
            pub.publish(event)
    """

    def __init__(
        self,
        bootstrap: str | None = None,
        *,
        topic: str | None = None,
        namespace: str = "",
        producer: ProducerLike | None = None,
        client_id: str = "railbook-publisher",
        connect_timeout: float = 5.0,
        delivery_timeout: float = 30.0,
        producer_config: Mapping[str, Any] | None = None,
    ) -> None:
        if producer is None:
            if not bootstrap:
                raise KafkaError("Publisher needs a bootstrap address ('host:port') or a producer")
            producer = make_producer(
                bootstrap,
                client_id=client_id,
                connect_timeout=connect_timeout,
                delivery_timeout=delivery_timeout,
                extra=producer_config,
            )
        self.bootstrap = bootstrap
        self.namespace = namespace
        """Prefix of every topic this publisher writes (``team-a.`` → ``team-a.railbook.events``)."""
        self.topic = topic or namespace + EVENTS_TOPIC
        self._producer = producer
        self._lock = threading.Lock()
        self._errors: list[str] = []
        self._first_exc: BaseException | None = None
        self.sent = 0
        """Messages handed to the producer (acknowledged or not yet)."""
        self.failed = 0
        """Messages the producer reported as not delivered."""
        self._closed = False

    # --- sending -----------------------------------------------------------------------------

    def publish(self, event: CanonicalEvent) -> None:
        """Send one canonical event to the events topic, keyed by :func:`event_key`."""
        self.send(
            self.topic,
            encode_event(event),
            key=event_key(event),
            headers=[(CONTENT_TYPE_HEADER, AVRO_CONTENT_TYPE)],
        )

    def publish_many(self, events: Iterable[CanonicalEvent]) -> int:
        """Send events in order; returns how many. Call :meth:`flush` to wait for delivery."""
        n = 0
        for event in events:
            self.publish(event)
            n += 1
        return n

    def publish_raw(
        self,
        source: str,
        record: bytes,
        *,
        key: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send one original source record (JSON bytes, as the source wrote it) to its raw topic.

        ``headers`` carry what travelled outside the body, e.g. GitHub's ``X-GitHub-Event``,
        ``X-GitHub-Delivery`` and ``X-Hub-Signature-256``.
        """
        hdrs = [(CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE)]
        hdrs += [(k, v.encode("utf-8")) for k, v in (headers or {}).items()]
        k = key.encode("utf-8") if isinstance(key, str) else key
        self.send(self.namespace + raw_topic(source), record, key=k, headers=hdrs)

    def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        """Send any bytes to any topic (serve uses it for checkpoints, decisions and dead letters)."""
        if self._closed:
            raise KafkaError(f"publisher for {self.bootstrap!r} is closed; create a new one")
        try:
            fut = self._producer.send(topic, value=value, key=key, headers=list(headers))
        except Exception as exc:  # KafkaTimeoutError (no metadata), MessageSizeTooLargeError, …
            raise KafkaError(
                f"cannot publish to {topic!r} on {self.bootstrap!r}: {type(exc).__name__}: {exc}"
                + _size_hint(exc)
            ) from exc
        self.sent += 1
        fut.add_errback(self._on_error, topic)

    def _on_error(self, topic: str, exc: BaseException) -> None:
        # runs on the producer's I/O thread
        with self._lock:
            self.failed += 1
            if self._first_exc is None:
                self._first_exc = exc
            if len(self._errors) < 5:
                self._errors.append(f"{topic}: {type(exc).__name__}: {exc}")
        logger.warning("kafka delivery failed topic=%s error=%s", topic, exc)

    # --- completion --------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every message sent so far is acknowledged; ``KafkaError`` if any failed."""
        try:
            self._producer.flush(timeout)
        except Exception as exc:
            raise KafkaError(
                f"flushing to {self.bootstrap!r} did not finish: {type(exc).__name__}: {exc}; "
                "is the broker still up?"
            ) from exc
        self.raise_delivery_errors()

    def raise_delivery_errors(self) -> None:
        """Raise ``KafkaError`` (once) for the delivery failures reported so far."""
        with self._lock:
            if not self._errors:
                return
            errors, first, failed = self._errors, self._first_exc, self.failed
            self._errors, self._first_exc = [], None
        raise KafkaError(
            f"{failed} message(s) could not be delivered to {self.bootstrap!r}; first errors:\n  "
            + "\n  ".join(errors)
        ) from first

    def close(self, timeout: float | None = 10.0) -> None:
        """Flush and close the producer (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._producer.close(timeout)
        except Exception as exc:
            raise KafkaError(
                f"closing the producer for {self.bootstrap!r}: {type(exc).__name__}: {exc}"
            ) from exc
        self.raise_delivery_errors()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.flush()
            self.close()
        else:  # don't mask the original error with a delivery error
            try:
                self.close(timeout=2.0)
            except KafkaError as close_exc:
                logger.warning("while closing after an error: %s", close_exc)


def _size_hint(exc: BaseException) -> str:
    if "TooLarge" in type(exc).__name__:
        return "; the message exceeds max_request_size (pass producer_config={'max_request_size': …})"
    return ""
