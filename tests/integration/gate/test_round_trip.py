"""End to end: the real HTTP gate (uvicorn on loopback, the service's single writer, DuckDB on disk)
and the real `railbook gate` / `railbook approve` commands, fed with Claude Code's documented
PreToolUse payload."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import load_config
from railbook.gate import Gate, standalone_app
from railbook.gate._server import LoopbackServer
from railbook.service.auth import TokenTable, hash_token
from railbook.service.settings import TokenSpec
from railbook.service.writer import Writer

pytestmark = pytest.mark.integration

DOCS = Path(__file__).resolve().parents[2] / "assets" / "agent-hooks" / "claude-code-doc-examples"
DROP = "psql -h staging-db.internal -d app -c 'DROP TABLE users'"

TOKENS = {
    "agent": ("rbk_agent_token", ["agent"], "agent:claude-1"),
    "alice": ("rbk_alice_token", ["approver"], "alice@example.com"),
    "carol": ("rbk_carol_token", ["approver"], "carol@example.com"),
    "bob": ("rbk_bob_token", ["approver"], "bob@example.com"),  # the human the agent acts for
    "agent-approver": ("rbk_agent_approver", ["approver"], "agent:claude-1"),  # a misconfigured token
}

CONFIG_TOML = """
[ledger]
path = "{ledger}"

[environments.prod]
db_hosts = ["prod-db.internal"]
aws_accounts = ["111111111111"]

[environments.staging]
db_hosts = ["staging-db.internal"]
aws_accounts = ["222222222222"]

[identities]
agents = ["arn:aws:sts::*:assumed-role/agent-*/*", "agent:*"]
humans = ["*@*"]
approvers = ["alice@example.com", "carol@example.com", "bob@example.com"]
"""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("gate-e2e")
    cfg_file = tmp / "railbook.toml"
    cfg_file.write_text(CONFIG_TOML.format(ledger=tmp / "ledger.duckdb"))
    config = load_config(cfg_file)
    table = TokenTable(
        [TokenSpec(name=n, sha256=hash_token(t), roles=r, actor=a) for n, (t, r, a) in TOKENS.items()]  # type: ignore[arg-type]
    )
    with Writer.for_config(config) as writer:
        try:  # the real service app (railbook up) when it is there, else the gate routes alone
            from railbook.service.app import create_app

            app = create_app(config, writer=writer, tokens=table)
        except ImportError:
            app = standalone_app(Gate.over_writer(writer, config), table)
        with LoopbackServer(app) as srv:
            r = httpx.get(srv.url + "/openapi.json")
            assert r.status_code == 200, r.text
            yield {"url": srv.url, "config": str(cfg_file), "tmp": tmp}


def _env(service: dict[str, Any], token: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAILBOOK_")}
    env.update(RAILBOOK_CONFIG=service["config"], RAILBOOK_TOKEN=TOKENS[token][0], **extra)
    return env


def hook(service: dict[str, Any], command: str, *, url: str | None = None) -> tuple[dict[str, Any], int]:
    payload = json.loads((DOCS / "01.PreToolUse.input.Bash.json").read_text())
    payload["tool_input"]["command"] = command
    env = _env(service, "agent", RAILBOOK_ON_BEHALF_OF="bob@example.com", RAILBOOK_TASK="JIRA-7 drop users")
    proc = subprocess.run(
        [sys.executable, "-m", "railbook", "gate", "--url", url or service["url"], "--timeout", "2"],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode in (0, 2), proc.stderr
    return json.loads(proc.stdout)["hookSpecificOutput"], proc.returncode


def approve(
    service: dict[str, Any], token: str, request_id: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "railbook", "approve", request_id, "--url", service["url"], "--json", *args],
        capture_output=True,
        text=True,
        env=_env(service, token),
        timeout=60,
    )


def request_id(reason: str) -> str:
    start = reason.index("req-")
    return reason[start : start + 20]


def status(service: dict[str, Any], rid: str) -> str:
    r = httpx.get(
        f"{service['url']}/v1/requests/{rid}", headers={"Authorization": f"Bearer {TOKENS['alice'][0]}"}
    )
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


def test_round_trip(service: dict[str, Any]) -> None:
    out, code = hook(service, DROP)
    assert code == 0 and out["hookEventName"] == "PreToolUse"
    assert out["permissionDecision"] == "deny"  # [gate] ask_as = "deny": wait for an approver
    rid = request_id(out["permissionDecisionReason"])
    assert "needs a human approval" in out["permissionDecisionReason"]
    assert status(service, rid) == "pending"

    refused = approve(service, "agent-approver", rid)
    assert refused.returncode == 1 and "self-approval" in refused.stderr
    refused = approve(service, "bob", rid)
    assert refused.returncode == 1 and "approver-is-instructing-human" in refused.stderr
    assert status(service, rid) == "pending"

    granted = approve(service, "alice", rid)
    assert granted.returncode == 0, granted.stderr
    receipt = json.loads(granted.stdout)
    assert receipt["approver"] == "alice@example.com" and receipt["scope"]["action"] == "sql:DropTable"
    assert status(service, rid) == "approved"

    again = approve(service, "carol", rid)
    assert again.returncode == 1 and "already-answered" in again.stderr

    out, _ = hook(service, DROP)
    assert out["permissionDecision"] == "allow", out
    assert rid in out["permissionDecisionReason"]
    assert status(service, rid) == "used"

    out, _ = hook(service, DROP)
    assert out["permissionDecision"] == "deny"
    assert "already-used" in out["permissionDecisionReason"]


def test_a_different_digest_is_not_covered(service: dict[str, Any]) -> None:
    out, _ = hook(service, DROP)
    rid = request_id(out["permissionDecisionReason"])
    wrong = approve(service, "alice", rid, "--digest", "0" * 64)
    assert wrong.returncode == 1 and "digest-mismatch" in wrong.stderr
    assert approve(service, "alice", rid).returncode == 0
    out, _ = hook(service, DROP + " --echo-all")
    assert out["permissionDecision"] == "deny" and "digest-mismatch" in out["permissionDecisionReason"]


def test_expiry_is_honoured(service: dict[str, Any]) -> None:
    out, _ = hook(service, DROP.replace("users", "sessions"))
    rid = request_id(out["permissionDecisionReason"])
    assert approve(service, "alice", rid, "--expires-in", "1").returncode == 0
    time.sleep(1.5)
    assert status(service, rid) == "expired"
    out, _ = hook(service, DROP.replace("users", "sessions"))
    assert out["permissionDecision"] == "deny" and "expired" in out["permissionDecisionReason"]


def test_prod_is_denied_outright(service: dict[str, Any]) -> None:
    out, _ = hook(service, "psql -h prod-db.internal -d app -c 'DROP TABLE users'")
    assert out["permissionDecision"] == "deny"
    assert "rail1-agent-in-prod" in out["permissionDecisionReason"]


def test_unreachable_gate_fails_closed_for_destructive_and_open_for_reads(service: dict[str, Any]) -> None:
    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    out, code = hook(service, DROP, url=dead)
    assert code == 0 and out["permissionDecision"] == "deny"
    assert "unreachable" in out["permissionDecisionReason"]
    out, _ = hook(service, "psql -h staging-db.internal -d app -c 'SELECT count(*) FROM users'", url=dead)
    assert out["permissionDecision"] == "allow" and "fails open" in out["permissionDecisionReason"]


def test_http_errors_are_clear(service: dict[str, Any]) -> None:
    url = service["url"]
    agent = {"Authorization": f"Bearer {TOKENS['agent'][0]}"}
    assert httpx.post(url + "/v1/gate", json={"hook": {}}).status_code == 401
    r = httpx.post(url + "/v1/approvals", json={"request_id": "req-0123456789abcdef"}, headers=agent)
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    r = httpx.post(url + "/v1/gate", json={"hook": {}, "event": {}}, headers=agent)
    assert r.status_code == 422
    r = httpx.post(
        url + "/v1/gate", json={"hook": {"hook_event_name": "Stop", "session_id": "s"}}, headers=agent
    )
    assert r.status_code == 422 and r.json()["error"] == "not-pre-tool-use"
    r = httpx.get(url + "/v1/requests/req-0000000000000000", headers=agent)
    assert r.status_code == 404 and r.json()["error"] == "unknown-request"
    paths = httpx.get(url + "/openapi.json").json()["paths"]
    assert {"/v1/gate", "/v1/approvals", "/v1/requests/{request_id}"} <= set(paths)
