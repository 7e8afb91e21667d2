"""One poll's records → a ``Decoded`` batch: events and dead letters in order, and the offsets.

Used by the in-process consumer and by the consumer process (``_front``) alike; a ``Decoded`` is
what travels between the two processes (it pickles).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core import deferred
from core.avro import decode_event
from core.deadletter import DeadLetter
from core.errors import DecodeError
from ingest.kafka import decode_message, source_for_topic

if TYPE_CHECKING:
    from core.config import Config
    from core.event import CanonicalEvent
    from policy import Decision

__all__ = ["Decoded", "decode_records"]

logger = logging.getLogger(__name__)


@dataclass
class Decoded:
    """A polled batch, decoded: what the ledger transaction of this batch is made of."""

    items: list[CanonicalEvent | DeadLetter] = field(default_factory=list)
    """Events and dead letters, in partition-then-offset order."""
    dead: list[DeadLetter] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    """``(topic, partition) → next offset`` (last consumed + 1)."""
    sent_ms: dict[str, int] = field(default_factory=dict)
    """event id → the message's Kafka timestamp (only with ``track_latency``)."""
    decisions: list[Decision | None] | None = None
    """One per item when the consumer process decided ahead (``PolicyEngine.prejudge``): the
    decision of an event no approval state can change, else ``None``."""
    messages: int = 0
    polled_at: float = 0.0
    """``time.monotonic()`` when the poll returned (system-wide: comparable across processes)."""

    # Pickled between serve's two processes: the events decided ahead travel as their canonical
    # bytes and the few fields serve reads (``core.deferred``), not as whole object graphs.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["items"] = deferred.pack(self.items, self.decisions)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["items"] = deferred.unpack(state["items"])
        self.__dict__.update(state)


def decode_records(
    records: Mapping[Any, Sequence[Any]],
    *,
    config: Config | None,
    max_bytes: int,
    track_latency: bool,
    polled_at: float,
    keep_canonical: bool = False,
) -> Decoded:
    """Decode kafka-python ``ConsumerRecord``s; never raises on bad input (dead letters instead).

    Avro events on ``railbook.events`` take a fast path (one ``decode_event`` call per message,
    which with ``keep_canonical`` also keeps each event's canonical bytes);
    anything unusual — empty, oversized, undecodable, a raw-source topic — goes through
    ``ingest.decode_message``, which names the message in the dead letter.
    """
    out = Decoded(polled_at=polled_at)
    items, dead, sent_ms = out.items, out.dead, out.sent_ms
    for tp, msgs in records.items():
        if not msgs:
            continue
        fast = source_for_topic(tp.topic) == "event"
        for m in msgs:
            value = m.value
            if fast and value and len(value) <= max_bytes:
                try:
                    ev = decode_event(value, keep_canonical=keep_canonical)
                except DecodeError:
                    pass  # the slow path below names the message in the dead letter
                else:
                    items.append(ev)
                    if track_latency:
                        sent_ms[ev.event_id] = m.timestamp
                    continue
            decoded = decode_message(
                m.topic,
                m.partition,
                m.offset,
                value,
                headers=m.headers or (),
                config=config,
                max_bytes=max_bytes,
            )
            items.extend(decoded)
            for it in decoded:
                if isinstance(it, DeadLetter):
                    dead.append(it)
                elif track_latency:
                    sent_ms[it.event_id] = m.timestamp
        out.offsets[(tp.topic, tp.partition)] = msgs[-1].offset + 1
        out.messages += len(msgs)
    return out
