"""The Kafka commands' offline behaviour: splitting raw input into records, and clear errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from click.testing import CliRunner

from ingest._kafka_broker import free_port
from railbook.cli import main
from railbook.cli._kafka import raw_records


def test_cloudtrail_log_files_are_split_into_records_gzipped_or_not() -> None:
    doc = {"Records": [{"eventID": "a", "eventName": "StopLogging"}, {"eventID": "b"}]}
    data = json.dumps(doc).encode()
    for blob in (data, gzip.compress(data)):
        assert [json.loads(r) for r in raw_records(blob, "cloudtrail")] == doc["Records"]
    # for another source a {"Records": …} object is just one record
    assert list(raw_records(data, "github")) == [data]


def test_arrays_json_lines_and_non_json_lines() -> None:
    assert [json.loads(r) for r in raw_records(b'[{"a": 1}, {"b": 2}]', "mcp")] == [{"a": 1}, {"b": 2}]
    lines = b'{"kind": "Event", "verb": "get"}\n\n{"kind": "Event", "verb": "delete"}\nnot json\n'
    assert list(raw_records(lines, "k8s-audit")) == [
        b'{"kind": "Event", "verb": "get"}',
        b'{"kind": "Event", "verb": "delete"}',
        b"not json",  # published anyway: the consumer dead-letters it with the reason
    ]


def test_truncated_gzip_is_published_as_is_for_the_consumer_to_dead_letter() -> None:
    blob = gzip.compress(b'{"Records": []}')[:-6]
    assert list(raw_records(blob, "cloudtrail")) == [blob]


def test_serve_without_a_broker_fails_fast_and_says_how_to_fix_it(tmp_path: Path) -> None:
    port = free_port()
    result = CliRunner().invoke(
        main,
        [
            "--ledger",
            str(tmp_path / "l.duckdb"),
            "serve",
            "--kafka",
            f"127.0.0.1:{port}",
            "--connect-timeout",
            "1",
        ],
    )
    assert result.exit_code == 1, result.output
    assert f"cannot reach a Kafka broker at '127.0.0.1:{port}' within 1s" in result.output
    assert "scripts/kafka-broker.sh start" in result.output


def test_publish_and_serve_need_a_broker_address(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("RAILBOOK_KAFKA", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["--ledger", str(tmp_path / "l.duckdb"), "serve"])
    assert result.exit_code == 2 and "pass --kafka HOST:PORT" in result.output


def test_bench_kafka_needs_at_least_one_pass_per_side() -> None:
    result = CliRunner().invoke(main, ["bench", "kafka", "--passes", "0"])
    assert result.exit_code == 2  # a usage error, before any broker is started
    assert "--passes" in result.output and "0 is not in the range x>=1" in result.output
