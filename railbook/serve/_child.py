"""serve's handle on the consumer process (``railbook.serve._front``): start, receive, acknowledge, stop."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import KafkaError
from railbook.serve._front import FrontSetup

if TYPE_CHECKING:
    from core.config import Config
    from railbook.serve._decode import Decoded
    from railbook.serve._options import ServeOptions

__all__ = ["ConsumerProcess"]

logger = logging.getLogger(__name__)

#: seconds for the child's imports, on top of the broker connection timeout
_START_GRACE = 60.0


class ConsumerProcess:
    """The Kafka consumer running in a child process; batches arrive decoded, in order."""

    def __init__(
        self,
        config: Config,
        options: ServeOptions,
        topics: tuple[str, ...],
        stored: dict[tuple[str, int], int],
        *,
        policy_version: str | None = None,
    ) -> None:
        """``policy_version``: the consumer process decides ahead with this pack version (see
        ``FrontSetup.policy_version``); ``None``: it only decodes."""
        self.options = options
        self.assigned = threading.Event()
        """Set once partitions were assigned and sought (benchmarks wait for it)."""
        self.active_at: float | None = None
        """``time.monotonic()`` of the latest rebalance or assignment (idle time excludes them)."""
        self._closed = False
        mine, theirs = socket.socketpair()
        env = dict(os.environ)
        root = str(Path(__file__).parents[2])  # the directory holding the railbook package
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            stdout: Any = sys.stderr.fileno()  # nothing of the child's may reach serve's stdout (--json)
        except (AttributeError, OSError, ValueError):
            stdout = subprocess.DEVNULL
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "railbook.serve._front", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                env=env,
                close_fds=True,
            )
        finally:
            theirs.close()
        self._conn = Connection(mine.detach())
        try:
            self._conn.send(
                FrontSetup(
                    config,
                    options,
                    topics,
                    dict(stored),
                    logging.getLogger().getEffectiveLevel(),
                    policy_version,
                )
            )
            self._wait_ready()
        except BaseException:
            self.kill()
            self._conn.close()
            raise

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.options.connect_timeout + _START_GRACE
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                limit = self.options.connect_timeout + _START_GRACE
                raise KafkaError(
                    f"the Kafka consumer process did not start within {limit:g}s; "
                    "see its log above, or run serve with --in-process"
                )
            msg = self._next(remaining)
            if msg is not None and msg[0] == "ready":
                return

    def _next(self, timeout: float) -> tuple[Any, ...] | None:
        """The next message that is not a log record (those are logged here); ``None`` on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if not self._conn.poll(max(0.0, deadline - time.monotonic())):
                return None
            try:
                msg: tuple[Any, ...] = self._conn.recv()
            except (EOFError, OSError):
                self._closed = True
                code = self._proc.wait(10)
                raise KafkaError(
                    f"the Kafka consumer process exited unexpectedly (exit code {code}); see its log above"
                ) from None
            kind = msg[0]
            if kind == "log":
                record: logging.LogRecord = msg[1]
                logging.getLogger(record.name).handle(record)
            elif kind == "error":
                raise KafkaError(msg[1])
            elif kind in ("assigned", "rebalancing"):
                self.active_at = time.monotonic()
                if kind == "assigned":
                    self.assigned.set()
            else:
                return msg

    def recv(self, timeout: float) -> Decoded | None:
        """The next decoded batch; ``None`` if none came within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self._next(max(0.0, deadline - time.monotonic()))
            if msg is None:
                return None
            if msg[0] == "batch":
                batch: Decoded = msg[1]
                return batch
            if msg[0] == "closed":
                self._closed = True
                raise KafkaError("the Kafka consumer process closed unexpectedly; see its log above")
            if time.monotonic() >= deadline:
                return None

    def ack(self, offsets: dict[tuple[str, int], int]) -> None:
        """The batch with these offsets is committed in the ledger (acknowledge every batch, in order)."""
        self._conn.send(("ack", dict(offsets)))

    def close(self, timeout: float = 45.0) -> None:
        """Stop consuming: the child commits the acknowledged offsets to the group and leaves it.
        Batches it sent that were not acknowledged are dropped (a restart reads them again)."""
        if not self._closed:
            try:
                self._conn.send(("stop",))
                deadline = time.monotonic() + timeout
                while not self._closed and time.monotonic() < deadline:
                    msg = self._next(deadline - time.monotonic())
                    if msg is not None and msg[0] == "closed":
                        self._closed = True
            except (KafkaError, OSError) as exc:
                logger.warning("stopping the consumer process: %s", exc)
        self._conn.close()
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("the consumer process did not exit within %gs; killing it", timeout)
            self.kill()

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)
