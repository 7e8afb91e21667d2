"""The dev broker helper, offline: cluster ids, fetch errors, pid files (the real start is integration)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import KafkaError
from ingest import _kafka_broker as kb


def test_cluster_ids_are_kafka_uuid_text() -> None:
    for _ in range(200):
        cid = kb._cluster_id()
        assert len(cid) == 22 and not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_fetch_without_maven_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda _name: None)
    with pytest.raises(KafkaError, match=r"'mvn' \(Apache Maven\) is not on PATH.*RAILBOOK_KAFKA_LIBS"):
        kb.fetch_jars(tmp_path / "libs")


def test_fetch_is_skipped_when_the_cache_is_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    libs = tmp_path / "libs"
    libs.mkdir()
    (libs / "kafka_2.13-4.3.1.jar").write_bytes(b"")
    (libs / ".fetched").write_text("ok\n")
    monkeypatch.setattr("shutil.which", lambda _name: pytest.fail("maven must not run"))
    assert kb.fetch_jars(libs) == libs


def test_stop_pidfile_handles_missing_and_dead_processes(tmp_path: Path) -> None:
    assert kb.stop_pidfile(tmp_path) is False
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    (tmp_path / "broker.pid").write_text(f"{proc.pid}\n")
    assert kb.stop_pidfile(tmp_path) is False
    assert not (tmp_path / "broker.pid").exists()


def test_stop_pidfile_terminates_a_running_process(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    (tmp_path / "broker.pid").write_text(f"{proc.pid}\n")
    assert kb.stop_pidfile(tmp_path, timeout=10) is True
    with pytest.raises(ProcessLookupError):
        os.kill(proc.pid, 0)


def test_server_properties_are_kraft_single_node_on_loopback() -> None:
    text = kb._SERVER_PROPERTIES.format(port=1234, controller_port=1235, data="/tmp/d")
    props = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:1234,CONTROLLER://127.0.0.1:1235"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:1235"
    assert int(props["message.max.bytes"]) > 4 << 20  # room for an oversized-message dead letter
