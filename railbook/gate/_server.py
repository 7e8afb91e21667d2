"""A uvicorn server on a loopback port in a background thread (benchmarks and tests)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import uvicorn

from core.errors import ServiceError

__all__ = ["LoopbackServer"]

logger = logging.getLogger(__name__)


class LoopbackServer:
    """``with LoopbackServer(app) as srv: httpx.get(srv.url + "/v1/…")``; port 0 picks a free port."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="railbook-loopback", daemon=True)
        self.url = ""

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ServiceError("loopback server did not start (port in use, or the app failed to load)")
            time.sleep(0.01)
        sock = self._server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
