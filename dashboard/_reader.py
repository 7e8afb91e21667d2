"""What the dashboard needs from the ledger's read API, and where it gets a reader from.

The dashboard never opens the live DuckDB file while a writer runs (DuckDB admits one process
per file; DESIGN.md "Facts measured"). :class:`LedgerSource` hands out a reader per script run:

* ``segments`` mode: ``ledger.SegmentReader`` over the immutable Parquet segments the writer
  publishes at each signed checkpoint (what ``railbook up`` users see; data as of the last
  checkpoint). The reader is kept and reopened only when the checkpoints file changes.
* ``file`` mode (an auditor's offline copy, no writer): ``ledger.Ledger.open(read_only=True)``,
  opened for one script run and closed after it, so a writer that starts later is never blocked.
  If the file turns out to be locked, the source falls back to the segments.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from core.errors import LedgerError, LedgerLockedError

if TYPE_CHECKING:
    from core.config import Config
    from core.event import CanonicalEvent
    from policy import Decision

__all__ = ["EntryLike", "LedgerSource", "ReaderLike", "SourceMode"]

logger = logging.getLogger(__name__)

SourceMode = Literal["auto", "segments", "file"]


class EntryLike(Protocol):
    """One ledger entry as the read API returns it (``ledger.Entry``)."""

    @property
    def seq(self) -> int: ...
    @property
    def event(self) -> CanonicalEvent: ...
    @property
    def decision(self) -> Decision: ...
    @property
    def entry_bytes(self) -> bytes: ...
    @property
    def leaf_hash(self) -> bytes: ...
    @property
    def chain_hash(self) -> bytes: ...


class ReaderLike(Protocol):
    """The ledger read API (``ledger.Ledger`` and ``ledger.SegmentReader`` both have it)."""

    def entries(
        self,
        *,
        source: str | None = ...,
        actor: str | None = ...,
        kind: str | None = ...,
        action: str | None = ...,
        environment: str | None = ...,
        outcome: str | None = ...,
        rail: int | None = ...,
        since: datetime | None = ...,
        until: datetime | None = ...,
        text: str | None = ...,
        limit: int | None = ...,
        offset: int = ...,
    ) -> list[Any]: ...

    def find(
        self,
        *,
        commit: str | None = ...,
        pull_request: str | None = ...,
        resource: str | None = ...,
        since: datetime | None = ...,
        until: datetime | None = ...,
    ) -> list[Any]: ...

    def get(self, event_id: str) -> Any: ...

    def stats(self) -> Any: ...


def _stamp(path: Path) -> tuple[float, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime, st.st_size)


class LedgerSource:
    """Hands out a reader for one script run (see the module docstring for the two modes)."""

    def __init__(self, config: Config, *, mode: SourceMode = "auto") -> None:
        self.config = config
        self.mode = mode
        self._lock = threading.Lock()
        self._segments: Any = None
        self._segments_stamp: tuple[float, int] | None = None
        #: what the last ``reader()`` used: "segments" or "file"
        self.last_mode: str | None = None

    def _segment_reader(self) -> Any:
        from ledger import SegmentReader

        stamp = _stamp(self.config.checkpoints_file)
        with self._lock:
            if self._segments is None or stamp != self._segments_stamp:
                old = self._segments
                self._segments = SegmentReader.from_config(self.config)
                self._segments_stamp = stamp
                logger.debug("segments reopened dir=%s stamp=%s", self.config.segments_dir, stamp)
                if old is not None and hasattr(old, "close"):
                    old.close()
            return self._segments

    @contextmanager
    def reader(self) -> Iterator[Any]:
        """A reader for the duration of the ``with`` block."""
        use_file = self.mode == "file" or (self.mode == "auto" and self.config.ledger_path.exists())
        if use_file:
            from ledger import Ledger

            try:
                ledger = Ledger.open(self.config, read_only=True)
            except LedgerLockedError:
                if self.mode == "file":
                    raise
                logger.info("ledger %s held by a writer; reading segments", self.config.ledger_path)
            else:
                self.last_mode = "file"
                with ledger:
                    yield ledger
                return
        if not self.config.segments_dir.exists() and self.mode != "segments":
            raise LedgerError(
                f"no ledger at {str(self.config.ledger_path)!r} and no published segments in "
                f"{str(self.config.segments_dir)!r}; run 'railbook demo' or 'railbook ingest', "
                "or pass --ledger"
            )
        self.last_mode = "segments"
        yield self._segment_reader()

    def close(self) -> None:
        with self._lock:
            if self._segments is not None and hasattr(self._segments, "close"):
                self._segments.close()
            self._segments = None


class StaticSource:
    """A source that always hands out the same reader (tests, benchmarks)."""

    def __init__(self, reader: Any, *, label: str = "static") -> None:
        self._reader = reader
        self.last_mode: str | None = label

    @contextmanager
    def reader(self) -> Iterator[Any]:
        yield self._reader

    def close(self) -> None:
        return None
