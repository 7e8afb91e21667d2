"""The single writer: one thread owns the ``Pipeline`` (and so the DuckDB ledger file).

DuckDB admits one writing process, and a connection must not be used from two threads at once
(DESIGN.md, "Facts measured"). Every write in ``railbook up`` — intake batches, gate requests,
alert-delivery marks, checkpoints — is therefore a job on this thread's queue:

- ``submit(items, mode=…, offsets=…)`` → ``Future[BatchSummary]``. Submissions that are queued
  together (same ``mode``) are appended in **one** ledger transaction, up to ``batch_max`` records,
  and each caller gets back only its part of the summary. Batches form from requests that arrive
  while the previous one commits. ``linger`` (intake only) lets a batch that already holds two or
  more submissions wait that long for more; a lone submission and every ``gate`` batch commit at
  once, so an idle service answers at single-request latency.
- ``call(fn)`` → ``Future[T]``: run ``fn(pipeline)`` on the writer thread (outbox reads and marks,
  stats) between batches.
- A timer asks the ledger for a time-based checkpoint (``ledger.maybe_checkpoint()``) every
  ``checkpoint_poll`` seconds, idle or not.
- ``close()`` finishes every job already queued, then closes the pipeline (and the ledger).

If a combined batch fails, each submission in it is retried alone, so one bad caller never fails
the others.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from core.deadletter import DeadLetter
from core.errors import ServiceError

if TYPE_CHECKING:
    from core.config import Config
    from core.event import CanonicalEvent
    from railbook.pipeline import BatchSummary, Pipeline

__all__ = ["Writer", "WriterClosedError", "WriterOverloadedError"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
Offsets = Mapping[str, Mapping[tuple[str, int], int]]
Listener = Callable[["BatchSummary", str], None]
MODES = ("detect", "gate")


class WriterClosedError(ServiceError):
    """The writer is shut down (or failed to start); nothing more can be written."""


class WriterOverloadedError(ServiceError):
    """The writer's queue is full; the caller should retry later (HTTP 503)."""


@dataclass
class _Batch:
    items: list[CanonicalEvent | DeadLetter]
    mode: str
    offsets: Offsets | None
    fresh: bool = False
    future: Future[BatchSummary] = field(default_factory=Future)


@dataclass
class _Call:
    fn: Callable[[Pipeline], Any]
    future: Future[Any] = field(default_factory=Future)


_STOP = object()


def _merge_offsets(parts: Iterable[Offsets | None]) -> Offsets | None:
    merged: dict[str, dict[tuple[str, int], int]] = {}
    for part in parts:
        for group, positions in (part or {}).items():
            g = merged.setdefault(group, {})
            for tp, off in positions.items():
                g[tp] = max(off, g.get(tp, off))
    return merged or None


class Writer:
    """Owns the pipeline on one thread; everything that writes the ledger goes through here."""

    def __init__(
        self,
        opener: Callable[[], AbstractContextManager[Pipeline]],
        *,
        batch_max: int = 5000,
        linger: float = 0.0,
        checkpoint_poll: float = 1.0,
        queue_max: int = 10000,
        name: str = "railbook-writer",
    ) -> None:
        self._opener = opener
        self.batch_max = batch_max
        self.linger = linger
        self.checkpoint_poll = checkpoint_poll
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_max)
        self._lock = threading.Lock()
        self._closed = False
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.listeners: list[Listener] = []
        """Called on the writer thread after each committed batch with (summary, mode); keep them cheap."""
        self.checkpoint_listeners: list[Callable[[Any], None]] = []
        """Called on the writer thread with each checkpoint the ledger signs."""
        self.last_checkpoint_at: float | None = None
        """``time.time()`` of the newest checkpoint this writer saw signed (``None``: none yet)."""
        self.batches = 0
        """Ledger transactions committed by this writer."""

    @classmethod
    def for_config(cls, config: Config, **options: Any) -> Writer:
        """A writer over ``railbook.wiring.open_pipeline(config)``."""
        from railbook.wiring import open_pipeline

        return cls(lambda: open_pipeline(config), **options)

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self, timeout: float | None = 300.0) -> Writer:
        """Open the pipeline on the writer thread; raises what opening raised (e.g. a locked ledger)."""
        if self._thread.ident is None:
            self._thread.start()
        if not self._ready.wait(timeout):
            raise ServiceError(f"writer: the pipeline did not open within {timeout} s")
        if self._start_error is not None:
            raise self._start_error
        return self

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self._start_error is None and self._thread.is_alive()

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def close(self, timeout: float | None = 60.0) -> None:
        """Finish queued work, close the pipeline, stop the thread. Idempotent."""
        with self._lock:
            already = self._closed
            self._closed = True
        if not already and self._thread.is_alive():
            self._queue.put(_STOP)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def __enter__(self) -> Writer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- submitting --------------------------------------------------------------------------------

    def _put(self, job: _Batch | _Call) -> None:
        with self._lock:
            if self._closed or self._start_error is not None:
                raise WriterClosedError(
                    "writer is closed; the service is shutting down (retry against a running one)"
                )
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                raise WriterOverloadedError(
                    f"writer queue is full ({self._queue.maxsize} pending jobs); retry later"
                ) from None

    def submit(
        self,
        items: Sequence[CanonicalEvent | DeadLetter],
        *,
        mode: str = "detect",
        offsets: Offsets | None = None,
        fresh: bool = False,
    ) -> Future[BatchSummary]:
        """Evaluate and append ``items`` (with ``offsets``) in a ledger transaction; the future
        resolves to this submission's part of the ``BatchSummary``.

        ``fresh``: the caller minted these event ids just now (gate requests, ``gate:req-<random>``),
        so the ledger lookup for already-stored duplicates is skipped for them (see
        ``Pipeline.process``, ``minted``)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        job = _Batch(list(items), mode, offsets, fresh)
        self._put(job)
        return job.future

    def call(self, fn: Callable[[Pipeline], T]) -> Future[T]:
        """Run ``fn(pipeline)`` on the writer thread, between batches."""
        job = _Call(fn)
        self._put(job)
        return job.future

    # --- the thread --------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            cm = self._opener()
            pipeline = cm.__enter__()
        except BaseException as exc:
            self._start_error = exc
            self._ready.set()
            self._fail_queued(exc)
            return
        self._ready.set()
        logger.info("writer started thread=%s", self._thread.name)
        error: BaseException | None = None
        try:
            self._loop(pipeline)
        except BaseException as exc:  # pragma: no cover - a bug; keep the evidence, fail callers
            error = exc
            logger.exception("writer loop died")
        finally:
            with self._lock:
                self._closed = True
            self._fail_queued(error or WriterClosedError("writer stopped before this job ran"))
            try:
                cm.__exit__(None, None, None)
            except Exception:
                logger.exception("writer: closing the pipeline failed")
            logger.info("writer stopped batches=%d", self.batches)

    def _fail_queued(self, exc: BaseException) -> None:
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(job, _Batch | _Call) and job.future.set_running_or_notify_cancel():
                job.future.set_exception(exc)

    def _loop(self, pipeline: Pipeline) -> None:
        next_poll = time.monotonic() + self.checkpoint_poll
        carry: Any = None
        while True:
            if carry is not None:
                job, carry = carry, None
            else:
                try:
                    job = self._queue.get(timeout=max(0.0, next_poll - time.monotonic()))
                except queue.Empty:
                    job = None
            if time.monotonic() >= next_poll:
                self._maybe_checkpoint(pipeline)
                next_poll = time.monotonic() + self.checkpoint_poll
            if job is None:
                continue
            if job is _STOP:
                return
            if isinstance(job, _Call):
                self._run_call(pipeline, job)
                continue
            batch = [job]
            count = len(job.items)
            # Linger only extends a batch that already has company (another submission was queued
            # behind this one): a lone submission — an idle service's gate request — never waits, and
            # gate batches never linger at all (the gate's answer waits on this commit).
            linger = self.linger if job.mode != "gate" else 0.0
            deadline: float | None = None
            while count < self.batch_max:
                try:
                    wait = 0.0 if deadline is None else deadline - time.monotonic()
                    nxt = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                fits = isinstance(nxt, _Batch) and count + len(nxt.items) <= self.batch_max
                if fits and nxt.mode == job.mode:
                    batch.append(nxt)
                    count += len(nxt.items)
                    if deadline is None and linger > 0:
                        deadline = time.monotonic() + linger
                else:
                    carry = nxt
                    break
            self._run_batch(pipeline, batch)

    def _run_call(self, pipeline: Pipeline, job: _Call) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        try:
            job.future.set_result(job.fn(pipeline))
        except Exception as exc:
            job.future.set_exception(exc)

    def _maybe_checkpoint(self, pipeline: Pipeline) -> None:
        fn = getattr(pipeline.ledger, "maybe_checkpoint", None)
        if fn is None:
            return
        try:
            cp = fn()
        except Exception:
            logger.exception("writer: time-based checkpoint failed")
            return
        if cp is not None:
            self._saw_checkpoint(cp)

    def _saw_checkpoint(self, cp: Any) -> None:
        self.last_checkpoint_at = time.time()
        for listener in self.checkpoint_listeners:
            try:
                listener(cp)
            except Exception:
                logger.exception("writer: checkpoint listener failed")

    def _run_batch(self, pipeline: Pipeline, jobs: list[_Batch]) -> None:
        jobs = [j for j in jobs if j.future.set_running_or_notify_cancel()]
        if not jobs:
            return
        items: list[CanonicalEvent | DeadLetter] = [it for j in jobs for it in j.items]
        try:
            offsets = _merge_offsets(j.offsets for j in jobs)
            summary = pipeline.process(items, offsets=offsets, mode=jobs[0].mode, minted=_minted(jobs))
        except Exception as exc:
            if len(jobs) == 1:
                logger.warning("writer: batch failed error=%s", exc)
                jobs[0].future.set_exception(exc)
                return
            logger.warning("writer: combined batch of %d failed (%s); retrying one by one", len(jobs), exc)
            for job in jobs:
                retry: _Batch = _Batch(job.items, job.mode, job.offsets, job.fresh)
                retry.future.set_running_or_notify_cancel()
                self._run_batch_single(pipeline, retry, job.future)
            return
        self._committed(summary, jobs[0].mode)
        if len(jobs) == 1:
            jobs[0].future.set_result(summary)
            return
        for job, part in zip(jobs, _split(summary, [j.items for j in jobs]), strict=True):
            job.future.set_result(part)

    def _run_batch_single(self, pipeline: Pipeline, job: _Batch, target: Future[BatchSummary]) -> None:
        try:
            summary = pipeline.process(job.items, offsets=job.offsets, mode=job.mode, minted=_minted([job]))
        except Exception as exc:
            target.set_exception(exc)
            return
        self._committed(summary, job.mode)
        target.set_result(summary)

    def _committed(self, summary: BatchSummary, mode: str) -> None:
        self.batches += 1
        if summary.checkpoint is not None:
            self._saw_checkpoint(summary.checkpoint)
        for listener in self.listeners:
            try:
                listener(summary, mode)
            except Exception:
                logger.exception("writer: commit listener failed")


def _minted(jobs: Iterable[_Batch]) -> frozenset[str]:
    """The event ids of the ``fresh`` submissions (see ``Pipeline.process``, ``minted``)."""
    return frozenset(it.event_id for j in jobs if j.fresh for it in j.items if not isinstance(it, DeadLetter))


def _split(summary: BatchSummary, parts: list[list[CanonicalEvent | DeadLetter]]) -> list[BatchSummary]:
    """Each submission's share of a combined summary; an event id belongs to the first submission
    that carried it (later copies were duplicates, as ``Pipeline.process`` counted them)."""
    owner: dict[str, int] = {}
    for i, items in enumerate(parts):
        for it in items:
            if not isinstance(it, DeadLetter):
                owner.setdefault(it.event_id, i)
    out: list[BatchSummary] = []
    cls = type(summary)
    for i, items in enumerate(parts):
        part = cls()
        part.read = len(items)
        part.dead_lettered = sum(1 for it in items if isinstance(it, DeadLetter))
        part.entries = [e for e in summary.entries if owner.get(e[1].event_id) == i]
        part.appended = len(part.entries)
        part.violations = sum(1 for e in part.entries if e[2].is_violation)
        part.duplicates = part.read - part.dead_lettered - part.appended
        part.checkpoint = summary.checkpoint
        out.append(part)
    return out
