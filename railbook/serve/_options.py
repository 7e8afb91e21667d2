"""``ServeOptions`` (what the CLI flags set) and ``ServeStats`` (the totals of a run)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.avro import MAX_MESSAGE_BYTES
from ingest.kafka import EVENTS_TOPIC, RAW_SOURCES, raw_topic

if TYPE_CHECKING:
    from railbook.pipeline import BatchSummary

__all__ = ["DEFAULT_TOPICS", "OUTPUT_CURSOR", "ServeOptions", "ServeStats"]

DEFAULT_TOPICS: tuple[str, ...] = (EVENTS_TOPIC, *(raw_topic(s) for s in RAW_SOURCES))
#: pseudo partition in the ledger's offsets table: next seq whose decisions are not yet published
OUTPUT_CURSOR: tuple[str, int] = ("__railbook.outputs", 0)


@dataclass(frozen=True)
class ServeOptions:
    """How ``serve`` consumes; every field has a CLI flag."""

    bootstrap: str
    """Kafka bootstrap servers, ``host:port[,host:port…]``."""
    group: str = "railbook"
    """Consumer group id; also the key of the offsets stored in the ledger."""
    topics: tuple[str, ...] | None = None
    """Topics to consume (``railbook.events`` and/or ``railbook.raw.<source>``); ``None``: all of
    them, in ``namespace``."""
    namespace: str = ""
    """Prefix of the default input topics and of every output topic (``team-a.`` →
    ``team-a.railbook.events``, ``team-a.railbook.decisions``, …)."""
    batch_size: int = 5000
    """Most messages per poll, i.e. per ledger transaction."""
    poll_timeout: float = 0.5
    """Seconds a poll waits for data (also how fast a stop request is noticed)."""
    max_message_bytes: int = MAX_MESSAGE_BYTES
    """Larger messages are dead-lettered as ``oversized`` without decoding."""
    publish_outputs: bool = True
    """Publish decisions, violations, dead letters and checkpoints to their topics."""
    output_flush_seconds: float = 1.0
    """How often output messages are flushed (and the output cursor advanced)."""
    idle_exit: float | None = None
    """Exit after this many seconds without messages (drain and exit; ``None``: run until stopped)."""
    max_messages: int | None = None
    """Exit after consuming this many messages (benchmarks)."""
    connect_timeout: float = 10.0
    """Seconds to wait for the first broker connection before failing."""
    instance_id: str | None = None
    """Static group membership (KIP-345): a restarted serve with the same id takes its partitions
    back at once instead of waiting for the dead member's session to time out."""
    track_latency: bool = False
    """Record, per appended entry, milliseconds from the message's Kafka timestamp to the commit."""
    evaluate_ahead: bool | None = None
    """Two stages on two threads: evaluate batch N+1 while batch N is appended on a writer thread.
    ``None`` (default): on with ``consumer_process``, off without. In one process it gave no
    throughput on the 2-core benchmark machine (GIL-bound) and ~70-100 ms more p50 latency; beside
    the consumer process it overlaps DuckDB's GIL-free insert/commit/fsync with Cedar (5-30 % in
    paired runs) at no measurable latency cost."""
    consumer_process: bool = True
    """Run the Kafka consumer (poll, rebalances, seeks, Avro decoding / adapters) in a process of
    its own that hands decoded batches to this one (dedupe, Cedar, ledger append with offsets).
    The two run on two cores; exactly-once is unchanged (the ledger transaction still carries the
    offsets; the consumer process only ever commits to Kafka what the ledger acknowledged)."""
    decide_in_consumer: bool = True
    """With ``consumer_process``: the consumer process also decides, ahead of serve, every event no
    approval state can change (``PolicyEngine.prejudge``: its action is not destructive), so Cedar
    runs on both cores; serve checks those decisions (same pack version, action still not
    destructive) and decides only the rest, in order, with the approval book."""
    balance_decoding: bool = True
    """With ``consumer_process``: the consumer process leaves a share of each batch's Avro events
    (0 to half) for serve to decode and decide, adjusted batch by batch so that neither process
    waits for the other (``railbook.serve._balance``); off: it decodes every message."""
    tune_gc: bool = True
    """Freeze the start-up heap and collect young objects less often while serving: a batch keeps
    tens of thousands of objects alive, and CPython's default thresholds spent a fifth of serve's
    CPU re-scanning them."""


@dataclass
class ServeStats:
    """Totals of one ``serve`` run."""

    messages: int = 0
    read: int = 0
    appended: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    violations: int = 0
    batches: int = 0
    outputs_published: int = 0
    decoded_in_serve: int = 0
    """Messages the consumer process left for serve to decode (``balance_decoding``)."""
    seconds: float = 0.0
    first_message_at: float | None = None
    """``time.monotonic()`` when the first message arrived (for rates that exclude group join)."""
    last_commit_at: float | None = None
    latencies_ms: list[float] = field(default_factory=list)
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)

    def add(self, s: BatchSummary) -> None:
        self.read += s.read
        self.appended += s.appended
        self.duplicates += s.duplicates
        self.dead_lettered += s.dead_lettered
        self.violations += s.violations
        self.batches += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "read": self.read,
            "appended": self.appended,
            "duplicates": self.duplicates,
            "dead_lettered": self.dead_lettered,
            "dead_letter_reasons": dict(sorted(self.dead_letter_reasons.items())),
            "violations": self.violations,
            "batches": self.batches,
            "outputs_published": self.outputs_published,
            "decoded_in_serve": self.decoded_in_serve,
            "seconds": round(self.seconds, 3),
        }

    def line(self) -> str:
        return (
            f"messages {self.messages} · appended {self.appended} · duplicates {self.duplicates} · "
            f"dead-lettered {self.dead_lettered} · violations {self.violations} · batches {self.batches}"
        )
