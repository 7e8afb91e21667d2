"""``railbook bench ingest`` and its generated mixes (kept tiny: the machine is shared)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from core.config import Config
from core.deadletter import DeadLetter
from ingest import normalise_bytes
from ingest._bench import BENCH_SOURCES, make_stream, measure
from railbook.cli import main


@pytest.mark.parametrize("source", BENCH_SOURCES)
def test_every_generated_record_normalises(config: Config, source: str) -> None:
    data = make_stream(source, 60, seed=3)
    items = list(normalise_bytes(data, source=source, origin="bench", config=config))
    assert len(items) == 60
    assert not [i for i in items if isinstance(i, DeadLetter)]
    assert make_stream(source, 60, seed=3) == data  # deterministic for a seed


def test_measure_reports_both_rates_from_the_same_bytes(config: Config) -> None:
    r = measure(make_stream("cloudtrail", 40), "cloudtrail", config, repeat=1, min_seconds=0)
    assert r["records"] == r["events"] == 40 and r["dead_letters"] == 0
    assert r["sensitive"] >= 1  # the AssumeRole responses carry a session token
    assert 0 < r["normalise_per_s"] < r["json_loads_per_s"]
    assert r["ratio"] == pytest.approx(r["normalise_per_s"] / r["json_loads_per_s"], rel=0.01)


def test_cli_json_and_out_file(tmp_path: Path) -> None:
    out = tmp_path / "ingest.json"
    args = [
        "bench",
        "ingest",
        "--records",
        "30",
        "--repeat",
        "1",
        "--seconds",
        "0",
        "--json",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert set(doc["sources"]) == set(BENCH_SOURCES)
    assert all(r["ratio"] > 0 and r["dead_letters"] == 0 for r in doc["sources"].values())
    assert json.loads(out.read_text())["results"] == doc


def test_cli_file_and_bad_source(tmp_path: Path) -> None:
    path = tmp_path / "trail.json"
    path.write_bytes(make_stream("cloudtrail", 10))
    ok = CliRunner().invoke(
        main,
        [
            "bench",
            "ingest",
            "--file",
            str(path),
            "--repeat",
            "1",
            "--seconds",
            "0",
            "--json",
            "--out",
            str(tmp_path / "o.json"),
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["sources"]["auto"]["events"] == 10
    bad = CliRunner().invoke(main, ["bench", "ingest", "--source", "nope"])
    assert bad.exit_code != 0 and "no generated mix for nope" in bad.output
