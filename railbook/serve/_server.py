"""``Server``: one consumer-group member feeding one pipeline (one ledger); see the package docstring."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.errors import KafkaError
from ingest.kafka import Publisher
from railbook.serve._decode import Decoded, decode_records
from railbook.serve._gc import tuned_gc
from railbook.serve._kafka import commit_offsets, make_consumer, rebalance_listener, seek_partitions
from railbook.serve._options import DEFAULT_TOPICS, OUTPUT_CURSOR, ServeOptions, ServeStats
from railbook.serve._outputs import Outputs

if TYPE_CHECKING:
    from core.config import Config
    from railbook.pipeline import BatchSummary, Evaluated, Pipeline
    from railbook.serve._child import ConsumerProcess

__all__ = ["Server"]

logger = logging.getLogger(__name__)


@dataclass
class _InFlight:
    """A batch handed to the writer: evaluated, being appended."""

    future: Future[tuple[BatchSummary, float]]
    """(summary, wall-clock time of the commit)."""
    batch: Evaluated
    decoded: Decoded


class Server:
    """One consumer-group member feeding one pipeline (one ledger). ``run()`` until ``stop()``.

    With ``options.consumer_process`` (and no ``consumer`` passed in) the Kafka consumer runs in a
    child process (``ConsumerProcess``) and this one evaluates and appends; otherwise both happen
    here, on one thread (two with ``evaluate_ahead``).
    """

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
        self.topics: tuple[str, ...] = options.topics or tuple(options.namespace + t for t in DEFAULT_TOPICS)
        self.stats = ServeStats()
        self.on_batch = on_batch
        self.assigned = threading.Event()
        """Set once partitions were assigned and sought (benchmarks wait for it)."""
        self._stop = threading.Event()
        self._owns_publisher = publisher is None
        if options.publish_outputs and publisher is None:
            publisher = Publisher(
                options.bootstrap,
                client_id=f"railbook-serve-{options.group}-outputs",
                connect_timeout=options.connect_timeout,
                producer_config={"linger_ms": 20, "max_request_size": 8 << 20},
            )
        self._consumer = consumer
        self._child: ConsumerProcess | None = None
        self._split = consumer is None and options.consumer_process
        self._ahead = options.evaluate_ahead if options.evaluate_ahead is not None else self._split
        self._seek_lock = threading.Lock()
        self._needs_seek: set[Any] = set()
        stored_cursor = self.ledger.committed_offsets(options.group).get(OUTPUT_CURSOR)
        self.outputs = Outputs(
            self.ledger, publisher, options.namespace, options.output_flush_seconds, stored_cursor
        )
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
        with tuned_gc(self.options.tune_gc):
            self._start()
            try:
                logger.info(
                    "serve started group=%s topics=%s tree_size=%d consumer=%s",
                    self.options.group,
                    ",".join(self.topics),
                    self.ledger.size,
                    f"process {self._child.pid}" if self._child is not None else "in-process",
                )
                while not self._stop.is_set():
                    decoded = self._next_batch()
                    if decoded is not None:
                        self._process(decoded)
                        self._idle_since = time.monotonic()
                    else:
                        self._drain()  # nothing new: finish the batch in flight
                        self.outputs.maybe_flush(force=False)
                    if self._done():
                        break
                self._drain()
            finally:
                self._abandon()
                self._shutdown()
                self.stats.seconds = time.monotonic() - t0
        logger.info("serve stopped %s", self.stats.line())
        return self.stats

    def _start(self) -> None:
        o = self.options
        if self.outputs.publisher is not None:
            self.ledger.on_checkpoint = self.outputs.publish_checkpoint
            self.outputs.republish()
        stored = self.ledger.committed_offsets(o.group)
        stored.pop(OUTPUT_CURSOR, None)
        self._stored_offsets = stored
        if self._split:
            from railbook.serve._child import ConsumerProcess

            engine = getattr(self.pipeline, "engine", None)
            version = getattr(engine, "version", None) if o.decide_in_consumer else None
            self._child = ConsumerProcess(self.config, o, self.topics, stored, policy_version=version)
        elif self._consumer is None:
            listener = rebalance_listener(self._on_assigned, self._on_revoked)
            self._consumer = make_consumer(o, self.topics, listener)
        if self._ahead:
            self._existing = self._open_reader()
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="railbook-serve-writer")

    def _next_batch(self) -> Decoded | None:
        o = self.options
        if self._child is not None:
            decoded = self._child.recv(0.0) if self._inflight is not None else None
            if decoded is None:
                # nothing to evaluate beside the batch in flight: finish it now, so that its
                # acknowledgement (the consumer process's next slot, its seeks) does not wait
                self._drain()
                decoded = self._child.recv(o.poll_timeout)
            if self._child.assigned.is_set():
                self.assigned.set()
            if self._child.active_at is not None:
                self._idle_since = max(self._idle_since, self._child.active_at)
            return decoded
        consumer = self._consumer
        assert consumer is not None
        records = consumer.poll(timeout_ms=int(o.poll_timeout * 1000), max_records=o.batch_size)
        polled_at = time.monotonic()
        reseeked = self._seek_assigned()
        if records and reseeked:
            records = {tp: msgs for tp, msgs in records.items() if tp not in reseeked}
        if not records:
            return None
        return decode_records(
            records,
            config=self.config,
            max_bytes=o.max_message_bytes,
            track_latency=o.track_latency,
            polled_at=polled_at,
        )

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
        out = self.outputs
        try:
            # a graceful stop leaves the whole ledger covered by a signed (and published) checkpoint
            self.ledger.checkpoint()
            out.maybe_flush(force=True)
            if out.publisher is None:
                out.cursor = self.ledger.size  # outputs off: those entries are never published
            if out.cursor != out.cursor_in_ledger:
                # nothing else will carry the cursor: write it on its own (offsets only, no entries)
                self.ledger.append([], offsets={self.options.group: {OUTPUT_CURSOR: out.cursor}})
        except Exception:
            logger.exception("publishing outputs at shutdown failed; they are re-published on the next start")
        finally:
            self.ledger.on_checkpoint = None
            self._close_consumer()
            if out.publisher is not None and self._owns_publisher:
                try:
                    out.publisher.close(timeout=5.0)
                except KafkaError as exc:
                    logger.warning("closing the output publisher: %s", exc)

    def _close_consumer(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.close()
            return
        consumer = self._consumer
        if consumer is not None:
            try:
                self._commit_kafka(None)
                consumer.close(autocommit=False)
            except Exception:
                logger.warning("closing the Kafka consumer failed", exc_info=True)

    # --- rebalance (in-process consumer; see railbook.serve._kafka) ---------------------------------

    def _on_assigned(self, assigned: Sequence[Any]) -> None:
        with self._seek_lock:
            self._needs_seek.update(assigned)
        self._idle_since = time.monotonic()

    def _on_revoked(self, revoked: Sequence[Any]) -> None:
        # the ledger's offsets were committed to the group after the last batch; repeat them
        # asynchronously in case that commit failed, so the next owner starts where we stopped
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
        self._drain()  # the ledger's offsets, with the batch in flight
        stored = self.ledger.committed_offsets(self.options.group)
        seek_partitions(self._consumer, pending, stored, self.options.group)
        self.assigned.set()
        return pending

    def _commit_kafka(self, only: Sequence[tuple[str, int]] | None, *, blocking: bool = True) -> None:
        with self._offsets_lock:
            stored = dict(self._stored_offsets)
        if self._consumer is not None:
            commit_offsets(self._consumer, stored, only, blocking=blocking)

    # --- one batch ---------------------------------------------------------------------------------

    # Two stages on two threads (``evaluate_ahead``): the main thread evaluates batch N+1 while the
    # writer thread appends batch N (DuckDB releases the GIL). At most one batch is in flight.
    # Approvals are sequential state: N+1 is evaluated after N, and duplicates are dropped before
    # evaluation against N's ids (in flight) and then the ledger (committed). If N's append
    # fails, the approval book (which saw N and N+1) is rebuilt from the ledger, N+1 is dropped
    # and the error ends the run: a restart reads both again from the ledger's offsets.

    def _open_reader(self) -> Callable[[Iterable[str]], AbstractSet[str]] | None:
        """The pipeline's ``existing`` usable while the writer appends; ``None`` if it has none
        (then a batch is evaluated only when nothing is in flight)."""
        opener = getattr(self.pipeline, "reader", None)
        if opener is None:
            return None
        self._reader = opener()
        return self._reader  # type: ignore[no-any-return]

    def _process(self, decoded: Decoded) -> None:
        if self.stats.first_message_at is None:
            self.stats.first_message_at = decoded.polled_at
        self.stats.messages += decoded.messages
        o = self.options
        # what the consumer process left undecoded (``railbook.serve._balance``), decoded here
        items = decoded.decode_left(
            config=self.config, max_bytes=o.max_message_bytes, track_latency=o.track_latency
        )
        self.stats.decoded_in_serve += decoded.left
        if self._existing is None:
            self._drain()  # no lookup that is safe beside the writer: evaluate after its commit
        pending = self._inflight
        in_flight = pending.batch.event_ids if pending is not None else frozenset()
        batch = self.pipeline.evaluate(
            items, in_flight=in_flight, existing=self._existing, known=decoded.decisions
        )
        self._inflight = None
        try:
            done = self._finish(pending) if pending is not None else None
        except BaseException:
            self.pipeline.rebuild_approvals()  # it saw `pending` and `batch`; the ledger neither
            raise
        if self._writer is not None:
            future = self._writer.submit(self._write, batch, decoded.offsets)
        else:  # one stage: append now, on this thread
            future = Future()
            try:
                future.set_result(self._write(batch, decoded.offsets))
            except BaseException as exc:
                future.set_exception(exc)
        self._inflight = _InFlight(future, batch, decoded)
        if done is not None:
            self._after_commit(*done)
        if self._writer is None:
            self._drain()

    def _write(self, batch: Evaluated, offsets: dict[tuple[str, int], int]) -> tuple[BatchSummary, float]:
        """On the writer thread: one ledger transaction with the batch, its offsets and the output
        cursor."""
        out = self.outputs
        group_offsets: dict[tuple[str, int], int] = dict(offsets)
        if out.publisher is None:
            out.cursor = self.ledger.size
        cursor = out.cursor
        if cursor != out.cursor_in_ledger:
            group_offsets[OUTPUT_CURSOR] = cursor
        summary = self.pipeline.commit(batch, offsets={self.options.group: group_offsets})
        committed = time.time()
        out.cursor_in_ledger = cursor
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
        decoded = pending.decoded
        # first the group (or the consumer process, which commits to the group and may send more)
        if self._child is not None:
            self._child.ack(decoded.offsets)
        else:
            self._commit_kafka(list(decoded.offsets))
        self.stats.add(summary)
        reasons = self.stats.dead_letter_reasons
        for d in decoded.dead:
            reasons[d.reason] = reasons.get(d.reason, 0) + 1
            logger.info("dead letter where=%s reason=%s", d.where, d.reason)
        if self.options.track_latency:
            now_ms = committed * 1000
            for _seq, ev, _dec in summary.entries:
                ts = decoded.sent_ms.get(ev.event_id)
                if ts is not None and ts >= 0:
                    self.stats.latencies_ms.append(now_ms - ts)
        self.outputs.publish(summary, decoded.dead)
        self.stats.outputs_published = self.outputs.published
        if self.on_batch is not None:
            self.on_batch(summary)
        logger.debug("batch messages=%d %s", decoded.messages, summary.line())
