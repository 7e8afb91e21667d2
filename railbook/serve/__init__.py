"""``railbook serve``: consume Kafka as a consumer-group member, exactly once into the ledger.

Two processes by default (``ServeOptions.consumer_process``; ``--in-process`` keeps one)::

    consumer process (railbook.serve._front)             serve (this process: pipeline, ledger)
    poll a batch ─► decode each message (events topic: Avro; raw topics: the source's adapter;
                    anything undecodable: a DeadLetter naming kafka:<topic>/<partition>@<offset>)
              ══ decoded batch + offsets ══►
              ─► Pipeline.evaluate(items) = dedupe + Cedar (in order: approvals are state)
              ─► Pipeline.commit(batch, offsets={group: {(topic, partition): next offset}})
                    = ledger append + dead letters + offsets, ONE DuckDB transaction
              ─► acknowledge ══► the consumer process commits the same offsets to Kafka (lag
                  monitoring, hand-over between ledgers); it decodes the next batches meanwhile
              ─► publish decisions / violations / dead letters / checkpoints (after the commit)

Exactly once: the ledger, not Kafka, is the record of what was consumed. On start and on every
partition assignment the consumer seeks to the ledger's stored offset, so a crash at any point
either rolled the whole batch back (it is read again) or committed it together with its offsets
(it is not). The consumer process knows the ledger's offsets (sent at start, advanced by each
acknowledgement) and, before it seeks, waits until every batch it sent is acknowledged.
Duplicated event ids (a producer retrying, a file published twice) are skipped and counted by
the pipeline.

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

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from railbook.serve._gc import tuned_gc
from railbook.serve._kafka import fetch_settings
from railbook.serve._options import DEFAULT_TOPICS, OUTPUT_CURSOR, ServeOptions, ServeStats
from railbook.serve._server import Server

if TYPE_CHECKING:
    from core.config import Config

__all__ = [
    "DEFAULT_TOPICS",
    "OUTPUT_CURSOR",
    "ServeOptions",
    "ServeStats",
    "Server",
    "fetch_settings",
    "ledger_config",
    "serve",
    "tuned_gc",
]

logger = logging.getLogger(__name__)


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


def ledger_config(config: Config, options: ServeOptions) -> Config:
    """``config`` as serve opens its ledger with: unless ``[ledger] threads`` says otherwise, DuckDB
    gets one thread fewer than the cores when the consumer process takes one. Both processes are
    busy under load, and a second DuckDB thread then only competes for the consumer process's core:
    on two cores, serve with one DuckDB thread was faster in 8 of 11 alternating pairs (200k
    events; median +4 %, mean +5.4 %; docs/design/kafka.md)."""
    if config.ledger.threads is not None or not options.consumer_process:
        return config
    threads = max(1, (os.cpu_count() or 2) - 1)
    return config.model_copy(update={"ledger": config.ledger.model_copy(update={"threads": threads})})


def serve(
    config: Config,
    options: ServeOptions,
    *,
    install_signal_handlers: bool = True,
    on_start: Callable[[Server], None] | None = None,
) -> ServeStats:
    """Open the ledger and policy pack, consume until stopped, close everything; returns the totals."""
    from railbook.wiring import open_pipeline

    with open_pipeline(ledger_config(config, options)) as pipeline:
        server = Server(config, pipeline, options)
        if on_start is not None:
            on_start(server)
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            with _signals(server):
                return server.run()
        return server.run()
