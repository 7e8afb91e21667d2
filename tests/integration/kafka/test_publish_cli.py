"""``railbook publish`` on real sample records: canonical events, or raw records for the consumer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from core.avro import decode_event
from core.deadletter import DeadLetter
from tests.integration.kafka.helpers import (
    consume_all,
    ledger_dead_letters,
    ledger_event_ids,
    run_cli,
    run_serve,
)

pytestmark = pytest.mark.integration


def _k8s_files(asset: Callable[[str], Path]) -> list[Path]:
    folder = asset("k8s/falco-trace-files")
    files = sorted(folder.glob("*.json"))
    assert files
    return files


def _expected(files: list[Path], source: str) -> tuple[set[str], int]:
    from core.config import load_config
    from ingest import normalise_bytes

    config = load_config(None)
    ids: set[str] = set()
    dead = 0
    for f in files:
        for item in normalise_bytes(f.read_bytes(), source=source, origin=str(f), config=config):
            if isinstance(item, DeadLetter):
                dead += 1
            else:
                ids.add(item.event_id)
    return ids, dead


def test_publish_normalises_and_publishes_canonical_events(
    kafka_broker: str, kafka_ns: str, tmp_path: Path, asset: Callable[[str], Path]
) -> None:
    files = _k8s_files(asset)
    ids, dead = _expected(files, "k8s-audit")
    assert ids
    ledger = tmp_path / "ledger.duckdb"
    proc = run_cli(
        ledger,
        "publish",
        "--kafka",
        kafka_broker,
        "--namespace",
        kafka_ns,
        "--source",
        "k8s-audit",
        "--json",
        *map(str, files),
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["topic"] == f"{kafka_ns}railbook.events"
    assert doc["dead_lettered"] == dead
    msgs = consume_all(kafka_broker, f"{kafka_ns}railbook.events", expect=doc["published"])
    assert len(msgs) == doc["published"]
    assert {decode_event(m.value).event_id for m in msgs} == ids
    # and serve takes them into the ledger
    out = run_serve(
        ledger, kafka_broker, "--namespace", kafka_ns, "--group", f"{kafka_ns}g", "--idle-exit", "4"
    )
    assert set(ledger_event_ids(ledger)) == ids and out["dead_lettered"] == 0


def test_publish_raw_sends_original_records_normalised_by_serve(
    kafka_broker: str, kafka_ns: str, tmp_path: Path, asset: Callable[[str], Path]
) -> None:
    files = _k8s_files(asset)
    ids, dead = _expected(files, "k8s-audit")
    ledger = tmp_path / "ledger.duckdb"
    proc = run_cli(
        ledger,
        "publish",
        "--kafka",
        kafka_broker,
        "--namespace",
        kafka_ns,
        "--raw",
        "--source",
        "k8s-audit",
        "--json",
        *map(str, files),
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["topic"] == f"{kafka_ns}railbook.raw.k8s-audit"
    raw_msgs = consume_all(kafka_broker, doc["topic"], expect=doc["published"])
    assert len(raw_msgs) == doc["published"]
    assert all(json.loads(m.value) for m in raw_msgs)  # original JSON, one record a message
    out = run_serve(
        ledger, kafka_broker, "--namespace", kafka_ns, "--group", f"{kafka_ns}g", "--idle-exit", "4"
    )
    assert set(ledger_event_ids(ledger)) == ids
    assert out["dead_lettered"] == dead == len(ledger_dead_letters(ledger))


def test_publish_raw_needs_a_raw_source_and_an_unreachable_broker_is_a_clear_error(tmp_path: Path) -> None:
    from ingest._kafka_broker import free_port

    proc = run_cli(
        tmp_path / "l.duckdb", "publish", "--kafka", "127.0.0.1:1", "--raw", "--source", "event", "-"
    )
    assert proc.returncode == 2 and "--raw needs --source one of cloudtrail" in proc.stderr
    f = tmp_path / "e.json"
    f.write_text("{}")
    port = free_port()
    proc = run_cli(
        tmp_path / "l.duckdb",
        "publish",
        "--kafka",
        f"127.0.0.1:{port}",
        "--connect-timeout",
        "1",
        "--raw",
        "--source",
        "github",
        str(f),
    )
    assert proc.returncode == 1
    assert f"cannot reach a Kafka broker at '127.0.0.1:{port}' within 1s" in proc.stderr
