"""``railbook up``: the writer, the alert worker, the HTTP app under uvicorn, and the dashboard.

``Service`` starts the parts in dependency order and stops them in reverse: the HTTP server stops
taking requests, the writer finishes what it has queued and signs a final checkpoint, the alert
worker stops (undelivered alerts stay in the outbox for the next start), the dashboard exits.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ServiceError
from railbook.service.app import create_app
from railbook.service.auth import TokenTable, ensure_local_token
from railbook.service.metrics import Metrics
from railbook.service.settings import ServerSettings, server_settings
from railbook.service.writer import Writer

if TYPE_CHECKING:
    from alerts import DeliveryWorker
    from core.config import Config
    from railbook.pipeline import BatchSummary

__all__ = ["Service"]

logger = logging.getLogger(__name__)


def _evidence_link(template: str | None) -> Any:
    if not template:
        return None

    def link(alert: Any) -> str:
        return template.format(event_id=alert.event_id, seq=alert.seq)

    return link


def _server_class() -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises SIGTERM/SIGINT after its own shutdown, which would kill the process before
        Railbook drains the writer and signs its final checkpoint; here a signal only stops serving."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            else:
                self.should_exit = True

    return Server


class Service:
    """One ``railbook up`` process. ``start()`` returns once the HTTP port answers."""

    def __init__(
        self,
        config: Config,
        *,
        host: str | None = None,
        port: int | None = None,
        dashboard: bool = False,
        dashboard_port: int = 8501,
        alerts: bool = True,
        settings: ServerSettings | None = None,
    ) -> None:
        self.config = config
        self.settings = settings or server_settings(config)
        self.host = host or self.settings.host
        self.port = self.settings.port if port is None else port
        self.want_dashboard = dashboard
        self.dashboard_port = dashboard_port
        self.want_alerts = alerts
        self.metrics = Metrics()
        self.writer = Writer.for_config(
            config,
            batch_max=self.settings.batch_max,
            linger=self.settings.linger_ms / 1000.0,
            checkpoint_poll=self.settings.checkpoint_poll_seconds,
            queue_max=self.settings.queue_max,
        )
        self.worker: DeliveryWorker | None = None
        self.token: str | None = None
        """The generated admin token (``None`` when ``[server] tokens`` are configured)."""
        self.token_path: Path | None = None
        self.token_created = False
        self.dashboard: subprocess.Popen[bytes] | None = None
        self.dashboard_note: str | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.app: Any = None

    @property
    def url(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    # --- parts -------------------------------------------------------------------------------------

    def _tokens(self) -> TokenTable:
        if self.settings.tokens:
            return TokenTable(self.settings.tokens)
        path = (
            Path(self.settings.token_file)
            if self.settings.token_file
            else self.config.ledger_path.parent / "service.token"
        )
        self.token, self.token_created = ensure_local_token(path)
        self.token_path = path
        return TokenTable.with_admin(self.token)

    def _start_alerts(self) -> None:
        from alerts import DeliveryWorker, LedgerOutbox, alerts_settings, build_sink

        st = alerts_settings(self.config)
        sinks = [build_sink(s) for s in st.effective_sinks()]
        prefix = "rb-" + hashlib.sha256(self.config.ledger.origin.encode()).hexdigest()[:12]
        template = st.evidence_url or (
            f"{self.settings.public_url.rstrip('/')}/?event_id={{event_id}}"
            if self.settings.public_url
            else None
        )
        self.worker = DeliveryWorker(
            LedgerOutbox(self.writer),
            sinks,
            st,
            metrics=self.metrics,
            key_prefix=prefix,
            evidence_url=_evidence_link(template),
        ).start()

    def _on_commit(self, summary: BatchSummary, mode: str) -> None:
        self.metrics.observe_batch(summary, mode)
        if summary.violations and self.worker is not None:
            self.worker.notify()

    def _prime_metrics(self) -> None:
        def read(p: Any) -> tuple[int, Any]:
            return p.ledger.size, p.ledger.latest_checkpoint()

        size, cp = self.writer.call(read).result(60)
        self.metrics.ledger_entries.set(size)
        if cp is not None and getattr(cp, "created_at", None) is not None:
            self.metrics.checkpoint_seen(cp.created_at.timestamp())

    def _start_dashboard(self) -> None:
        try:
            from dashboard import streamlit_command, streamlit_env
        except ImportError:
            self.dashboard_note = "dashboard not installed; skipped (pip install railbook with the dashboard)"
            logger.info("dashboard skipped reason=not-installed")
            return
        cmd = streamlit_command(host=self.host, port=self.dashboard_port)
        env = streamlit_env(
            config_path=self.config.source_path,
            ledger_path=str(self.config.ledger_path),
            service_url=self.url,
        )
        log_path = self.config.ledger_path.parent / "dashboard.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            self.dashboard = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.dashboard_note = f"dashboard on http://{self.host}:{self.dashboard_port} (log {log_path})"
        logger.info(
            "dashboard started pid=%d port=%d log=%s", self.dashboard.pid, self.dashboard_port, log_path
        )

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto must be IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when
        # the socket says it is TCP. Without it, Nagle holds back the second write of every response
        # on a kept-alive connection until the client's delayed ACK: +40 ms per request (measured).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise ServiceError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror}; pick another with --port"
            ) from exc
        sock.listen(2048)
        self.port = sock.getsockname()[1]
        return sock

    # --- lifecycle ---------------------------------------------------------------------------------

    def prepare(self, *, freeze_heap: bool = False) -> Any:
        """Start everything but the HTTP loop; returns the uvicorn ``Server`` (run it yourself).

        ``freeze_heap`` (for a process that is only this service: ``railbook up``): collect once and
        ``gc.freeze()`` what start-up loaded, so a full collection while serving does not walk it."""
        import uvicorn

        tokens = self._tokens()
        self._sock = self._bind()
        self.writer.listeners.append(self._on_commit)
        self.writer.checkpoint_listeners.append(lambda cp: self.metrics.checkpoint_seen(time.time()))
        self.writer.start()
        self._prime_metrics()
        if self.want_alerts:
            self._start_alerts()
        self.app = create_app(
            self.config,
            writer=self.writer,
            tokens=tokens,
            settings=self.settings,
            metrics=self.metrics,
            alert_worker=self.worker,
        )
        cfg = uvicorn.Config(
            self.app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=10
        )
        self._server = _server_class()(cfg)
        if self.want_dashboard:
            self._start_dashboard()
        if freeze_heap:
            # Everything loaded so far (modules, the policy pack, FastAPI's routes) lives as long as
            # the process: out of the collector's reach, a full collection while serving walks only
            # what requests allocated (a full collection of the start-up heap took ~40 ms, measured).
            gc.collect()
            gc.freeze()
        logger.info("service listening url=%s gate=%s", self.url, bool(self.app.state.gate_mounted))
        return self._server

    def run(self) -> None:
        """Serve in this thread until SIGINT/SIGTERM, then shut everything down."""
        server = self.prepare(freeze_heap=True)
        try:
            server.run(sockets=[self._sock])
        finally:
            self.shutdown()

    def start(self, timeout: float = 30.0) -> Service:
        """Serve on a background thread (tests, embedding); returns when the server has started."""
        server = self.prepare()
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.shutdown()
                raise ServiceError(f"the HTTP server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(30)
        self.shutdown()

    def shutdown(self) -> None:
        """Reverse order: no more HTTP, writer drained + final checkpoint, worker, dashboard."""
        if self.writer.ready:
            try:
                self.writer.call(lambda p: p.ledger.checkpoint()).result(60)
            except Exception:
                logger.exception("final checkpoint failed")
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        self.writer.close()
        if self.dashboard is not None:
            self.dashboard.terminate()
            try:
                self.dashboard.wait(10)
            except subprocess.TimeoutExpired:
                self.dashboard.kill()
            self.dashboard = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        logger.info("service stopped")

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
