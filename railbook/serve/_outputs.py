"""serve's outputs: decisions, violations, dead letters and checkpoints, at least once.

Decisions and violations are re-published after a crash from an *output cursor* (next seq not yet
acknowledged by Kafka) stored in the ledger's offsets table under the pseudo partition
``OUTPUT_CURSOR`` and advanced in the next batch's transaction after a flush; the latest checkpoint
is re-published on start; dead letters are stored in the ledger first and published best-effort.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from core.deadletter import DeadLetter
from ingest.kafka import (
    CHECKPOINTS_TOPIC,
    DEADLETTERS_TOPIC,
    DECISIONS_TOPIC,
    VIOLATIONS_TOPIC,
    event_key_of_json,
)

if TYPE_CHECKING:
    from core.event import CanonicalEvent
    from ingest.kafka import Publisher
    from ledger import Checkpoint
    from policy import Decision
    from railbook.pipeline import BatchSummary

__all__ = ["Outputs"]

logger = logging.getLogger(__name__)


def _event_json(event: CanonicalEvent) -> dict[str, Any]:
    """The event's JSON shape as its canonical bytes say it: ``event.to_dict()``, since every value
    of an event is a string, null or a list of strings (``core.event``), which orjson reads back
    exactly. From ``to_dict`` should orjson refuse the bytes."""
    try:
        parsed: dict[str, Any] = orjson.loads(event.canonical_bytes)
    except orjson.JSONDecodeError:
        return event.to_dict()
    return parsed


def _json_bytes(doc: dict[str, Any]) -> bytes:
    """``doc`` as compact JSON with sorted keys: orjson (~10x faster than ``json``), or ``json`` for
    what orjson refuses (e.g. a lone surrogate, which ``json`` escapes)."""
    try:
        return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


class Outputs:
    """Publishes a committed batch's outputs and keeps the output cursor (``None`` publisher: off)."""

    def __init__(
        self,
        ledger: Any,
        publisher: Publisher | None,
        namespace: str,
        flush_seconds: float,
        stored_cursor: int | None,
    ) -> None:
        self.ledger = ledger
        self.publisher = publisher
        self._ns = namespace
        self._flush_seconds = flush_seconds
        self.cursor_in_ledger = stored_cursor
        # a group without a cursor starts its outputs at the current end of the ledger (entries
        # ingested some other way are not back-filled onto the topics)
        self.cursor = stored_cursor if stored_cursor is not None else ledger.size
        """Everything below is acknowledged by Kafka: the next ledger transaction records it."""
        self._pending = self.cursor
        self._last_flush = time.monotonic()
        self.published = 0

    def publish(self, summary: BatchSummary, dead: Sequence[DeadLetter]) -> None:
        pub = self.publisher
        if pub is None:
            return
        for seq, event, decision in summary.entries:
            self.publish_decision(seq, event, decision)
            self._pending = seq + 1
        for d in dead:
            pub.send(
                self._ns + DEADLETTERS_TOPIC,
                d.raw,
                headers=[
                    ("railbook-source", d.source.encode()),
                    ("railbook-reason", d.reason.encode()),
                    ("railbook-where", d.where.encode()),
                    ("railbook-detail", d.detail[:2000].encode()),
                    ("railbook-truncated", b"true" if d.truncated else b"false"),
                ],
            )
        self.published += len(summary.entries) + len(dead)
        self.maybe_flush(force=False)

    def publish_decision(self, seq: int, event: CanonicalEvent, decision: Decision) -> None:
        pub = self.publisher
        assert pub is not None
        # The event as its ledger entry holds it: its canonical bytes, parsed. Most events reach
        # serve decided by the consumer process as little more than those bytes (``core.deferred``);
        # reading ``event.actor`` or ``event.to_dict()`` rebuilt and re-validated the whole event:
        # outputs cost 127 us per event (bench stream, stub producer), more than the ledger append.
        ev = _event_json(event)
        resource = ev["resource"]
        doc = {
            "origin": self.ledger.origin,
            "seq": seq,
            "event_id": ev["event_id"],
            "occurred_at": ev["occurred_at"],
            "actor": ev["actor"]["id"],
            "action": ev["action"],
            "resource": resource["id"],
            "environment": resource["environment"],
            "decision": decision.to_dict(),
        }
        key = event_key_of_json(ev)
        pub.send(self._ns + DECISIONS_TOPIC, _json_bytes(doc), key=key)
        if decision.is_violation:
            doc["event"] = ev
            pub.send(self._ns + VIOLATIONS_TOPIC, _json_bytes(doc), key=key)

    def maybe_flush(self, *, force: bool) -> None:
        pub = self.publisher
        if pub is None:
            return
        if not force and time.monotonic() - self._last_flush < self._flush_seconds:
            return
        pub.flush(timeout=30.0)
        self._last_flush = time.monotonic()
        self.cursor = self._pending

    def publish_checkpoint(self, cp: Checkpoint) -> None:
        pub = self.publisher
        if pub is None:
            return
        pub.send(
            self._ns + CHECKPOINTS_TOPIC,
            cp.signed_note_text.encode(),
            key=cp.origin.encode(),
            headers=[
                ("railbook-tree-size", str(cp.tree_size).encode()),
                ("content-type", b"text/plain; charset=utf-8"),
            ],
        )
        logger.info("checkpoint published tree_size=%d", cp.tree_size)

    def republish(self) -> None:
        """After a crash: decisions after the output cursor again, and the latest checkpoint."""
        start = self.cursor
        n = 0
        for entry in self.ledger.iter_records(from_seq=start):
            self.publish_decision(entry.seq, entry.event, entry.decision)
            self._pending = entry.seq + 1
            n += 1
        cp = self.ledger.latest_checkpoint()
        if cp is not None:
            self.publish_checkpoint(cp)
        if n:
            logger.warning("re-published decisions after a restart count=%d from_seq=%d", n, start)
        self.maybe_flush(force=True)
