"""``railbook serve``: consume Kafka as a consumer-group member, exactly once into the ledger.

The loop (one thread; two with ``evaluate_ahead``, see ``Server._process``)::

    poll a batch ─► decode each message (events topic: Avro; raw topics: the source's adapter;
                    anything undecodable: a DeadLetter naming kafka:<topic>/<partition>@<offset>)
              ─► Pipeline.evaluate(items) = dedupe + Cedar (in order: approvals are state)
              ─► Pipeline.commit(batch, offsets={group: {(topic, partition): next offset}})
                    = ledger append + dead letters + offsets, ONE DuckDB transaction
              ─► publish decisions / violations / dead letters / checkpoints (after the commit)
              ─► commit the same offsets to Kafka (lag monitoring, hand-over between ledgers)

Exactly once: the ledger, not Kafka, is the record of what was consumed. On start and on every
partition assignment the consumer seeks to the ledger's stored offset, so a crash at any point
either rolled the whole batch back (it is read again) or committed it together with its offsets
(it is not). Duplicated event ids (a producer retrying, a file published twice) are skipped and
counted by the pipeline.

Several ``serve`` processes in one group each own a ledger (DuckDB admits one writer): on
assignment a partition starts at ``max(ledger offset, group's Kafka offset)``. Kafka offsets are
committed only after the ledger commit, so the group offset always means "recorded in some ledger
of this group", and a partition handed over in a rebalance continues exactly where the previous
owner stopped (it commits in ``on_partitions_revoked``). The one window left: a process killed
between its ledger commit and its Kafka commit whose partitions move to *another* process; that
batch then lands in both ledgers (never in none). A single serve per group has no such window.

Outputs are at least once: decisions and violations are re-published after a crash from an
output cursor stored in the ledger's offsets table (pseudo topic ``__railbook.outputs``), the
latest checkpoint is re-published on start; dead letters are stored in the ledger first and
published best-effort afterwards.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from core.avro import MAX_MESSAGE_BYTES
from core.deadletter import DeadLetter
from core.errors import KafkaError
from ingest.kafka import (
    CHECKPOINTS_TOPIC,
    DEADLETTERS_TOPIC,
    DECISIONS_TOPIC,
    EVENTS_TOPIC,
    RAW_SOURCES,
    VIOLATIONS_TOPIC,
    Publisher,
    decode_message,
    event_key,
    raw_topic,
)

if TYPE_CHECKING:
    from core.config import Config
    from core.event import CanonicalEvent
    from ledger import Checkpoint
    from policy import Decision
    from railbook.pipeline import BatchSummary, Evaluated, Pipeline

__all__ = ["DEFAULT_TOPICS", "OUTPUT_CURSOR", "ServeOptions", "ServeStats", "Server", "serve"]

logger = logging.getLogger(__name__)

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
    evaluate_ahead: bool = False
    """Two stages on two threads: evaluate batch N+1 while batch N is appended on a writer thread.
    Off by default: on the 2-core benchmark machine it gave no measurable throughput (the process
    is GIL-bound; DuckDB's GIL-free share of a batch is small) and ~70-100 ms more p50 latency."""


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
            "seconds": round(self.seconds, 3),
        }

    def line(self) -> str:
        return (
            f"messages {self.messages} · appended {self.appended} · duplicates {self.duplicates} · "
            f"dead-lettered {self.dead_lettered} · violations {self.violations} · batches {self.batches}"
        )


@dataclass
class _InFlight:
    """A batch handed to the writer thread: evaluated, being appended."""

    future: Future[tuple[BatchSummary, float]]
    """(summary, wall-clock time of the commit)."""
    batch: Evaluated
    offsets: dict[tuple[str, int], int]
    dead: list[DeadLetter]
    sent_ms: dict[str, int]
    messages: int


def _consumer(options: ServeOptions, topics: Sequence[str], listener: Any) -> Any:
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError as _KafkaPythonError

    try:
        consumer = KafkaConsumer(
            bootstrap_servers=options.bootstrap,
            group_id=options.group,
            client_id=f"railbook-serve-{options.group}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=options.batch_size,
            # one message up to the dead-letter limit must fit a fetch; the broker returns at least
            # one batch even when larger, so this bounds memory rather than correctness
            max_partition_fetch_bytes=max(1 << 20, options.max_message_bytes + 1024),
            fetch_max_bytes=64 << 20,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=3_000,
            bootstrap_timeout_ms=int(options.connect_timeout * 1000),
            request_timeout_ms=30_000,
            # a topic created just before (or while) serve joins has no metadata yet and gets no
            # partitions until the next refresh: refresh every 10 s, not kafka-python's 5 min
            metadata_max_age_ms=10_000,
            group_instance_id=options.instance_id,
        )
        consumer.subscribe(list(topics), listener=listener)
    except _KafkaPythonError as exc:
        raise KafkaError(
            f"cannot reach a Kafka broker at {options.bootstrap!r} within {options.connect_timeout:g}s "
            f"({type(exc).__name__}); check --kafka host:port and that the broker is running "
            "(for a local one: scripts/kafka-broker.sh start)"
        ) from exc
    return consumer


def _rebalance_listener(server: Server) -> Any:
    """A kafka-python ``ConsumerRebalanceListener`` (it must subclass it) bound to ``server``."""
    from kafka import ConsumerRebalanceListener

    class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
        """Seeks assigned partitions to the ledger's offsets; commits revoked ones to the group."""

        def on_partitions_revoked(self, revoked: Sequence[Any]) -> None:
            server._on_revoked(revoked)

        def on_partitions_assigned(self, assigned: Sequence[Any]) -> None:
            server._on_assigned(assigned)

    return _Rebalance()


class Server:
    """One consumer-group member feeding one pipeline (one ledger). ``run()`` until ``stop()``."""

    def __init__(
        self,
        config: Config,
        pipeline: Pipeline,
        options: ServeOptions,
        *,
        consumer: Any | None = None,
        publisher: Publisher | None = None,
        on_batch: Callable[[BatchSummary], None] | None = None,
    ) -> None:
        self.config = config
        self.pipeline = pipeline
        self.ledger = pipeline.ledger
        self.options = options
        self._ns = options.namespace
        self.topics: tuple[str, ...] = options.topics or tuple(options.namespace + t for t in DEFAULT_TOPICS)
        self.stats = ServeStats()
        self.on_batch = on_batch
        self._stop = threading.Event()
        self._publisher = publisher
        self._owns_publisher = publisher is None
        if options.publish_outputs and publisher is None:
            self._publisher = Publisher(
                options.bootstrap,
                client_id=f"railbook-serve-{options.group}-outputs",
                connect_timeout=options.connect_timeout,
                producer_config={"linger_ms": 20, "max_request_size": 8 << 20},
            )
        self._consumer = consumer
        self._seek_lock = threading.Lock()
        self._needs_seek: set[Any] = set()
        # a group without a cursor starts its outputs at the current end of the ledger (entries
        # ingested some other way are not back-filled onto the topics)
        stored_cursor = self.ledger.committed_offsets(options.group).get(OUTPUT_CURSOR)
        self._cursor_in_ledger = stored_cursor
        self._output_cursor = stored_cursor if stored_cursor is not None else self.ledger.size
        self._pending_cursor = self._output_cursor
        self._last_flush = time.monotonic()
        self._idle_since = time.monotonic()
        # the ledger's offsets of this group (what Kafka commits repeat); the writer thread updates it
        self._offsets_lock = threading.Lock()
        self._stored_offsets: dict[tuple[str, int], int] = {}
        self._writer: ThreadPoolExecutor | None = None
        self._inflight: _InFlight | None = None
        self._existing: Callable[[Iterable[str]], AbstractSet[str]] | None = None
        self._reader: Any = None

    # --- lifecycle -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish the batch in flight and return (safe from signal handlers/threads)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> ServeStats:
        """Consume until stopped (or idle / max messages); returns the totals."""
        t0 = time.monotonic()
        if self._consumer is None:
            self._consumer = _consumer(self.options, self.topics, _rebalance_listener(self))
        if self._publisher is not None:
            self.ledger.on_checkpoint = self._publish_checkpoint
            self._republish_outputs()
        stored = self.ledger.committed_offsets(self.options.group)
        stored.pop(OUTPUT_CURSOR, None)
        self._stored_offsets = stored
        if self.options.evaluate_ahead:
            self._existing = self._open_reader()
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="railbook-serve-writer")
        logger.info(
            "serve started group=%s topics=%s tree_size=%d",
            self.options.group,
            ",".join(self.topics),
            self.ledger.size,
        )
        try:
            while not self._stop.is_set():
                records = self._consumer.poll(
                    timeout_ms=int(self.options.poll_timeout * 1000), max_records=self.options.batch_size
                )
                reseeked = self._seek_assigned()
                if records and reseeked:
                    records = {tp: msgs for tp, msgs in records.items() if tp not in reseeked}
                if records:
                    self._process(records)
                    self._idle_since = time.monotonic()
                else:
                    self._drain()  # nothing new: finish the batch in flight
                    self._maybe_flush_outputs(force=False)
                if self._done():
                    break
            self._drain()
        finally:
            self._abandon()
            self._shutdown()
            self.stats.seconds = time.monotonic() - t0
        logger.info("serve stopped %s", self.stats.line())
        return self.stats

    def _done(self) -> bool:
        o = self.options
        if o.max_messages is not None and self.stats.messages >= o.max_messages:
            return True
        return o.idle_exit is not None and time.monotonic() - self._idle_since >= o.idle_exit

    def _abandon(self) -> None:
        """After an error: wait for the writer to go quiet (its batch committed or rolled back)."""
        pending, self._inflight = self._inflight, None
        if pending is not None:
            try:
                self._after_commit(*self._finish(pending))
            except Exception:
                logger.warning("the batch in flight failed while stopping", exc_info=True)
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        reader, self._reader = self._reader, None
        close = getattr(reader, "close", None)
        if close is not None:
            close()

    def _shutdown(self) -> None:
        consumer = self._consumer
        try:
            # a graceful stop leaves the whole ledger covered by a signed (and published) checkpoint
            self.ledger.checkpoint()
            self._maybe_flush_outputs(force=True)
            if self._publisher is None:
                self._output_cursor = self.ledger.size  # outputs off: those entries are never published
            if self._output_cursor != self._cursor_in_ledger:
                # nothing else will carry the cursor: write it on its own (offsets only, no entries)
                self.ledger.append([], offsets={self.options.group: {OUTPUT_CURSOR: self._output_cursor}})
        except Exception:
            logger.exception("publishing outputs at shutdown failed; they are re-published on the next start")
        finally:
            self.ledger.on_checkpoint = None
            if consumer is not None:
                try:
                    self._commit_kafka(None)
                    consumer.close(autocommit=False)
                except Exception:
                    logger.warning("closing the Kafka consumer failed", exc_info=True)
            if self._publisher is not None and self._owns_publisher:
                try:
                    self._publisher.close(timeout=5.0)
                except KafkaError as exc:
                    logger.warning("closing the output publisher: %s", exc)

    # --- rebalance ---------------------------------------------------------------------------------

    # kafka-python 3 runs rebalance callbacks on its I/O thread, where nothing may block on the
    # network: the callbacks only note what changed; the seeks happen on the main thread right
    # after the poll that rebalanced, and records that poll returned for those partitions are
    # dropped unprocessed (they were fetched from Kafka's idea of the position, not the ledger's).

    def _on_assigned(self, assigned: Sequence[Any]) -> None:
        with self._seek_lock:
            self._needs_seek.update(assigned)
        self._idle_since = time.monotonic()

    def _on_revoked(self, revoked: Sequence[Any]) -> None:
        # no batch is in flight (callbacks run while the main thread waits in poll) and the ledger's
        # offsets were committed to the group after the last batch; repeat them asynchronously in
        # case that commit failed, so the next owner of these partitions starts where we stopped
        with self._seek_lock:
            self._needs_seek.difference_update(revoked)
        self._wait_writer()  # the batch in flight may hold revoked partitions: commit after it
        self._commit_kafka([(tp.topic, tp.partition) for tp in revoked], blocking=False)

    def _seek_assigned(self) -> set[Any]:
        """Seek newly assigned partitions to max(ledger offset, group offset); returns them."""
        with self._seek_lock:
            pending, self._needs_seek = self._needs_seek, set()
        if not pending:
            return pending
        consumer = self._consumer
        assert consumer is not None
        self._drain()  # the ledger's offsets, with the batch in flight
        stored = self.ledger.committed_offsets(self.options.group)
        for tp in pending:
            own = stored.get((tp.topic, tp.partition))
            group = self._kafka_committed(tp)
            if own is not None and group is not None and group > own:
                logger.warning(
                    "partition handed over topic=%s partition=%d ledger_offset=%d group_offset=%d "
                    "(offsets below %d are in another ledger of group %s)",
                    tp.topic,
                    tp.partition,
                    own,
                    group,
                    group,
                    self.options.group,
                )
            start = max((o for o in (own, group) if o is not None), default=None)
            if start is None:
                consumer.seek_to_beginning(tp)
                logger.info("assigned topic=%s partition=%d from=beginning", tp.topic, tp.partition)
            else:
                consumer.seek(tp, start)
                logger.info("assigned topic=%s partition=%d from=%d", tp.topic, tp.partition, start)
        return pending

    def _kafka_committed(self, tp: Any) -> int | None:
        try:
            off = self._consumer.committed(tp)  # type: ignore[union-attr]
        except Exception:
            logger.warning(
                "cannot read the group offset topic=%s partition=%d", tp.topic, tp.partition, exc_info=True
            )
            return None
        return int(off) if off is not None and off >= 0 else None

    def _commit_kafka(self, only: Sequence[tuple[str, int]] | None, *, blocking: bool = True) -> None:
        from kafka.structs import OffsetAndMetadata, TopicPartition

        consumer = self._consumer
        if consumer is None:
            return
        with self._offsets_lock:
            stored = dict(self._stored_offsets)
        if only is None:
            try:
                only = [(tp.topic, tp.partition) for tp in consumer.assignment()]
            except Exception:
                only = []
        keys = [k for k in only if k in stored]
        if not keys:
            return
        offsets = {TopicPartition(t, p): OffsetAndMetadata(stored[(t, p)], "", -1) for t, p in keys}
        try:
            if blocking:
                consumer.commit(offsets)
            else:
                consumer.commit_async(offsets)
        except Exception as exc:  # the ledger has them; the group offset is advisory
            logger.warning("kafka offset commit failed (ledger offsets are authoritative): %s", exc)

    # --- one batch ---------------------------------------------------------------------------------

    # Two stages on two threads: the main thread polls, decodes and evaluates batch N+1 (Python)
    # while the writer thread appends batch N (DuckDB, which releases the GIL). At most one batch
    # is in flight. Approvals are sequential state: N+1 is evaluated after N, and duplicates are
    # dropped before evaluation against N's ids (in flight) and then the ledger (committed). If
    # N's append fails, the approval book (which saw N and N+1) is rebuilt from the ledger, N+1 is
    # dropped and the error ends the run: a restart reads both again from the ledger's offsets.

    def _open_reader(self) -> Callable[[Iterable[str]], AbstractSet[str]] | None:
        """The pipeline's ``existing`` usable while the writer appends; ``None`` if it has none
        (then a batch is evaluated only when nothing is in flight)."""
        opener = getattr(self.pipeline, "reader", None)
        if opener is None:
            return None
        self._reader = opener()
        return self._reader  # type: ignore[no-any-return]

    def _process(self, records: dict[Any, list[Any]]) -> None:
        o = self.options
        now = time.monotonic()
        if self.stats.first_message_at is None:
            self.stats.first_message_at = now
        items: list[CanonicalEvent | DeadLetter] = []
        dead: list[DeadLetter] = []
        offsets: dict[tuple[str, int], int] = {}
        sent_ms: dict[str, int] = {}
        messages = 0
        for tp, msgs in records.items():
            for m in msgs:
                decoded = decode_message(
                    m.topic,
                    m.partition,
                    m.offset,
                    m.value,
                    headers=m.headers or (),
                    config=self.config,
                    max_bytes=o.max_message_bytes,
                )
                items.extend(decoded)
                for it in decoded:
                    if isinstance(it, DeadLetter):
                        dead.append(it)
                    elif o.track_latency:
                        sent_ms[it.event_id] = m.timestamp
            if msgs:
                offsets[(tp.topic, tp.partition)] = msgs[-1].offset + 1
                messages += len(msgs)
        self.stats.messages += messages
        if self._existing is None:
            self._drain()  # no lookup that is safe beside the writer: evaluate after its commit
        pending = self._inflight
        in_flight = pending.batch.event_ids if pending is not None else frozenset()
        batch = self.pipeline.evaluate(items, in_flight=in_flight, existing=self._existing)
        self._inflight = None
        try:
            done = self._finish(pending) if pending is not None else None
        except BaseException:
            self.pipeline.rebuild_approvals()  # it saw `pending` and `batch`; the ledger neither
            raise
        if self._writer is not None:
            future = self._writer.submit(self._write, batch, offsets)
        else:  # one stage: append now, on this thread
            future = Future()
            try:
                future.set_result(self._write(batch, offsets))
            except BaseException as exc:
                future.set_exception(exc)
        self._inflight = _InFlight(future, batch, offsets, dead, sent_ms, messages)
        if done is not None:
            self._after_commit(*done)
        if self._writer is None:
            self._drain()

    def _write(self, batch: Evaluated, offsets: dict[tuple[str, int], int]) -> tuple[BatchSummary, float]:
        """On the writer thread: one ledger transaction with the batch, its offsets and the output
        cursor."""
        group_offsets: dict[tuple[str, int], int] = dict(offsets)
        if self._publisher is None:
            self._output_cursor = self.ledger.size
        cursor = self._output_cursor
        if cursor != self._cursor_in_ledger:
            group_offsets[OUTPUT_CURSOR] = cursor
        summary = self.pipeline.commit(batch, offsets={self.options.group: group_offsets})
        committed = time.time()
        self._cursor_in_ledger = cursor
        with self._offsets_lock:
            self._stored_offsets.update(offsets)
        self.stats.last_commit_at = time.monotonic()
        return summary, committed

    def _wait_writer(self) -> None:
        pending = self._inflight
        if pending is not None:
            wait_futures([pending.future])

    def _finish(self, pending: _InFlight) -> tuple[_InFlight, BatchSummary, float]:
        summary, committed = pending.future.result()
        return pending, summary, committed

    def _drain(self) -> None:
        """Wait for the batch in flight and do what follows its commit (on the main thread)."""
        pending, self._inflight = self._inflight, None
        if pending is None:
            return
        try:
            done = self._finish(pending)
        except BaseException:
            self.pipeline.rebuild_approvals()
            raise
        self._after_commit(*done)

    def _after_commit(self, pending: _InFlight, summary: BatchSummary, committed: float) -> None:
        o = self.options
        self.stats.add(summary)
        for d in pending.dead:
            self.stats.dead_letter_reasons[d.reason] = self.stats.dead_letter_reasons.get(d.reason, 0) + 1
            logger.info("dead letter where=%s reason=%s", d.where, d.reason)
        if o.track_latency:
            for _seq, ev, _dec in summary.entries:
                ts = pending.sent_ms.get(ev.event_id)
                if ts is not None and ts >= 0:
                    self.stats.latencies_ms.append(committed * 1000 - ts)
        if self._publisher is not None:
            self._publish_outputs(summary, pending.dead)
        self._commit_kafka(list(pending.offsets))
        if self.on_batch is not None:
            self.on_batch(summary)
        logger.debug("batch messages=%d %s", pending.messages, summary.line())

    # --- outputs ------------------------------------------------------------------------------------

    def _publish_outputs(self, summary: BatchSummary, dead: Sequence[DeadLetter]) -> None:
        pub = self._publisher
        assert pub is not None
        for seq, event, decision in summary.entries:
            self._publish_decision(seq, event, decision)
            self._pending_cursor = seq + 1
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
        self.stats.outputs_published += len(summary.entries) + len(dead)
        self._maybe_flush_outputs(force=False)

    def _publish_decision(self, seq: int, event: CanonicalEvent, decision: Decision) -> None:
        pub = self._publisher
        assert pub is not None
        doc = {
            "origin": self.ledger.origin,
            "seq": seq,
            "event_id": event.event_id,
            "occurred_at": event.to_dict()["occurred_at"],
            "actor": event.actor.id,
            "action": event.action,
            "resource": event.resource.id,
            "environment": event.resource.environment,
            "decision": decision.to_dict(),
        }
        key = event_key(event)
        pub.send(self._ns + DECISIONS_TOPIC, json.dumps(doc, sort_keys=True).encode(), key=key)
        if decision.is_violation:
            doc["event"] = event.to_dict()
            pub.send(self._ns + VIOLATIONS_TOPIC, json.dumps(doc, sort_keys=True).encode(), key=key)

    def _maybe_flush_outputs(self, *, force: bool) -> None:
        pub = self._publisher
        if pub is None:
            return
        if not force and time.monotonic() - self._last_flush < self.options.output_flush_seconds:
            return
        pub.flush(timeout=30.0)
        self._last_flush = time.monotonic()
        # everything up to _pending_cursor is acknowledged: the next ledger transaction records it
        self._output_cursor = self._pending_cursor

    def _publish_checkpoint(self, cp: Checkpoint) -> None:
        pub = self._publisher
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

    def _republish_outputs(self) -> None:
        """After a crash: decisions after the output cursor again, and the latest checkpoint."""
        start = self._output_cursor
        n = 0
        for entry in self.ledger.iter_records(from_seq=start):
            self._publish_decision(entry.seq, entry.event, entry.decision)
            self._pending_cursor = entry.seq + 1
            n += 1
        cp = self.ledger.latest_checkpoint()
        if cp is not None:
            self._publish_checkpoint(cp)
        if n:
            logger.warning("re-published decisions after a restart count=%d from_seq=%d", n, start)
        self._maybe_flush_outputs(force=True)


@contextmanager
def _signals(server: Server) -> Iterator[None]:
    """SIGTERM/SIGINT ask the server to stop after the batch in flight (a second one is the default)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if server.stopping:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
            return
        logger.warning("signal %s: finishing the batch in flight, then stopping", signal.Signals(signum).name)
        server.stop()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def serve(
    config: Config,
    options: ServeOptions,
    *,
    install_signal_handlers: bool = True,
    on_start: Callable[[Server], None] | None = None,
) -> ServeStats:
    """Open the ledger and policy pack, consume until stopped, close everything; returns the totals."""
    from railbook.wiring import open_pipeline

    with open_pipeline(config) as pipeline:
        server = Server(config, pipeline, options)
        if on_start is not None:
            on_start(server)
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            with _signals(server):
                return server.run()
        return server.run()
