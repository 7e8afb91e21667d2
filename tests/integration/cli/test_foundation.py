"""The embedded slice through the real CLI: real adapters, real Cedar, real DuckDB on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "railbook" / "demo"
INCIDENT = "claude-code:sess-7f3a:toolu_01ProdAlterTable"


def railbook(*args: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("RAILBOOK_CONFIG", None)
    env.pop("RAILBOOK_LEDGER", None)
    proc = subprocess.run(
        [sys.executable, "-m", "railbook", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        env=env,
        timeout=120,
    )
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("demo")
    proc = railbook("demo", cwd=cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "VIOLATION" in proc.stdout and "verified" in proc.stdout
    assert "who authorized that ALTER TABLE" in proc.stdout
    return cwd


def cfg(demo_dir: Path) -> list[str]:
    return ["--config", str(demo_dir / "railbook-data/demo/railbook.toml")]


def test_demo_flags_the_incident_and_only_it(demo_dir: Path) -> None:
    proc = railbook(*cfg(demo_dir), "violations", "--json", cwd=demo_dir)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["event_id"] for r in rows] == [INCIDENT]
    row = rows[0]
    assert row["rails"] == [1, 2, 3]
    assert {"rail1-agent-in-prod", "rail3-destructive-without-approval"} <= set(row["policies"])
    assert row["severity"] == "critical" and isinstance(row["seq"], int)
    assert (
        json.loads(railbook(*cfg(demo_dir), "violations", "--json", "--rail", "4", cwd=demo_dir).stdout) == []
    )
    later = railbook(*cfg(demo_dir), "violations", "--json", "--since", "2026-08-12T11:00:00Z", cwd=demo_dir)
    assert json.loads(later.stdout) == []


def test_why_answers_the_auditor(demo_dir: Path) -> None:
    a = json.loads(railbook(*cfg(demo_dir), "why", INCIDENT, "--json", cwd=demo_dir).stdout)
    assert a["actor"] == {
        "id": "agent:claude-code",
        "kind": "agent",
        "session": "sess-7f3a",
        "credential": None,
    }
    assert a["on_behalf_of"] == "bob@example.com"
    assert a["change"]["task"].startswith("PAY-1432")
    assert a["prompt_event"]["prompt_sha256"] and a["attribution_missing"] == []
    assert a["approval"]["status"] == "missing"
    assert a["decision"]["outcome"] == "deny" and a["record"]["inclusion"]["verified"] is True

    ok = json.loads(
        railbook(*cfg(demo_dir), "why", "ci:payments-api:run-913:migrate", "--json", cwd=demo_dir).stdout
    )
    assert ok["decision"]["outcome"] == "allow"
    assert (
        ok["approval"]["status"] == "covered" and ok["approval"]["grant"]["approver"] == "alice@example.com"
    )

    missing = railbook(*cfg(demo_dir), "why", "nope", cwd=demo_dir)
    assert missing.returncode == 1 and "no ledger entry" in missing.stderr


def test_reingest_is_idempotent(demo_dir: Path, tmp_path: Path) -> None:
    proc = railbook(*cfg(demo_dir), "ingest", str(DEMO / "agent-session.jsonl"), "--json", cwd=demo_dir)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "read": 3,
        "appended": 0,
        "duplicates": 3,
        "dead_lettered": 0,
        "violations": 0,
    }


def test_bad_input_is_dead_lettered_and_the_rest_processed(tmp_path: Path) -> None:
    good = json.loads((DEMO / "approved-change.jsonl").read_text().splitlines()[1])
    lines = [
        json.dumps(good),
        "{this is not json",
        json.dumps({k: v for k, v in good.items() if k != "actor"} | {"event_id": "e2"}),
        json.dumps(good | {"event_id": "e3", "occurred_at": 1234}),
        json.dumps({"hello": "world"}),
    ]
    f = tmp_path / "mixed.jsonl"
    f.write_text("\n".join(lines) + "\n")
    proc = railbook("ingest", "--source", "event", str(f), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # the migration alone (no approval in this fresh ledger) is itself a rail-3 violation
    assert json.loads(proc.stdout) == {
        "read": 5,
        "appended": 1,
        "duplicates": 0,
        "dead_lettered": 4,
        "violations": 1,
    }
    for n in (2, 3, 4, 5):
        assert f"mixed.jsonl:{n}" in proc.stderr
    auto = railbook(
        "ingest", str(f), "--json", cwd=tmp_path
    )  # auto-detect: an unknown shape is a dead letter
    assert json.loads(auto.stdout)["dead_lettered"] == 4
    con = duckdb.connect(str(tmp_path / "railbook-data/ledger.duckdb"), read_only=True)
    try:
        rows = con.execute("select reason, raw from dead_letters order by 1").fetchall()
    finally:
        con.close()
    assert len(rows) == 8
    assert any(bytes(raw) == b"{this is not json" for _, raw in rows)


def test_nothing_readable_exits_nonzero(tmp_path: Path) -> None:
    f = tmp_path / "junk.json"
    f.write_bytes(b"\x00\x01 not json at all")
    proc = railbook("ingest", str(f), cwd=tmp_path)
    assert proc.returncode == 1 and "junk.json" in proc.stderr
    missing = railbook("ingest", str(tmp_path / "absent.json"), cwd=tmp_path)
    assert missing.returncode == 1 and "absent.json" in missing.stderr
    unknown = railbook("ingest", "--source", "carrier-pigeon", str(f), cwd=tmp_path)
    assert unknown.returncode == 2 and "carrier-pigeon" in unknown.stderr


def test_tampered_row_fails_verify_naming_the_entry(tmp_path: Path) -> None:
    proc = railbook("ingest", *(str(p) for p in sorted(DEMO.glob("*.json*"))), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert railbook("verify", cwd=tmp_path).returncode == 0
    db = tmp_path / "railbook-data/ledger.duckdb"
    con = duckdb.connect(str(db))
    try:
        entry = con.execute("select entry from entries where seq = 2").fetchone()[0]
        con.execute("update entries set entry = ? where seq = 2", [bytes(entry).replace(b"prod", b"dev!", 1)])
    finally:
        con.close()
    bad = railbook("verify", cwd=tmp_path)
    assert bad.returncode != 0
    assert "seq 2" in bad.stdout + bad.stderr
