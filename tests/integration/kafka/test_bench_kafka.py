"""``railbook bench kafka`` against the real broker, small: it runs every phase and reports them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.kafka.helpers import run_cli

pytestmark = pytest.mark.integration


def test_bench_kafka_measures_raw_serve_and_latency(kafka_broker: str, tmp_path: Path) -> None:
    out = tmp_path / "kafka.json"
    done = run_cli(
        tmp_path / "unused.duckdb",
        "bench", "kafka", "--kafka", kafka_broker, "--events", "3000", "--batch-size", "1000",
        "--rate", "200", "--latency-seconds", "2", "--out", str(out),
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "kafka"
    results = doc["results"]
    assert results["events"] == 3000
    assert results["raw_decode_errors"] == 0
    assert results["fetch_settings"]["max_poll_records"] == 1000  # serve's batch size, for both
    # each side measured twice, alternating; the faster pass of each is compared
    raw_passes, serve_passes = results["raw_consume_per_s_passes"], results["serve_per_s_passes"]
    assert len(raw_passes) == len(serve_passes) == 2
    assert results["raw_consume_per_s"] == max(raw_passes) and min(raw_passes) > 0
    assert results["serve_per_s"] == max(serve_passes) and min(serve_passes) > 0
    assert results["serve_appended"] == 3000  # every event of the stream, exactly once
    assert results["serve_ratio"] == round(results["serve_per_s"] / results["raw_consume_per_s"], 3)
    assert 0 < results["latency_p50_ms"] <= results["latency_p99_ms"]
    assert results["latency_rate_target_per_s"] == 200  # --rate, not a rate measured before it
    # a spike can be placed: how many events took over 1 s, and when the worst was published
    assert 0 <= results["latency_over_1s"] <= results["latency_measured"]
    assert 0 <= results["latency_worst_at_s"] <= 2.5  # a 2 s phase at --rate
    assert "ratio end to end / raw" in done.stdout
