"""Real HTTP on loopback: a webhook receiver that can be taken down, and a running ``railbook up``."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.config import Config
from tests.conftest import DEMO_CONFIG

WEBHOOK_SECRET = "receiver-secret"


@dataclass
class Receiver:
    """A webhook sink that dedupes by Idempotency-Key, as receivers are told to."""

    url: str = ""
    down: bool = False
    attempts: int = 0
    accepted: list[dict[str, Any]] = field(default_factory=list)
    """Every 2xx-answered delivery, in arrival order (duplicates by key included)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def keys(self) -> list[str]:
        return [a["key"] for a in self.accepted]

    def unique(self) -> list[dict[str, Any]]:
        seen: set[str] = set()
        out = []
        for a in self.accepted:
            if a["key"] not in seen:
                seen.add(a["key"])
                out.append(a)
        return out

    def wait_for(self, pred: Callable[[Receiver], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if pred(self):
                    return
            time.sleep(0.05)
        raise AssertionError(f"receiver: condition not met in {timeout}s; accepted={self.keys()}")


def _free_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    return s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    async def hook(request: Request) -> Response:
        body = await request.body()
        with rec.lock:
            rec.attempts += 1
            if rec.down:
                return Response("down for maintenance", status_code=503)
            rec.accepted.append(
                {
                    "key": request.headers.get("idempotency-key"),
                    "signature": request.headers.get("x-railbook-signature-256"),
                    "timestamp": request.headers.get("x-railbook-timestamp"),
                    "raw": body,
                    "body": json.loads(body),
                }
            )
        return Response(status_code=204)

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    sock = _free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    rec.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    yield rec
    server.should_exit = True
    thread.join(10)
    sock.close()


def service_config(tmp_path: Path, receiver_url: str, **alerts: Any) -> dict[str, Any]:
    """A railbook.toml-shaped dict: demo environments, a webhook sink at ``receiver_url``."""
    data: dict[str, Any] = {k: v for k, v in DEMO_CONFIG.items()}
    data["ledger"] = {"path": str(tmp_path / "data" / "ledger.duckdb"), "checkpoint_every": 50}
    data["server"] = {
        "github_secret": "gh-secret",
        "max_body_bytes": 64 * 1024,
        "checkpoint_poll_seconds": 0.2,
    }
    data["alerts"] = {
        "group_window_seconds": 0,
        "poll_seconds": 0.2,
        "backoff_base_seconds": 0.1,
        "backoff_max_seconds": 0.5,
        "sinks": [{"name": "hook", "type": "webhook", "url": receiver_url, "secret": WEBHOOK_SECRET}],
        **alerts,
    }
    return data


@pytest.fixture
def make_service(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    from railbook.service.runner import Service

    started: list[Service] = []

    def _make(receiver_url: str, **alerts: Any) -> Service:
        cfg = Config.model_validate(service_config(tmp_path, receiver_url, **alerts))
        svc = Service(cfg, port=0).start()
        started.append(svc)
        return svc

    yield _make
    for svc in started:
        svc.stop()
