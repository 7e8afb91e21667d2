"""The consumer process: serve's Kafka side (poll, rebalances, seeks, decoding) on a core of its own.

``serve`` is CPU-bound Python and the GIL keeps its threads on one core (cedarpy holds the GIL;
measured), so the work before the ledger — kafka-python's record parsing and Avro decoding, a
third of serve's CPU — runs in a child process (``python -m railbook.serve._front FD``) that hands
decoded batches to serve over a socket pair. serve dedupes, evaluates and appends each batch with
its offsets in one ledger transaction, exactly as in one process, then acknowledges it.

Exactly once does not depend on this process. The ledger alone decides where consumption resumes:
the child's view of the stored offsets is the ledger's (sent at start, then advanced by each
acknowledgement, the only writes of this group's offsets); before seeking an assigned partition it
waits until every batch it sent is acknowledged; it commits to Kafka only acknowledged offsets,
so the group offset never leads the ledger. If serve dies (SIGKILL), the child reads EOF, commits
what was acknowledged, closes the consumer and exits; batches it had sent and not seen
acknowledged are simply read again by the next serve.

Protocol (pickled tuples). serve → child: a ``FrontSetup``, then ``("ack", offsets)`` per batch in
order and ``("stop",)``. child → serve: ``("ready",)`` or ``("error", text)``, then ``("batch",
Decoded)``, ``("rebalancing",)`` (from the rebalance callbacks), ``("assigned",)`` (sought),
``("log", LogRecord)`` and finally ``("closed",)``.
"""

from __future__ import annotations

import logging
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from core.errors import KafkaError
from core.event import CanonicalEvent
from railbook.serve._balance import DecodeBalance
from railbook.serve._decode import Decoded, decode_records
from railbook.serve._gc import tuned_gc
from railbook.serve._kafka import commit_offsets, make_consumer, seek_partitions

if TYPE_CHECKING:
    from core.config import Config
    from policy import Decision, PolicyEngine
    from railbook.serve._options import ServeOptions

__all__ = ["DEPTH", "FrontSetup", "main"]

logger = logging.getLogger(__name__)

#: batches sent to serve and not yet acknowledged: one being appended, one being evaluated and
#: one ready behind them. With two, either process often waited for the other (each was 0.7-0.9
#: of a core busy); alternating runs on one broker, 100k events: 2 -> 3 gave 9.4-10.0k -> 10.5-10.8k
#: events/s (three pairs), 3 -> 4 nothing (10.5-11.4k vs 10.4-10.9k)
DEPTH = 3
#: seconds between checks for acknowledgements while a revocation waits for them
_REVOKE_POLL = 0.01
#: poll timeout (seconds) while batches are in flight: the budget of a rebalance that waits for them
#: (2.5 s per batch in flight: a batch of 5,000 takes serve ~0.5 s, ~2 s on a slow, busy machine)
_BUSY_POLL = 2.5 * DEPTH
#: seconds of that budget left to the join itself
_REVOKE_MARGIN = 0.5


@dataclass(frozen=True)
class FrontSetup:
    """Everything the consumer process needs, sent as the first message."""

    config: Config
    options: ServeOptions
    topics: tuple[str, ...]
    stored: dict[tuple[str, int], int]
    """The ledger's offsets of the group (without the output cursor)."""
    log_level: int
    policy_version: str | None = None
    """serve's policy pack version, when the consumer process is to decide ahead
    (``ServeOptions.decide_in_consumer``): it loads the pack from the config and decides only if
    it loaded this version."""


class _PipeLogHandler(logging.Handler):
    """Ships log records to serve, which hands them to its own handlers (one log, one format)."""

    def __init__(self, front: _Front) -> None:
        super().__init__()
        self._front = front

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.msg = record.getMessage()
            record.args = None
            if record.exc_info:
                record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
                record.exc_info = None
            self._front.send(("log", record))
        except Exception:  # a lost log line must not stop consumption
            self.handleError(record)


class _Front:
    def __init__(self, conn: Connection, setup: FrontSetup) -> None:
        self.conn = conn
        self.setup = setup
        self.options = setup.options
        self.stored = dict(setup.stored)
        self._cond = threading.Condition()
        self._out: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._inflight = 0
        self.engine: PolicyEngine | None = None
        """The pack serve decides with, once ``run`` loaded it (``FrontSetup.policy_version``)."""
        self._dirty: set[tuple[str, int]] = set()
        self._stop = False
        self._parent_gone = False
        self._needs_seek: set[Any] = set()
        self._revocations = 0
        self._poll_deadline = 0.0
        self._revoked: list[frozenset[Any]] = []
        self.consumer: Any = None
        self.balance = DecodeBalance(DEPTH, enabled=setup.options.balance_decoding)
        """The share of each batch left for serve to decode (``railbook.serve._balance``)."""

    # --- talking to serve ------------------------------------------------------------------------

    def send(self, msg: tuple[Any, ...]) -> None:
        """Queue ``msg`` for serve; never blocks (rebalance callbacks and log records are sent from
        kafka-python's event loop, which must not wait for serve to read a batch)."""
        if not self._parent_gone:
            self._out.put(msg)

    def _sender(self) -> None:
        """Thread: ships queued messages in order; ``None`` ends it."""
        while True:
            msg = self._out.get()
            if msg is None:
                return
            try:
                self.conn.send(msg)
            except (OSError, EOFError, ValueError):
                self._gone()
                return

    def _flush(self, thread: threading.Thread) -> None:
        self._out.put(None)
        thread.join(30.0)

    def _gone(self) -> None:
        with self._cond:
            self._parent_gone = self._stop = True
            self._cond.notify_all()

    def _receive(self) -> None:
        """Thread: acknowledgements and the stop request from serve; EOF when serve is gone."""
        while True:
            try:
                msg = self.conn.recv()
            except (OSError, EOFError):
                self._gone()
                return
            with self._cond:
                if msg[0] == "ack":
                    self.stored.update(msg[1])
                    self._dirty.update(msg[1])
                    self._inflight -= 1
                elif msg[0] == "stop":
                    self._stop = True
                self._cond.notify_all()
            if msg[0] == "stop":
                return

    def _wait(self, ready: Any) -> bool:
        """Wait until ``ready()`` (under the lock) or a stop; True if ready."""
        with self._cond:
            while not self._stop and not ready():
                self._cond.wait(1.0)
            return not self._stop

    # --- rebalance callbacks (coroutines on kafka-python's event loop, see _listener) --------------

    def _on_assigned(self, assigned: Sequence[Any]) -> None:
        with self._cond:
            self._needs_seek.update(assigned)
        self.send(("rebalancing",))

    def _revoking(self, revoked: Sequence[Any]) -> None:
        """First half of ``on_partitions_revoked``: records of these partitions polled before are
        not handed over any more (``_hand_over``)."""
        with self._cond:
            self._needs_seek.difference_update(revoked)
            self._revoked.append(frozenset(revoked))
            self._revocations += 1
        self.send(("rebalancing",))

    def _drained(self) -> bool:
        with self._cond:
            return self._inflight == 0 or self._stop

    def _revoked_done(self, revoked: Sequence[Any]) -> None:
        """Second half, once every batch in flight is acknowledged: the next owner of these
        partitions starts where the ledger stopped."""
        commit_offsets(
            self.consumer, self._snapshot(), [(tp.topic, tp.partition) for tp in revoked], blocking=False
        )

    def _snapshot(self) -> dict[tuple[str, int], int]:
        with self._cond:
            return dict(self.stored)

    # --- the loop ---------------------------------------------------------------------------------

    def run(self) -> int:
        sender = threading.Thread(target=self._sender, name="railbook-front-sender", daemon=True)
        sender.start()
        try:
            return self._run()
        finally:
            self._flush(sender)

    def _run(self) -> int:
        o = self.options
        self.engine = _engine_for(self.setup)  # here, so that its warnings reach serve's log
        try:
            self.consumer = make_consumer(o, self.setup.topics, _listener(self))
        except KafkaError as exc:
            self.send(("error", str(exc)))
            return 1
        threading.Thread(target=self._receive, name="railbook-front-receiver", daemon=True).start()
        self.send(("ready",))
        try:
            while not self._stop:
                with self._cond:
                    revocations = self._revocations
                    # a rebalance joins inside poll, within its timeout, and on_partitions_revoked
                    # waits there for the batches in flight: give it time for them (a join that
                    # outlived its poll was seen to stall for good). Records end a poll at once.
                    timeout = o.poll_timeout if self._inflight == 0 else max(o.poll_timeout, _BUSY_POLL)
                    self._poll_deadline = time.monotonic() + timeout
                records = self.consumer.poll(timeout_ms=int(timeout * 1000), max_records=o.batch_size)
                polled_at = time.monotonic()
                reseeked = self._seek_assigned()
                if records and reseeked:
                    records = {tp: msgs for tp, msgs in records.items() if tp not in reseeked}
                self._commit_acked()
                if records:
                    self._hand_over(records, polled_at, revocations)
        except Exception as exc:
            logger.exception("the consumer process failed")
            self.send(("error", f"the Kafka consumer process failed: {type(exc).__name__}: {exc}"))
            return 1
        finally:
            self._close()
        return 0

    def _hand_over(self, records: dict[Any, list[Any]], polled_at: float, revocations: int) -> None:
        """Decode (while serve works on the batches in flight), wait for a free slot, send."""
        decoded = self._decode(records, polled_at)
        with self._cond:
            self.balance.observe(self._inflight)  # how far serve is behind, now that this one is ready
        while True:
            if not self._wait(lambda: self._inflight < DEPTH):
                return
            with self._cond:
                # the check and the count are atomic with ``_on_revoked``'s: it either waits for
                # this batch, or this batch leaves out what it revoked
                if self._revocations == revocations:
                    if not decoded.messages:
                        return
                    self._inflight += 1
                    break
                revoked = set().union(*self._revoked[revocations:])
                revocations = self._revocations
            # revoked since the poll: the next owner starts at the ledger's offset (re-sought here)
            records = {tp: msgs for tp, msgs in records.items() if tp not in revoked}
            decoded = self._decode(records, polled_at)
        self.send(("batch", decoded))

    def _decode(self, records: dict[Any, list[Any]], polled_at: float) -> Decoded:
        o = self.options
        decoded = decode_records(
            records,
            config=self.setup.config,
            max_bytes=o.max_message_bytes,
            track_latency=o.track_latency,
            polled_at=polled_at,
            keep_canonical=True,
            leave=self.balance.share,
        )
        events: list[CanonicalEvent] = []
        for item in decoded.items:
            if isinstance(item, CanonicalEvent):
                # the event's part of its ledger entry, computed here rather than under serve's
                # GIL, travels with the event (py-spy: entry encoding was ~25 % of the time serve's
                # process held the GIL, ~15 % after); an event decided ahead travels as little
                # more than these bytes (``Decoded`` pickles it through ``core.deferred``). Avro
                # events have them from decoding; the rest (adapters' events) are encoded here.
                item.keep_canonical_bytes()
                events.append(item)
        if self.engine is not None and events:
            decoded.decisions = self._prejudge(decoded.items, events)
        return decoded

    def _prejudge(self, items: Sequence[Any], events: list[CanonicalEvent]) -> list[Decision | None] | None:
        """``PolicyEngine.prejudge`` of the batch's events, one entry per item; ``None`` if it
        fails (serve then decides every event itself: a policy error must not stop consumption)."""
        assert self.engine is not None
        try:
            ahead = iter(self.engine.prejudge(events))
        except Exception:
            logger.exception("deciding ahead in the consumer process failed; serve decides this batch")
            return None
        return [next(ahead) if isinstance(item, CanonicalEvent) else None for item in items]

    def _seek_assigned(self) -> set[Any]:
        with self._cond:
            pending, self._needs_seek = self._needs_seek, set()
        if not pending:
            return pending
        # the ledger's offsets, with every batch in flight: wait for their acknowledgements
        if not self._wait(lambda: self._inflight == 0):
            return pending
        seek_partitions(self.consumer, pending, self._snapshot(), self.options.group)
        self.send(("assigned",))
        return pending

    def _commit_acked(self) -> None:
        with self._cond:
            dirty, self._dirty = self._dirty, set()
            stored = dict(self.stored)
        if not dirty:
            return
        coordinator = getattr(self.consumer, "_coordinator", None)
        if coordinator is not None and coordinator.generation_if_stable() is None:
            # a rebalance is under way (its join runs on kafka-python's event loop, beside this
            # thread): a commit now only fails, and one racing the join was seen to stall it for
            # good. Commit after it; on_partitions_revoked commits the revoked ones meanwhile.
            with self._cond:
                self._dirty |= dirty
            return
        assigned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
        commit_offsets(self.consumer, stored, [k for k in dirty if k in assigned])

    def _close(self) -> None:
        consumer = self.consumer
        if consumer is not None:
            try:
                with self._cond:
                    stored = dict(self.stored)
                commit_offsets(consumer, stored, None)  # acknowledged = in the ledger
                consumer.close(autocommit=False)
            except Exception:
                logger.warning("closing the Kafka consumer failed", exc_info=True)
        if not self._parent_gone:
            self.send(("closed",))


def _engine_for(setup: FrontSetup) -> PolicyEngine | None:
    """The pack serve decides with, loaded here, or ``None`` (then serve decides every event)."""
    if setup.policy_version is None:
        return None
    from policy import PolicyEngine

    try:
        engine = PolicyEngine.load(setup.config)
    except Exception:
        logger.exception("the consumer process cannot load the policy pack; serve decides every event")
        return None
    if engine.version != setup.policy_version:
        logger.warning(
            "the consumer process loaded policy version %s, serve uses %s (the pack changed in "
            "between?); serve decides every event",
            engine.version[:12],
            setup.policy_version[:12],
        )
        return None
    return engine


def _listener(front: _Front) -> Any:
    """An ``AsyncConsumerRebalanceListener``: kafka-python runs rebalance callbacks as tasks of its
    event loop, the one that also heartbeats and completes the join. Waiting there for serve's
    acknowledgements with a blocking call stalled the rebalance for good (seen: joined, assignment
    computed, never synced); awaiting the loop's own ``sleep`` keeps it running meanwhile."""
    from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener

    class _Async(AsyncConsumerRebalanceListener):  # type: ignore[misc]
        async def on_partitions_revoked(self, revoked: Sequence[Any]) -> None:
            front._revoking(revoked)
            sleep = getattr(getattr(front.consumer, "_net", None), "sleep", None)
            if sleep is None:  # not kafka-python 3's event loop (pinned 3.0.12): wait here
                front._wait(lambda: front._inflight == 0)
            else:
                # never past the poll's own timeout: a join that outlives it may never complete
                until = front._poll_deadline - _REVOKE_MARGIN
                while not front._drained() and time.monotonic() < until:
                    await sleep(_REVOKE_POLL)
                if not front._drained():
                    logger.warning(
                        "partitions revoked with batches in flight; if they move to another member "
                        "of the group, those batches may be recorded in both ledgers"
                    )
            front._revoked_done(revoked)

        async def on_partitions_assigned(self, assigned: Sequence[Any]) -> None:
            front._on_assigned(assigned)

    return _Async()


def main(argv: Sequence[str]) -> int:
    """``python -m railbook.serve._front FD``: FD is this end of serve's socket pair."""
    # serve stops us (a terminal's Ctrl-C reaches the whole process group: serve decides)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    conn = Connection(int(argv[0]))
    try:
        setup: FrontSetup = conn.recv()
    except (OSError, EOFError):
        return 1
    front = _Front(conn, setup)
    root = logging.getLogger()
    root.handlers[:] = [_PipeLogHandler(front)]
    root.setLevel(setup.log_level)
    with tuned_gc(setup.options.tune_gc):
        return front.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
