"""HTTP intake: canonical events, GitHub webhooks, CloudTrail log files, Kubernetes audit batches.

The rule for what is rejected and what is stored (docs/design/service.md, "Intake"):

- The **envelope** is checked first — token (401/403), size (413), content type (415), encoding
  and syntax (400), top-level shape (422), GitHub signature (401). A rejected request stores
  nothing at all: checks run before anything is submitted to the writer.
- **Records** inside an accepted envelope are normalised one by one; a record an adapter rejects
  is dead-lettered with its reason (and listed in the answer), the others are appended. All of
  them — events and dead letters — go to the ledger in one transaction, so a request is stored
  completely or (on a ledger failure: 500/503) not at all.

A successful answer is ``200`` with what happened: counts, each appended event's sequence number
and decision, and each dead letter's reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from core.avro import decode_event
from core.deadletter import DeadLetter
from core.errors import DecodeError, LedgerError, RailbookError
from core.event import CanonicalEvent, format_time
from railbook.service._sources import Item, normalise_many, normalise_one, stamp
from railbook.service.auth import Principal, require
from railbook.service.problems import ApiError
from railbook.service.writer import WriterClosedError, WriterOverloadedError

if TYPE_CHECKING:
    from core.config import Config
    from railbook.pipeline import BatchSummary
    from railbook.service.settings import ServerSettings

__all__ = ["read_body", "router", "submit_items"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["intake"])

IngestPrincipal = Annotated[Principal, Depends(require("ingest"))]

JSON_TYPES = ("application/json",)
NDJSON_TYPES = (
    "application/x-ndjson",
    "application/jsonl",
    "application/json-lines",
    "application/jsonlines",
)
AVRO_TYPES = ("application/avro", "application/vnd.apache.avro+binary")
GZIP_TYPES = ("application/gzip", "application/x-gzip")
FORM_TYPE = "application/x-www-form-urlencoded"
#: how many dead letters an answer lists one by one
SHOW_DEAD = 50


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _require_type(request: Request, allowed: tuple[str, ...]) -> str:
    ctype = _content_type(request)
    if ctype not in allowed:
        raise ApiError(
            415,
            "unsupported-media-type",
            f"{request.url.path}: Content-Type {ctype or '(none)'!r} is not accepted; "
            f"send one of {', '.join(allowed)}",
        )
    return ctype


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) as soon as it passes ``limit`` bytes — never buffered whole."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, "bad-request", f"Content-Length {declared!r} is not a number") from None
        if size > limit:
            raise _too_large(request, size, limit)
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise _too_large(request, len(buf), limit)
    if not buf:
        raise ApiError(400, "empty-body", f"{request.url.path}: the request body is empty; expected records")
    return bytes(buf)


def _too_large(request: Request, size: int, limit: int) -> ApiError:
    return ApiError(
        413,
        "too-large",
        f"{request.url.path}: body of {size} bytes exceeds the limit of {limit} bytes; "
        "split it into smaller requests (or raise [server] max_body_bytes)",
    )


def _inflate(data: bytes, limit: int, path: str) -> bytes:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as exc:
        raise ApiError(400, "bad-gzip", f"{path}: body is not valid gzip: {exc}") from None
    if len(out) > limit or d.unconsumed_tail:
        raise ApiError(
            413, "too-large", f"{path}: gzip body inflates past {limit} bytes; send smaller log files"
        )
    if not d.eof:
        raise ApiError(400, "bad-gzip", f"{path}: gzip body is truncated")
    return out


def _json(data: bytes, path: str) -> Any:
    try:
        return json.loads(data)
    except UnicodeDecodeError:
        raise ApiError(400, "bad-encoding", f"{path}: body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ApiError(
            400, "bad-json", f"{path}: body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def _state(request: Request) -> tuple[Config, ServerSettings]:
    return request.app.state.config, request.app.state.settings


async def submit_items(request: Request, items: list[Item], *, mode: str = "detect") -> BatchSummary:
    """Submit to the single writer and wait for the commit; writer problems become 503/500."""
    writer = request.app.state.writer
    try:
        fut = writer.submit(items, mode=mode)
    except WriterOverloadedError as exc:
        raise ApiError(503, "overloaded", str(exc), headers={"Retry-After": "1"}) from None
    except WriterClosedError as exc:
        raise ApiError(503, "unavailable", str(exc), headers={"Retry-After": "5"}) from None
    try:
        return await asyncio.wrap_future(fut)
    except WriterClosedError as exc:
        raise ApiError(503, "unavailable", str(exc), headers={"Retry-After": "5"}) from None
    except LedgerError as exc:
        logger.error("ledger write failed path=%s error=%s", request.url.path, exc)
        raise ApiError(500, "ledger-error", f"nothing was stored: {exc}") from None


def _answer(request: Request, items: list[Item], summary: BatchSummary) -> dict[str, Any]:
    metrics = getattr(request.app.state, "metrics", None)
    dead = [it for it in items if isinstance(it, DeadLetter)]
    if metrics is not None:
        for it in items:
            if isinstance(it, CanonicalEvent):
                metrics.events_received.labels(it.source).inc()
            else:
                metrics.dead_letters.labels(it.reason).inc()
    out: dict[str, Any] = {
        "read": summary.read,
        "appended": summary.appended,
        "duplicates": summary.duplicates,
        "dead_lettered": summary.dead_lettered,
        "violations": summary.violations,
        "events": [
            {
                "event_id": ev.event_id,
                "seq": seq,
                "outcome": d.outcome,
                "rails": list(d.rails),
                "severity": d.severity,
                "policies": list(d.policy_ids),
            }
            for seq, ev, d in summary.entries
        ],
        "dead_letters": [
            {"where": d.where, "reason": d.reason, "detail": d.detail} for d in dead[:SHOW_DEAD]
        ],
    }
    logger.info(
        "intake path=%s read=%d appended=%d duplicates=%d dead_lettered=%d violations=%d",
        request.url.path,
        summary.read,
        summary.appended,
        summary.duplicates,
        summary.dead_lettered,
        summary.violations,
    )
    return out


async def _commit(request: Request, items: list[Item], principal: Principal | None) -> dict[str, Any]:
    if principal is not None:
        items = stamp(items, **{"intake.token": principal.name})
    summary = await submit_items(request, items)
    return _answer(request, items, summary)


# --- /v1/events --------------------------------------------------------------------------------------


def _events_from_body(data: bytes, ctype: str, config: Config, path: str) -> list[Item]:
    where = f"http:{path}"
    if ctype in AVRO_TYPES:
        try:
            event = decode_event(data, where=where)
        except DecodeError as exc:
            # the body *is* the record: nothing in it can be accepted, so the producer hears why
            raise ApiError(400, f"bad-avro:{exc.reason}", str(exc)) from None
        return normalise_one(event.to_dict(), source="event", where=where, config=config)
    if ctype in NDJSON_TYPES:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "bad-encoding", f"{path}: body is not UTF-8 text") from None
        items: list[Item] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            line_where = f"{where}:{lineno}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                items.append(
                    DeadLetter.of(
                        source="event",
                        reason="not-json",
                        detail=f"{line_where}: not JSON: {exc.msg} at column {exc.colno}",
                        raw=line.encode(),
                        where=line_where,
                    )
                )
                continue
            items.extend(normalise_one(record, source="event", where=line_where, config=config))
        if not items:
            raise ApiError(400, "empty-body", f"{path}: no JSON lines in the body")
        return items
    doc = _json(data, path)
    if isinstance(doc, dict):
        return normalise_one(doc, source="event", where=where, config=config)
    if isinstance(doc, list) and doc:
        return normalise_many(doc, source="event", where=where, config=config)
    raise ApiError(
        422,
        "bad-shape",
        f"{path}: expected a canonical event object or a non-empty array of them, got "
        f"{'an empty array' if doc == [] else type(doc).__name__}",
    )


@router.post("/v1/events")
async def post_events(request: Request, principal: IngestPrincipal) -> dict[str, Any]:
    """Canonical events: one JSON object, a JSON array, JSON lines, or one Avro single-object message."""
    config, settings = _state(request)
    ctype = _require_type(request, JSON_TYPES + NDJSON_TYPES + AVRO_TYPES)
    data = await read_body(request, settings.max_body_bytes)
    items = await run_in_threadpool(_events_from_body, data, ctype, config, request.url.path)
    return await _commit(request, items, principal)


# --- /v1/sources/cloudtrail ----------------------------------------------------------------------------


def _cloudtrail_items(data: bytes, config: Config, path: str, inflated_limit: int, gz: bool) -> list[Item]:
    if gz or data[:2] == b"\x1f\x8b":
        data = _inflate(data, inflated_limit, path)
    doc = _json(data, path)
    records = doc.get("Records") if isinstance(doc, dict) else None
    if not isinstance(records, list):
        raise ApiError(
            422,
            "bad-shape",
            f'{path}: expected a CloudTrail log file ({{"Records": [...]}}), got '
            f"{'an object without a Records array' if isinstance(doc, dict) else type(doc).__name__}",
        )
    if not records:
        raise ApiError(422, "bad-shape", f"{path}: the log file's Records array is empty")
    return normalise_many(records, source="cloudtrail", where=f"http:{path}", config=config)


@router.post("/v1/sources/cloudtrail")
async def post_cloudtrail(request: Request, principal: IngestPrincipal) -> dict[str, Any]:
    """A CloudTrail log file (``{"Records": [...]}``), plain or gzip (as S3 stores them)."""
    config, settings = _state(request)
    ctype = _require_type(request, JSON_TYPES + GZIP_TYPES + ("application/octet-stream",))
    data = await read_body(request, settings.max_body_bytes)
    gz = ctype in GZIP_TYPES or request.headers.get("content-encoding", "").lower() == "gzip"
    items = await run_in_threadpool(
        _cloudtrail_items, data, config, request.url.path, settings.max_inflated_bytes, gz
    )
    return await _commit(request, items, principal)


# --- /v1/sources/k8s-audit -----------------------------------------------------------------------------


def _with_cluster(item: Any, cluster: str | None) -> Any:
    # the API server's webhook backend does not say which cluster it is; the URL does (?cluster=)
    if cluster and isinstance(item, dict):
        ann = item.get("annotations")
        ann = dict(ann) if isinstance(ann, dict) else {}
        ann.setdefault("railbook.io/cluster", cluster)
        return {**item, "annotations": ann}
    return item


def _k8s_items(data: bytes, config: Config, path: str, cluster: str | None = None) -> list[Item]:
    doc = _json(data, path)
    where = f"http:{path}"
    if isinstance(doc, dict) and isinstance(doc.get("items"), list):
        doc = {**doc, "items": [_with_cluster(i, cluster) for i in doc["items"]]}
    elif isinstance(doc, dict):
        doc = _with_cluster(doc, cluster)
    if isinstance(doc, dict) and doc.get("kind") == "EventList" and isinstance(doc.get("items"), list):
        if not doc["items"]:
            raise ApiError(422, "bad-shape", f"{path}: the EventList has no items")
        return normalise_many(doc["items"], source="k8s-audit", where=where, config=config)
    if isinstance(doc, dict) and doc.get("kind") == "Event":
        return normalise_one(doc, source="k8s-audit", where=where, config=config)
    got = doc.get("kind") if isinstance(doc, dict) else type(doc).__name__
    raise ApiError(
        422,
        "bad-shape",
        f"{path}: expected an audit.k8s.io/v1 EventList (the audit webhook backend's batch) "
        f"or a single Event, got kind {got!r}",
    )


@router.post("/v1/sources/k8s-audit")
async def post_k8s_audit(request: Request, principal: IngestPrincipal) -> dict[str, Any]:
    """A Kubernetes audit webhook backend batch (``audit.k8s.io/v1`` ``EventList``); ``?cluster=NAME``
    names the cluster for events that do not carry a ``railbook.io/cluster`` annotation."""
    config, settings = _state(request)
    _require_type(request, JSON_TYPES)
    data = await read_body(request, settings.max_body_bytes)
    cluster = request.query_params.get("cluster")
    items = await run_in_threadpool(_k8s_items, data, config, request.url.path, cluster)
    return await _commit(request, items, principal)


# --- /v1/webhooks/github -------------------------------------------------------------------------------


def _github_items(payload: Any, event: str, delivery: str, config: Config, path: str) -> list[Item]:
    # the wrapper ingest's GitHub adapter reads (docs/design/ingest.md): the delivery id becomes the
    # event id, so GitHub's redelivery of the same X-GitHub-Delivery is a duplicate, not a new entry
    record = {
        "headers": {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery},
        "payload": payload,
        "received_at": format_time(datetime.now(UTC)),
    }
    return normalise_one(record, source="github", where=f"http:{path}#{delivery}", config=config)


@router.post("/v1/webhooks/github")
async def post_github(request: Request) -> dict[str, Any]:
    """A GitHub webhook delivery; authenticated by its ``X-Hub-Signature-256`` (GitHub sends no token)."""
    import ingest

    config, settings = _state(request)
    path = request.url.path
    if not settings.github_secret:
        raise ApiError(
            503,
            "github-not-configured",
            "no GitHub webhook secret is configured; set [server] github_secret or RAILBOOK_GITHUB_SECRET "
            "(unsigned deliveries are never accepted)",
        )
    ctype = _require_type(request, JSON_TYPES + (FORM_TYPE,))
    data = await read_body(request, settings.max_body_bytes)
    header = request.headers.get("x-hub-signature-256")
    if not header:
        raise ApiError(
            401,
            "bad-signature",
            f"{path}: X-Hub-Signature-256 header missing; configure the "
            "webhook's secret in GitHub to the same value as [server] github_secret",
        )
    try:
        ok = ingest.verify_github_signature(data, header, settings.github_secret)
    except RailbookError as exc:
        raise ApiError(401, "bad-signature", f"{path}: {exc}") from None
    if not ok:
        raise ApiError(
            401,
            "bad-signature",
            f"{path}: X-Hub-Signature-256 does not match the body (wrong secret, or the body was altered)",
        )
    event = request.headers.get("x-github-event", "")
    delivery = request.headers.get("x-github-delivery", "")
    if not event or not delivery:
        raise ApiError(
            400, "missing-header", f"{path}: X-GitHub-Event and X-GitHub-Delivery headers are required"
        )
    if ctype == FORM_TYPE:
        try:
            fields = parse_qs(data.decode("utf-8"), strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "bad-form", f"{path}: body is not a urlencoded form") from None
        if "payload" not in fields:
            raise ApiError(422, "bad-shape", f"{path}: form body has no 'payload' field")
        payload = _json(fields["payload"][0].encode(), path)
    else:
        payload = _json(data, path)
    if not isinstance(payload, dict):
        raise ApiError(422, "bad-shape", f"{path}: expected a JSON object, got {type(payload).__name__}")
    if event == "ping":
        logger.info("github ping delivery=%s", delivery)
        return {"ok": True, "event": "ping", "delivery": delivery}
    items = await run_in_threadpool(_github_items, payload, event, delivery, config, path)
    return await _commit(request, items, None)
