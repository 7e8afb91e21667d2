from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts import (
    Alert,
    AlertsSettings,
    OutboxAlert,
    SinkSettings,
    SlackSink,
    WebhookSink,
    build_sink,
    sign_body,
    slack_message,
    validate_message,
    verify_signature,
)
from core.errors import AlertError, ConfigError

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _alert(**kw: Any) -> Alert:
    first = OutboxAlert(
        alert_id=7,
        seq=41,
        created_at=NOW,
        event_id="cloudtrail:abc",
        rails=(1, 2),
        severity="critical",
        policies=("rail1-agent-in-prod",),
        titles=("Agent principal acted on production",),
        actor="arn:aws:sts::111111111111:assumed-role/agent-claude/s1",
        actor_kind="agent",
        on_behalf_of="bob@example.com",
        action="iam:CreateAccessKey",
        resource="arn:aws:iam::111111111111:user/x",
        environment="prod",
        source="cloudtrail",
        occurred_at=NOW,
    )
    return Alert(idempotency_key="rb-1:7", first=first, alert_ids=(7,), **kw)


def test_webhook_sends_signed_json_with_idempotency_key() -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(202)

    sink = WebhookSink("hook", "http://receiver.test/alerts", secret="s3cret")
    sink._client = httpx.Client(transport=httpx.MockTransport(handler))
    sink.send(_alert(evidence_url="http://dash/?event_id=cloudtrail:abc"))
    req = seen[0]
    assert req.headers["idempotency-key"] == "rb-1:7"
    assert verify_signature(
        "s3cret", req.headers["x-railbook-timestamp"], req.content, req.headers["x-railbook-signature-256"]
    )
    body = json.loads(req.content)
    assert body["schema"] == "railbook.alert/v1"
    assert body["actor"]["on_behalf_of"] == "bob@example.com"
    assert body["evidence_url"].endswith("cloudtrail:abc")


def test_webhook_non_2xx_is_an_alert_error_naming_the_status() -> None:
    sink = WebhookSink("hook", "http://receiver.test/alerts", secret=None)
    sink._client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(503, text="busy")))
    with pytest.raises(AlertError, match="503"):
        sink.send(_alert())


def test_signature_rejects_tampering_and_old_timestamps() -> None:
    ts = str(int(time.time()))
    sig = sign_body("k", ts, b"{}")
    assert verify_signature("k", ts, b"{}", sig)
    assert not verify_signature("k", ts, b"{ }", sig)
    assert not verify_signature("other", ts, b"{}", sig)
    old = str(int(time.time()) - 3600)
    assert not verify_signature("k", old, b"{}", sign_body("k", old, b"{}"))


def test_slack_message_is_valid_block_kit_and_readable() -> None:
    msg = slack_message(_alert(count=3, last_event_id="cloudtrail:xyz", evidence_url="https://dash/x"))
    assert validate_message(msg) == []
    flat = json.dumps(msg, ensure_ascii=False)
    for needle in (
        "Rail",
        "Severity",
        "On behalf of",
        "bob@example.com",
        "iam:CreateAccessKey",
        "View evidence",
        "×3",
        "railbook why cloudtrail:abc",
    ):
        assert needle in flat, needle
    assert [b["type"] for b in msg["blocks"]] == ["header", "section", "context", "actions"]


@given(st.text(min_size=1, max_size=5000), st.text(min_size=1, max_size=5000))
def test_slack_message_stays_valid_for_any_text(actor: str, resource: str) -> None:
    a = _alert()
    first = OutboxAlert(**{**a.first.__dict__, "actor": actor, "resource": resource, "titles": (resource,)})
    msg = slack_message(Alert(idempotency_key="k", first=first, evidence_url="https://x/" + "a" * 4000))
    assert validate_message(msg) == []
    assert "<" not in msg["blocks"][1]["text"]["text"].replace("&lt;", "")


def test_validator_catches_block_kit_violations() -> None:
    good = slack_message(_alert())
    bad: dict[str, Any] = json.loads(json.dumps(good))
    bad["blocks"][0]["text"]["type"] = "mrkdwn"
    bad["blocks"][1]["fields"] = bad["blocks"][1]["fields"] * 2
    bad["blocks"].append({"type": "video"})
    errs = validate_message(bad)
    assert any("blocks[0].text.type" in e for e in errs)
    assert any("fields" in e for e in errs)
    assert any("unsupported block type" in e for e in errs)
    assert validate_message({"blocks": []})  # empty + no text


def test_slack_sink_posts_the_message() -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, text="ok")

    sink = SlackSink("slack", "https://hooks.slack.test/services/T/B/X")
    sink._client = httpx.Client(transport=httpx.MockTransport(handler))
    sink.send(_alert())
    assert validate_message(json.loads(seen[0].content)) == []


def test_settings_validation_and_env_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="needs url"):
        SinkSettings(name="s", type="slack")
    with pytest.raises(ValueError, match="unique"):
        AlertsSettings(sinks=[SinkSettings(name="a", type="log"), SinkSettings(name="a", type="log")])
    assert [s.type for s in AlertsSettings().effective_sinks()] == ["log"]
    spec = SinkSettings(name="w", type="webhook", url_env="HOOK_URL", secret_env="HOOK_SECRET")
    with pytest.raises(ConfigError, match="HOOK_URL"):
        build_sink(spec)
    monkeypatch.setenv("HOOK_URL", "http://x.test/")
    monkeypatch.setenv("HOOK_SECRET", "k")
    sink = build_sink(spec)
    assert isinstance(sink, WebhookSink) and sink.secret == "k"


def test_kafka_sink_keys_by_idempotency_key_and_wraps_failures() -> None:
    from alerts import KafkaSink

    class Fut:
        def __init__(self, exc: Exception | None) -> None:
            self.exc = exc

        def get(self, timeout: float) -> None:
            if self.exc:
                raise self.exc

    class Producer:
        def __init__(self) -> None:
            self.sent: list[tuple[str, bytes, bytes]] = []
            self.fail: Exception | None = None

        def send(self, topic: str, *, value: bytes, key: bytes, headers: Any) -> Fut:
            self.sent.append((topic, key, value))
            return Fut(self.fail)

        def close(self, timeout: float) -> None:
            pass

    prod = Producer()
    sink = KafkaSink("bus", "127.0.0.1:1", "railbook.alerts", producer=prod)
    sink.send(_alert())
    assert prod.sent[0][:2] == ("railbook.alerts", b"rb-1:7")
    assert json.loads(prod.sent[0][2])["idempotency_key"] == "rb-1:7"
    prod.fail = TimeoutError("no ack")
    with pytest.raises(AlertError, match="railbook.alerts"):
        sink.send(_alert())


def test_kafka_sink_unreachable_broker_is_an_alert_error() -> None:
    from alerts import KafkaSink

    sink = KafkaSink("bus", "127.0.0.1:1", "railbook.alerts", timeout=0.5)
    with pytest.raises(AlertError, match="bus"):
        sink.send(_alert())
