"""Alert sinks: generic webhook, Slack incoming webhook, a Kafka topic, the log.

A sink's ``send(alert)`` returns when the receiver has accepted the alert and raises
``core.errors.AlertError`` (with the receiver's answer) when it has not; the delivery worker
retries. Every sink carries the alert's idempotency key (webhook: ``Idempotency-Key`` header;
Kafka: the message key; Slack: in the text's context line) — delivery is at-least-once, and
receivers dedupe by that key.

Webhook signature: ``X-Railbook-Signature-256: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``
with ``X-Railbook-Timestamp: <unix seconds>`` — the timestamp is signed so a captured request
cannot be replayed later with a fresh timestamp (``verify_signature`` checks both).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any, Protocol

import httpx

from alerts.model import Alert
from alerts.settings import SinkSettings
from alerts.slack import slack_message
from core.canonical import canonical_json
from core.errors import AlertError

__all__ = [
    "KafkaSink",
    "LogSink",
    "Sink",
    "SlackSink",
    "WebhookSink",
    "build_sink",
    "sign_body",
    "verify_signature",
]

logger = logging.getLogger(__name__)

USER_AGENT = "railbook-alerts/1"
SIGNATURE_HEADER = "X-Railbook-Signature-256"
TIMESTAMP_HEADER = "X-Railbook-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


class Sink(Protocol):
    name: str
    kind: str

    def send(self, alert: Alert) -> None:
        """Deliver, or raise ``AlertError``."""
        ...

    def close(self) -> None: ...


def sign_body(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` over ``timestamp + "." + body`` with HMAC-SHA256."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str, timestamp: str, body: bytes, header: str, *, tolerance: float = 300.0
) -> bool:
    """What a receiver runs: constant-time check, and the timestamp within ``tolerance`` seconds."""
    try:
        ts = float(timestamp)
    except ValueError:
        return False
    if abs(time.time() - ts) > tolerance:
        return False
    return hmac.compare_digest(sign_body(secret, timestamp, body), header)


def _post(client: httpx.Client, name: str, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    try:
        resp = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise AlertError(
            f"alert sink {name!r}: POST {_safe(url)} failed: {type(exc).__name__}: {exc}"
        ) from exc
    if not 200 <= resp.status_code < 300:
        raise AlertError(
            f"alert sink {name!r}: POST {_safe(url)} answered {resp.status_code}: {resp.text[:200]!r}"
        )
    return resp


def _safe(url: str) -> str:
    """A URL fit for logs: Slack webhook paths are secrets, so only scheme and host are shown."""
    u = httpx.URL(url)
    return f"{u.scheme}://{u.host}{':' + str(u.port) if u.port else ''}/…"


class WebhookSink:
    kind = "webhook"

    def __init__(self, name: str, url: str, *, secret: str | None, timeout: float = 10.0) -> None:
        self.name = name
        self.url = url
        self.secret = secret
        self._client = httpx.Client(timeout=timeout, headers={"User-Agent": USER_AGENT})

    def request(self, alert: Alert) -> tuple[bytes, dict[str, str]]:
        body = canonical_json(alert.to_dict())
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: alert.idempotency_key,
            TIMESTAMP_HEADER: ts,
        }
        if self.secret:
            headers[SIGNATURE_HEADER] = sign_body(self.secret, ts, body)
        return body, headers

    def send(self, alert: Alert) -> None:
        body, headers = self.request(alert)
        _post(self._client, self.name, self.url, body, headers)

    def close(self) -> None:
        self._client.close()


class SlackSink:
    kind = "slack"

    def __init__(self, name: str, url: str, *, timeout: float = 10.0) -> None:
        self.name = name
        self.url = url
        self._client = httpx.Client(timeout=timeout, headers={"User-Agent": USER_AGENT})

    def send(self, alert: Alert) -> None:
        msg = slack_message(alert)
        _post(
            self._client, self.name, self.url, json.dumps(msg).encode(), {"Content-Type": "application/json"}
        )

    def close(self) -> None:
        self._client.close()


class KafkaSink:
    kind = "kafka"

    def __init__(
        self, name: str, bootstrap: str, topic: str, *, timeout: float = 10.0, producer: Any = None
    ) -> None:
        self.name = name
        self.bootstrap = bootstrap
        self.topic = topic
        self.timeout = timeout
        self._producer = producer

    def _ensure(self) -> Any:
        if self._producer is None:
            from kafka import KafkaProducer

            try:
                self._producer = KafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    client_id=f"railbook-alerts-{self.name}",
                    acks="all",
                    enable_idempotence=True,
                    # kafka-python blocks 30 s by default when no broker answers (DESIGN.md)
                    bootstrap_timeout_ms=int(self.timeout * 1000),
                    max_block_ms=int(self.timeout * 1000),
                    request_timeout_ms=int(self.timeout * 1000),
                    delivery_timeout_ms=int(self.timeout * 1000) + 100,
                )
            except Exception as exc:  # kafka-python's NoBrokersAvailable, config errors
                raise AlertError(
                    f"alert sink {self.name!r}: cannot reach Kafka at {self.bootstrap!r}: "
                    f"{type(exc).__name__}: {exc}; check the sink's bootstrap and that the broker runs"
                ) from exc
        return self._producer

    def send(self, alert: Alert) -> None:
        producer = self._ensure()
        try:
            fut = producer.send(
                self.topic,
                value=canonical_json(alert.to_dict()),
                key=alert.idempotency_key.encode(),
                headers=[("railbook-idempotency-key", alert.idempotency_key.encode())],
            )
            fut.get(timeout=self.timeout)
        except Exception as exc:  # kafka-python's errors, timeouts
            raise AlertError(
                f"alert sink {self.name!r}: publish to {self.topic!r} at {self.bootstrap} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def close(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=self.timeout)
            except Exception:
                logger.exception("closing kafka alert producer failed sink=%s", self.name)


class LogSink:
    kind = "log"

    def __init__(self, name: str = "log") -> None:
        self.name = name
        self._logger = logging.getLogger("railbook.alerts")

    def send(self, alert: Alert) -> None:
        f = alert.first
        self._logger.warning(
            "alert key=%s title=%r severity=%s rails=%s actor=%s on_behalf_of=%s action=%s resource=%s "
            "count=%d event_id=%s",
            alert.idempotency_key,
            alert.title,
            f.severity,
            ",".join(map(str, f.rails)),
            f.actor,
            f.on_behalf_of,
            f.action,
            f.resource,
            alert.count,
            f.event_id,
            extra={"fields": {"alert": alert.to_dict()}},
        )

    def close(self) -> None:
        return None


def build_sink(spec: SinkSettings) -> Sink:
    """The sink a ``[[alerts.sinks]]`` entry describes (secrets resolved from the environment)."""
    if spec.type == "webhook":
        return WebhookSink(
            spec.name, spec.resolved_url(), secret=spec.resolved_secret(), timeout=spec.timeout_seconds
        )
    if spec.type == "slack":
        return SlackSink(spec.name, spec.resolved_url(), timeout=spec.timeout_seconds)
    if spec.type == "kafka":
        assert spec.bootstrap is not None
        return KafkaSink(spec.name, spec.bootstrap, spec.topic, timeout=spec.timeout_seconds)
    return LogSink(spec.name)
