"""When the writer's segment thread exports, and up to which checkpoint (internal).

Appends sign a checkpoint every ``checkpoint_every`` entries: under load (serve at ~17k events/s,
the default 1,000) that is 17 a second. Exporting a Parquet segment for each one wrote 17 files a
second for readers to open, and cost the writer's process ~7.7 µs per entry, against ~2.9 µs for a
segment of 20k entries (DuckDB's per-file costs: the query, the file, its footer, the read-back
check; ``docs/design/kafka.md``). So the thread exports the newest checkpoint offered, at most once
per ``[ledger] segment_seconds``: one file then covers every checkpoint signed in between (a
segment still ends at a signed checkpoint; ``railbook verify --segments`` checks it against that
one). When checkpoints come slower than that, as at the default ``checkpoint_seconds``, each still
gets its own segment at once.

A checkpoint signed on request (``Ledger.checkpoint()``), ``flush``, ``close`` and a reconnect do
not wait for the due time: they ``hurry`` the export offered (and then wait for it to finish).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ledger.checkpoint import Checkpoint

__all__ = ["SegmentSchedule"]


class SegmentSchedule:
    """The checkpoint the next export ends at, and when that export may start (module docstring).

    ``offer`` is called on the appending thread, ``take`` on the segment thread; both are safe together.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        """Seconds from the start of one export to the start of the next, unless hurried."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._target: Checkpoint | None = None
        self._queued = False
        self._urgent = False
        self._due = 0.0  # monotonic time the next export may start (the first: at once)

    def offer(self, cp: Checkpoint, *, urgent: bool = False) -> bool:
        """Make ``cp`` the end of the next export. Returns whether the caller must queue a task
        that calls ``take`` (no export is queued yet; a queued one takes the newest offer)."""
        with self._lock:
            self._target = cp
            if urgent:
                self._urgent = True
                self._wake.set()
            if self._queued:
                return False
            self._queued = True
            return True

    def hurry(self) -> None:
        """Let a queued export start now instead of at its due time (flush, close, reconnect)."""
        with self._lock:
            if self._queued:
                self._urgent = True
                self._wake.set()

    def take(self) -> Checkpoint | None:
        """On the segment thread: wait until the queued export is due (or hurried), then return the
        newest checkpoint offered (``None`` if there is none)."""
        with self._lock:
            urgent = self._urgent
        if not urgent:
            delay = self._due - time.monotonic()
            if delay > 0:
                self._wake.wait(delay)
        with self._lock:
            cp, self._target = self._target, None
            self._queued = self._urgent = False
            self._wake.clear()
            self._due = time.monotonic() + self.interval
        return cp
