"""The FastAPI app: intake, the gate's router (if installed), health, metrics, alerts listing.

``create_app`` wires nothing heavy itself: the caller (``railbook.service.runner.Service``, or a
test) owns the writer and the alert worker and passes them in. Routes reach shared state through
``request.app.state``: ``config``, ``settings`` (``[server]``), ``writer`` (the single
``Writer``), ``auth`` (the ``TokenTable``), ``metrics`` and ``alert_worker`` (may be ``None``).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from railbook.service.auth import Principal, TokenTable, install_auth, require
from railbook.service.intake import router as intake_router
from railbook.service.metrics import CONTENT_TYPE_LATEST, Metrics
from railbook.service.problems import ApiError, install_error_handlers
from railbook.service.settings import ServerSettings, server_settings

if TYPE_CHECKING:
    from core.config import Config
    from railbook.service.writer import Writer

__all__ = ["create_app"]

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("railbook.service.access")

AdminPrincipal = Annotated[Principal, Depends(require("admin"))]


def _mount_gate(app: FastAPI, writer: Writer, config: Config) -> bool:
    """Mount the gate's router (``railbook.gate``) over this writer, if that package is installed."""
    try:
        from railbook.gate import Gate, install_gate, router
    except ImportError as exc:
        logger.info("gate endpoints not mounted reason=%s", exc)
        return False
    try:
        install_gate(app, Gate.over_writer(writer, config))
    except Exception:
        logger.exception("gate endpoints not mounted: the gate could not be set up")
        return False
    app.include_router(router)
    return True


def create_app(
    config: Config,
    *,
    writer: Writer,
    tokens: TokenTable,
    settings: ServerSettings | None = None,
    metrics: Metrics | None = None,
    alert_worker: Any = None,
    mount_gate: bool = True,
) -> FastAPI:
    """The HTTP app over a started ``writer``."""
    app = FastAPI(
        title="Railbook",
        summary="Intake, gate and health for the Railbook ledger",
        version="1",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.config = config
    app.state.settings = settings or server_settings(config)
    app.state.writer = writer
    app.state.metrics = metrics or Metrics()
    app.state.alert_worker = alert_worker
    app.state.started_at = time.time()
    install_auth(app, tokens)
    install_error_handlers(app)
    app.include_router(intake_router)
    app.state.gate_mounted = _mount_gate(app, writer, config) if mount_gate else False
    _add_access_log(app)
    _add_ops_routes(app)
    return app


class _AccessLog:
    """Per request: ``X-Request-Id`` (echoed, or minted), the HTTP metrics and one access-log line.

    Plain ASGI rather than ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware`` runs the
    app in a task group behind memory streams, which costs more per request than everything this
    does (measured on ``POST /v1/gate``, docs/design/service.md)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, b"x-request-id") or uuid.uuid4().hex
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-Id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.http_requests.labels(route, str(status)).inc()
            self.metrics.http_seconds.labels(route).observe(elapsed)
            if access_logger.isEnabledFor(logging.INFO):
                principal = (scope.get("state") or {}).get("principal")
                client = scope.get("client")
                access_logger.info(
                    "request",
                    extra={
                        "fields": {
                            "request_id": request_id,
                            "method": scope["method"],
                            "path": scope["path"],
                            "route": route,
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 2),
                            "client": client[0] if client else None,
                            "token": principal.name if principal else None,
                        }
                    },
                )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _add_access_log(app: FastAPI) -> None:
    app.add_middleware(_AccessLog, metrics=app.state.metrics)


def _add_ops_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["ops"])
    def healthz(request: Request) -> JSONResponse:
        """Liveness: the process serves and its writer thread is alive."""
        writer: Writer = request.app.state.writer
        ok = writer.ready
        return JSONResponse({"status": "ok" if ok else "writer-down"}, status_code=200 if ok else 503)

    @app.get("/readyz", tags=["ops"])
    def readyz(request: Request) -> JSONResponse:
        """Readiness: the writer accepts work; with ledger size, checkpoint age and alert state."""
        state = request.app.state
        writer: Writer = state.writer
        checks: dict[str, Any] = {"writer": writer.ready, "queue_depth": writer.pending}
        ok = writer.ready
        if ok:
            try:
                size = writer.call(lambda p: p.ledger.size).result(5)
                checks["ledger_entries"] = size
            except Exception as exc:
                ok = False
                checks["ledger"] = f"unavailable: {exc}"
        cp_age = state.metrics._age()
        checks["checkpoint_age_seconds"] = None if cp_age != cp_age else round(cp_age, 1)
        worker = state.alert_worker
        if worker is not None:
            checks["alert_sinks"] = worker.status()
        checks["gate"] = bool(state.gate_mounted)
        return JSONResponse(
            {"status": "ready" if ok else "not-ready", "checks": checks}, status_code=200 if ok else 503
        )

    @app.get("/metrics", tags=["ops"])
    def metrics(request: Request) -> Response:
        """Prometheus text exposition (no secrets in it; unauthenticated for scrapers)."""
        m: Metrics = request.app.state.metrics
        m.writer_queue.set(request.app.state.writer.pending)
        return Response(m.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/alerts", tags=["alerts"])
    def list_alerts(request: Request, principal: AdminPrincipal, limit: int = 100) -> dict[str, Any]:
        """Recent alerts with their delivery status (admin)."""
        if not 1 <= limit <= 10000:
            raise ApiError(422, "invalid-request", f"limit must be 1..10000, got {limit}")
        from railbook.service.alert_view import recent_alerts

        writer: Writer = request.app.state.writer
        rows = writer.call(lambda p: recent_alerts(p.ledger, limit)).result(30)
        worker = request.app.state.alert_worker
        return {"alerts": rows, "sinks": worker.status() if worker is not None else {}}
