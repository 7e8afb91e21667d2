"""Service wiring: open the ledger, load the policy pack, build the pipeline — one place for all commands."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from core.config import Config
from core.errors import LedgerLockedError
from ledger import Ledger, SegmentReader
from policy import PolicyEngine
from railbook.pipeline import Pipeline

__all__ = ["open_pipeline", "open_reader"]

logger = logging.getLogger(__name__)


@contextmanager
def open_pipeline(config: Config) -> Iterator[Pipeline]:
    """The writer: ledger opened read-write (this process owns the file), policy pack loaded."""
    engine = PolicyEngine.load(config)
    with Ledger.open(config) as ledger:
        yield Pipeline(config, ledger, engine)


@contextmanager
def open_reader(config: Config, *, notice: Any = None) -> Iterator[Any]:
    """A reader: the ledger file when no writer holds it, else the published segments.

    DuckDB admits one process per file, so while ``railbook up``/``serve`` runs, readers see the
    immutable segments (as of the last signed checkpoint) instead of failing.
    """
    try:
        ledger = Ledger.open(config, read_only=True)
    except LedgerLockedError:
        if notice is not None:
            notice(
                f"ledger {config.ledger_path} is held by a running writer; "
                f"reading the published segments in {config.segments_dir} (as of the last checkpoint)"
            )
        reader = SegmentReader(config.segments_dir, config.checkpoints_file)
        try:
            yield reader
        finally:
            close = getattr(reader, "close", None)
            if close:
                close()
        return
    with ledger:
        yield ledger
