"""Kill ``railbook up`` (SIGKILL) after the ledger write and before the delivery: after a restart the
alert is delivered, once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.service.conftest import Receiver, free_port, service_config
from tests.integration.service.payloads import agent_in_prod

pytestmark = pytest.mark.integration


def _toml(data: dict[str, Any]) -> str:
    """Just enough TOML for the test config (tables, arrays of tables, scalars, lists)."""
    lines: list[str] = []

    def value(v: Any) -> str:
        return json.dumps(v)

    def table(prefix: str, d: dict[str, Any]) -> None:
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict) and not _is_tables(v)}
        if prefix:
            lines.append(f"[{prefix}]")
        lines.extend(f"{k} = {value(v)}" for k, v in scalars.items())
        for k, v in d.items():
            if isinstance(v, dict):
                table(f"{prefix}.{k}" if prefix else k, v)
            elif _is_tables(v):
                for item in v:
                    lines.append(f"[[{prefix}.{k}]]" if prefix else f"[[{k}]]")
                    lines.extend(f"{ik} = {value(iv)}" for ik, iv in item.items())

    table("", data)
    return "\n".join(lines) + "\n"


def _is_tables(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(i, dict) for i in v)


def _start(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RAILBOOK_LOGLEVEL": "INFO"}
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "railbook",
                "--config",
                str(config),
                "up",
                "--port",
                str(port),
                "--no-dashboard",
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=Path(__file__).resolve().parents[3],
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"railbook up exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"railbook up did not become ready:\n{log.read_text()[-3000:]}")


def test_sigkill_between_ledger_write_and_delivery_then_restart_delivers_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    data = service_config(tmp_path, receiver.url)
    cfg = tmp_path / "railbook.toml"
    cfg.write_text(_toml(data))
    port = free_port()
    log = tmp_path / "up.log"
    receiver.down = True  # the alert is in the outbox (committed with its entry) but cannot go out
    proc = _start(cfg, port, log)
    try:
        token = (tmp_path / "data" / "service.token").read_text().strip()
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/events",
            json=agent_in_prod("crash-1"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert r.status_code == 200 and r.json()["violations"] == 1, r.text
        receiver.wait_for(lambda rec: rec.attempts >= 1, timeout=20)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert receiver.accepted == []
    receiver.down = False
    proc2 = _start(cfg, port, log)
    try:
        receiver.wait_for(lambda rec: len(rec.accepted) >= 1, timeout=30)
        time.sleep(1.0)  # a second delivery, if there were one, would arrive now
        assert [a["body"]["event_id"] for a in receiver.accepted] == ["crash-1"]
        assert len(receiver.keys()) == 1
        token = (tmp_path / "data" / "service.token").read_text().strip()
        rows = httpx.get(
            f"http://127.0.0.1:{port}/v1/alerts", headers={"Authorization": f"Bearer {token}"}, timeout=30
        ).json()["alerts"]
        assert [(r["event_id"], r["status"]) for r in rows] == [("crash-1", "sent")]
    finally:
        proc2.send_signal(signal.SIGTERM)
        assert proc2.wait(30) == 0, log.read_text()[-3000:]
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines and all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
