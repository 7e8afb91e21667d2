"""One poll's records → a ``Decoded`` batch: events and dead letters in order, and the offsets.

Used by the in-process consumer and by the consumer process (``_front``) alike; a ``Decoded`` is
what travels between the two processes (it pickles). The consumer process may leave a share of a
batch's Avro events undecoded (``Undecoded``: the message's bytes and coordinates) for serve to
decode with ``Decoded.decode_left`` before it evaluates the batch (``railbook.serve._balance``
says when and why); the items come out the same and in the same order either way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from core import deferred
from core.avro import decode_event
from core.deadletter import DeadLetter
from core.errors import DecodeError
from ingest.kafka import decode_message, source_for_topic

if TYPE_CHECKING:
    from core.config import Config
    from core.event import CanonicalEvent
    from policy import Decision

__all__ = ["Decoded", "Undecoded", "decode_records"]

logger = logging.getLogger(__name__)


@dataclass
class Decoded:
    """A polled batch, decoded: what the ledger transaction of this batch is made of."""

    items: list[CanonicalEvent | DeadLetter | Undecoded] = field(default_factory=list)
    """Events and dead letters, in partition-then-offset order (and, from the consumer process,
    messages left for serve to decode: ``decode_left``)."""
    dead: list[DeadLetter] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    """``(topic, partition) → next offset`` (last consumed + 1)."""
    sent_ms: dict[str, int] = field(default_factory=dict)
    """event id → the message's Kafka timestamp (only with ``track_latency``)."""
    decisions: list[Decision | None] | None = None
    """One per item when the consumer process decided ahead (``PolicyEngine.prejudge``): the
    decision of an event no approval state can change, else ``None``."""
    messages: int = 0
    left: int = 0
    """How many messages the consumer process left ``Undecoded`` for serve (``decode_left``)."""
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

    def decode_left(
        self, *, config: Config | None, max_bytes: int, track_latency: bool
    ) -> list[CanonicalEvent | DeadLetter]:
        """Decode the ``Undecoded`` items in place, as ``decode_records`` would have (events with
        their canonical bytes, or dead letters, which join ``dead``), and return the items. Their
        decisions are ``None``: serve decides them."""
        if self.left and any(isinstance(it, Undecoded) for it in self.items):
            items: list[CanonicalEvent | DeadLetter | Undecoded] = []
            known = self.decisions
            decisions: list[Decision | None] | None = None if known is None else []
            for k, item in enumerate(self.items):
                if not isinstance(item, Undecoded):
                    items.append(item)
                    if decisions is not None:
                        decisions.append(known[k])  # type: ignore[index]
                    continue
                got = _decode_one(item, fast=True, config=config, max_bytes=max_bytes, keep_canonical=True)
                _collect(got, item.timestamp, items, self.sent_ms if track_latency else None)
                if decisions is not None:
                    decisions.extend([None] * len(got))
            self.items, self.decisions = items, decisions
            self.dead = _dead(items)  # in order, as decoded whole
        return cast("list[CanonicalEvent | DeadLetter]", self.items)


class Undecoded:
    """An Avro event's Kafka message, handed over for serve to decode (``Decoded.decode_left``).
    What ``_decode_one`` reads of a kafka-python ``ConsumerRecord``, and no more (it pickles small)."""

    __slots__ = ("headers", "offset", "partition", "timestamp", "topic", "value")

    def __init__(
        self, topic: str, partition: int, offset: int, value: bytes, timestamp: int, headers: Any
    ) -> None:
        self.topic, self.partition, self.offset = topic, partition, offset
        self.value, self.timestamp, self.headers = value, timestamp, headers

    def __reduce__(self) -> tuple[type[Undecoded], tuple[Any, ...]]:
        fields = (self.topic, self.partition, self.offset, self.value, self.timestamp, self.headers)
        return (Undecoded, fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Undecoded) and self.__reduce__() == other.__reduce__()

    __hash__ = None  # type: ignore[assignment]


def decode_records(
    records: Mapping[Any, Sequence[Any]],
    *,
    config: Config | None,
    max_bytes: int,
    track_latency: bool,
    polled_at: float,
    keep_canonical: bool = False,
    leave: float = 0.0,
) -> Decoded:
    """Decode kafka-python ``ConsumerRecord``s; never raises on bad input (dead letters instead).

    Avro events on ``railbook.events`` take a fast path (one ``decode_event`` call per message,
    which with ``keep_canonical`` also keeps each event's canonical bytes);
    anything unusual — empty, oversized, undecodable, a raw-source topic — goes through
    ``ingest.decode_message``, which names the message in the dead letter.

    ``leave``: the share (0–1) of fast-path messages to leave ``Undecoded``, spread evenly over the
    batch (the consumer process's balance with serve, ``railbook.serve._balance``).
    """
    out = Decoded(polled_at=polled_at)
    items = out.items
    sent_ms = out.sent_ms if track_latency else None
    owed = 0.0  # accumulates ``leave`` per fast-path message; each whole one is left undecoded
    for tp, msgs in records.items():
        if not msgs:
            continue
        fast = source_for_topic(tp.topic) == "event"
        for m in msgs:
            if leave and fast and m.value and len(m.value) <= max_bytes:
                owed += leave
                if owed >= 1.0:
                    owed -= 1.0
                    items.append(Undecoded(m.topic, m.partition, m.offset, m.value, m.timestamp, m.headers))
                    out.left += 1
                    continue
            got = _decode_one(m, fast=fast, config=config, max_bytes=max_bytes, keep_canonical=keep_canonical)
            _collect(got, m.timestamp, items, sent_ms)
        out.offsets[(tp.topic, tp.partition)] = msgs[-1].offset + 1
        out.messages += len(msgs)
    out.dead = _dead(items)
    return out


def _decode_one(
    m: Any, *, fast: bool, config: Config | None, max_bytes: int, keep_canonical: bool
) -> list[CanonicalEvent | DeadLetter]:
    """One message (a ``ConsumerRecord`` or an ``Undecoded``): its events and dead letters."""
    value = m.value
    if fast and value and len(value) <= max_bytes:
        try:
            return [decode_event(value, keep_canonical=keep_canonical)]
        except DecodeError:
            pass  # the slow path below names the message in the dead letter
    return decode_message(
        m.topic,
        m.partition,
        m.offset,
        value,
        headers=m.headers or (),
        config=config,
        max_bytes=max_bytes,
    )


def _collect(
    got: list[CanonicalEvent | DeadLetter],
    timestamp: int,
    items: list[CanonicalEvent | DeadLetter | Undecoded],
    sent_ms: dict[str, int] | None,
) -> None:
    """Add one message's events and dead letters to a batch (and the message's time to ``sent_ms``)."""
    items.extend(got)
    if sent_ms is not None:
        for it in got:
            if not isinstance(it, DeadLetter):
                sent_ms[it.event_id] = timestamp


def _dead(items: list[CanonicalEvent | DeadLetter | Undecoded]) -> list[DeadLetter]:
    """A batch's dead letters, in order (``Decoded.dead``)."""
    return [it for it in items if isinstance(it, DeadLetter)]
