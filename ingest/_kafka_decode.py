"""Consumer-side decoding of one Kafka message into canonical events and dead letters.

``railbook.events`` carries Avro single-object-encoded canonical events (``core.decode_event``);
``railbook.raw.<source>`` carries original JSON records, normalised by that source's adapter
(``ingest.normalise_bytes``). Nothing here raises on input: every message that cannot become
an event becomes a :class:`DeadLetter` whose ``where`` is ``kafka:<topic>/<partition>@<offset>``
and whose ``reason`` is a short code (``bad-header``, ``bad-avro``, ``unknown-schema``,
``oversized``, ``empty``, ``unknown-topic``, or the adapter's own).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from core.avro import MAX_MESSAGE_BYTES, decode_event
from core.deadletter import DeadLetter
from core.errors import DecodeError, IngestError
from ingest._kafka_topics import RAW_SOURCES, source_for_topic

if TYPE_CHECKING:
    from core.config import Config
    from core.event import CanonicalEvent

__all__ = ["Normaliser", "decode_message", "message_where"]

logger = logging.getLogger(__name__)

#: ``normalise_bytes(data, source=…, origin=…, config=…)``: the adapters' entry point for raw topics
Normaliser = Callable[..., Iterable["CanonicalEvent | DeadLetter"]]


def message_where(topic: str, partition: int, offset: int) -> str:
    """The origin of a message as dead letters and logs spell it: ``kafka:railbook.events/0@1532``."""
    return f"kafka:{topic}/{partition}@{offset}"


def _default_normaliser() -> Normaliser:
    import ingest  # the adapters; imported late (heavier, and ingest/__init__ re-exports this module)

    norm: Normaliser = ingest.normalise_bytes
    return norm


def decode_message(
    topic: str,
    partition: int,
    offset: int,
    value: bytes | None,
    *,
    headers: Sequence[tuple[str, bytes]] = (),
    config: Config | None = None,
    max_bytes: int = MAX_MESSAGE_BYTES,
    normaliser: Normaliser | None = None,
) -> list[CanonicalEvent | DeadLetter]:
    """Canonical events (usually one) or dead letters for one message; never raises on bad input."""
    where = message_where(topic, partition, offset)
    source = source_for_topic(topic)
    raw = value or b""
    dl_source = "kafka" if source in (None, "event") else source

    def dead(reason: str, detail: str) -> list[CanonicalEvent | DeadLetter]:
        logger.debug("dead letter where=%s reason=%s", where, reason)
        return [DeadLetter.of(source=dl_source, reason=reason, detail=detail, raw=raw, where=where)]

    if source is None:
        return dead("unknown-topic", f"{where}: topic {topic!r} is not railbook.events nor railbook.raw.*")
    if value is None or len(value) == 0:
        return dead("empty", f"{where}: empty message (tombstone?); expected an event")
    if len(value) > max_bytes:
        return dead("oversized", f"{where}: {len(value)} bytes exceeds the limit of {max_bytes} bytes")
    if source == "event":
        try:
            return [decode_event(bytes(value), where=where)]
        except DecodeError as exc:
            return dead(exc.reason, str(exc))
    if source not in RAW_SOURCES:
        return dead(
            "unknown-source",
            f"{where}: raw topic for source {source!r}; expected one of {', '.join(RAW_SOURCES)}",
        )
    norm = normaliser or _default_normaliser()
    try:
        items = list(norm(bytes(value), source=source, origin=where, config=config))
    except IngestError as exc:  # adapters dead-letter by themselves; this is a belt to their braces
        reason = getattr(exc, "reason", "normalise")
        return dead(str(reason), str(exc))
    except Exception as exc:  # an adapter bug must not stop the consumer; keep the record and say why
        logger.exception("adapter for %s crashed on %s", source, where)
        return dead("adapter-error", f"{where}: the {source} adapter failed: {type(exc).__name__}: {exc}")
    if not items:
        return dead("no-records", f"{where}: the {source} adapter found no records in the message")
    if len(items) == 1 and isinstance(items[0], DeadLetter) and items[0].raw != raw:
        # the message was the record: keep its bytes exactly as they arrived, not a re-serialisation
        d = items[0]
        return [DeadLetter.of(source=d.source, reason=d.reason, detail=d.detail, raw=raw, where=d.where)]
    return items
