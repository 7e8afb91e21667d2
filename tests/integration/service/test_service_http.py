"""``railbook up`` over real HTTP on loopback, real DuckDB, the real policy pack, a real webhook sink."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest

from alerts import verify_signature
from core.avro import encode_event
from core.event import event_from_dict
from tests.integration.service.conftest import WEBHOOK_SECRET, Receiver
from tests.integration.service.payloads import agent_in_prod, cloudtrail_log, github_push, k8s_event_list

pytestmark = pytest.mark.integration


def _auth(svc: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {svc.token}"}


def _ledger_state(svc: Any) -> tuple[int, dict[str, int]]:
    state: tuple[int, dict[str, int]] = svc.writer.call(
        lambda p: (p.ledger.size, p.ledger.dead_letter_counts())
    ).result(10)
    return state


def test_webhook_down_then_back_gets_every_alert_once_per_key_in_order(
    receiver: Receiver, make_service: Any
) -> None:
    receiver.down = True
    svc = make_service(receiver.url)
    ids = [f"order-{i}" for i in range(6)]
    for i, eid in enumerate(ids):
        r = httpx.post(
            f"{svc.url}/v1/events", json=agent_in_prod(eid, actor=f"agent:a{i}"), headers=_auth(svc)
        )
        assert r.status_code == 200, r.text
        assert r.json()["violations"] == 1
    receiver.wait_for(lambda rec: rec.attempts >= 3, timeout=20)
    assert receiver.accepted == []
    pending = httpx.get(f"{svc.url}/v1/alerts", headers=_auth(svc)).json()
    assert {a["status"] for a in pending["alerts"]} <= {"pending", "failed"}
    assert pending["sinks"]["hook"]["attempts"] >= 1
    receiver.down = False
    receiver.wait_for(lambda rec: len(rec.unique()) == len(ids), timeout=30)
    got = receiver.unique()
    assert [a["body"]["event_id"] for a in got] == ids  # creation order
    assert len(receiver.keys()) == len(set(receiver.keys()))  # exactly once per key
    for a in got:
        assert verify_signature(WEBHOOK_SECRET, a["timestamp"], a["raw"], a["signature"])
        assert a["body"]["actor"]["on_behalf_of"] == "bob@example.com"
    rows = httpx.get(f"{svc.url}/v1/alerts", headers=_auth(svc)).json()["alerts"]
    assert {r["status"] for r in rows} == {"sent"}
    metrics = httpx.get(f"{svc.url}/metrics").text
    assert 'railbook_alert_deliveries_total{outcome="failed",sink="hook"}' in metrics
    assert 'railbook_alert_deliveries_total{outcome="sent",sink="hook"} 6.0' in metrics


def _github_headers(body: bytes, delivery: str, secret: str = "gh-secret") -> dict[str, str]:
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": sig,
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
    }


def _post(svc: Any, kind: str) -> httpx.Response:
    if kind == "events-json":
        return httpx.post(f"{svc.url}/v1/events", json=agent_in_prod("json-1"), headers=_auth(svc))
    if kind == "events-ndjson":
        lines = "\n".join(json.dumps(agent_in_prod(f"nd-{i}", actor=f"agent:n{i}")) for i in range(2)) + "\n"
        return httpx.post(
            f"{svc.url}/v1/events",
            content=lines.encode(),
            headers={**_auth(svc), "Content-Type": "application/x-ndjson"},
        )
    if kind == "events-avro":
        body = encode_event(event_from_dict(agent_in_prod("avro-1")))
        return httpx.post(
            f"{svc.url}/v1/events", content=body, headers={**_auth(svc), "Content-Type": "application/avro"}
        )
    if kind == "github":
        body = json.dumps(github_push()).encode()
        return httpx.post(
            f"{svc.url}/v1/webhooks/github", content=body, headers=_github_headers(body, "d-0001")
        )
    if kind == "cloudtrail-gz":
        body = gzip.compress(json.dumps(cloudtrail_log()).encode())
        return httpx.post(
            f"{svc.url}/v1/sources/cloudtrail",
            content=body,
            headers={**_auth(svc), "Content-Type": "application/gzip"},
        )
    if kind == "k8s-audit":
        return httpx.post(
            f"{svc.url}/v1/sources/k8s-audit?cluster=prod-eks", json=k8s_event_list(), headers=_auth(svc)
        )
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["events-json", "events-ndjson", "events-avro", "github", "cloudtrail-gz", "k8s-audit"]
)
def test_a_violation_through_each_endpoint_produces_an_alert(
    kind: str, receiver: Receiver, make_service: Any
) -> None:
    svc = make_service(receiver.url)
    r = _post(svc, kind)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["dead_lettered"] == 0, doc
    assert doc["violations"] >= 1, doc
    violating = [e["event_id"] for e in doc["events"] if e["outcome"] == "deny"]
    receiver.wait_for(lambda rec: {a["body"]["event_id"] for a in rec.accepted} >= set(violating))
    first = next(a for a in receiver.accepted if a["body"]["event_id"] == violating[0])
    assert first["body"]["rails"] and first["body"]["severity"]


def test_github_redelivery_is_a_duplicate(receiver: Receiver, make_service: Any) -> None:
    svc = make_service(receiver.url)
    body = json.dumps(github_push()).encode()
    a = httpx.post(f"{svc.url}/v1/webhooks/github", content=body, headers=_github_headers(body, "d-77"))
    b = httpx.post(f"{svc.url}/v1/webhooks/github", content=body, headers=_github_headers(body, "d-77"))
    assert a.json()["appended"] >= 1
    assert b.json()["appended"] == 0 and b.json()["duplicates"] == a.json()["appended"]


def test_bad_requests_get_clear_4xx_and_store_nothing(receiver: Receiver, make_service: Any) -> None:
    svc = make_service(receiver.url)
    before = _ledger_state(svc)
    url = svc.url
    big = json.dumps([agent_in_prod(f"big-{i}") for i in range(400)]).encode()
    assert len(big) > 64 * 1024
    gh = json.dumps(github_push()).encode()
    cases: list[tuple[int, str, httpx.Response]] = [
        (401, "unauthorized", httpx.post(f"{url}/v1/events", json=agent_in_prod("x1"))),
        (
            401,
            "unauthorized",
            httpx.post(
                f"{url}/v1/events", json=agent_in_prod("x1"), headers={"Authorization": "Bearer wrong"}
            ),
        ),
        (
            413,
            "too-large",
            httpx.post(
                f"{url}/v1/events", content=big, headers={**_auth(svc), "Content-Type": "application/json"}
            ),
        ),
        (
            415,
            "unsupported-media-type",
            httpx.post(
                f"{url}/v1/events", content=b"<xml/>", headers={**_auth(svc), "Content-Type": "text/xml"}
            ),
        ),
        (
            400,
            "bad-json",
            httpx.post(
                f"{url}/v1/events",
                content=b'[{"event_id": ',
                headers={**_auth(svc), "Content-Type": "application/json"},
            ),
        ),
        (422, "bad-shape", httpx.post(f"{url}/v1/events", json=42, headers=_auth(svc))),
        (
            400,
            "bad-avro:bad-header",
            httpx.post(
                f"{url}/v1/events",
                content=b"\x00\x01nope-nope-nope",
                headers={**_auth(svc), "Content-Type": "application/avro"},
            ),
        ),
        (
            401,
            "bad-signature",
            httpx.post(
                f"{url}/v1/webhooks/github", content=gh, headers=_github_headers(gh, "d-bad", secret="wrong")
            ),
        ),
        (
            401,
            "bad-signature",
            httpx.post(
                f"{url}/v1/webhooks/github",
                content=gh,
                headers={
                    "Content-Type": "application/json",
                    "X-GitHub-Event": "push",
                    "X-GitHub-Delivery": "d-x",
                },
            ),
        ),
        (
            400,
            "bad-gzip",
            httpx.post(
                f"{url}/v1/sources/cloudtrail",
                content=b"\x1f\x8b\x08garbage",
                headers={**_auth(svc), "Content-Type": "application/gzip"},
            ),
        ),
        (
            413,
            "too-large",
            httpx.post(
                f"{url}/v1/sources/cloudtrail",
                content=gzip.compress(b'{"Records": [' + b" " * (70 * 1024 * 1024) + b"]}"),
                headers={**_auth(svc), "Content-Type": "application/gzip"},
            ),
        ),
        (
            422,
            "bad-shape",
            httpx.post(f"{url}/v1/sources/k8s-audit", json={"kind": "Pod"}, headers=_auth(svc)),
        ),
    ]
    for status, code, resp in cases:
        assert resp.status_code == status, (status, code, resp.text)
        body = resp.json()
        assert body["error"] == code, body
        assert len(body["message"]) > 20, body
    assert _ledger_state(svc) == before  # nothing partial, no dead letters either
    metrics = httpx.get(f"{url}/metrics").text
    assert 'railbook_http_requests_total{route="/v1/events",status="401"} 2.0' in metrics


def test_bad_records_inside_an_accepted_body_are_dead_lettered(receiver: Receiver, make_service: Any) -> None:
    svc = make_service(receiver.url)
    good = agent_in_prod("mixed-good")
    bad = {**agent_in_prod("mixed-bad"), "action": "no-namespace"}
    r = httpx.post(f"{svc.url}/v1/events", json=[good, bad], headers=_auth(svc))
    assert r.status_code == 200
    doc = r.json()
    assert (doc["appended"], doc["dead_lettered"]) == (1, 1)
    assert doc["dead_letters"][0]["where"].endswith("#1")
    size, dead = _ledger_state(svc)
    assert size == 1 and sum(dead.values()) == 1


def test_health_ready_and_metrics(receiver: Receiver, make_service: Any) -> None:
    svc = make_service(receiver.url)
    assert httpx.get(f"{svc.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{svc.url}/readyz").json()
    assert ready["status"] == "ready" and ready["checks"]["ledger_entries"] == 0
    httpx.post(f"{svc.url}/v1/events", json=agent_in_prod("m-1"), headers=_auth(svc))
    text = httpx.get(f"{svc.url}/metrics").text
    for needle in (
        'railbook_events_received_total{source="agent"} 1.0',
        'railbook_decisions_total{outcome="deny",rail="1"} 1.0',
        "railbook_ledger_entries 1.0",
        "railbook_checkpoint_age_seconds",
        "railbook_alerts_pending",
        "railbook_consumer_lag",
    ):
        assert needle in text, needle
