"""``railbook bench ledger`` end to end at a tiny size: every target is measured and judged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from railbook.cli import main

pytestmark = pytest.mark.integration


def _bench_at_3000(tmp_path: Path) -> dict[str, Any]:
    """``railbook bench ledger --json`` at 3,000 entries: its results document."""
    out = tmp_path / "ledger.json"
    result = CliRunner().invoke(
        main,
        [
            "bench", "ledger", "--entries", "3000", "--batch", "500", "--synthetic-size", "100",
            "--samples", "5", "--dir", str(tmp_path), "--out", str(out), "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    res: dict[str, Any] = json.loads(result.output)
    assert json.loads(out.read_text())["results"] == res  # written for later comparison
    return res


def test_bench_ledger_reports_every_target_with_pass_or_miss(tmp_path: Path) -> None:
    res = _bench_at_3000(tmp_path)
    status = {t["target"]: t["status"] for t in res["targets"]}
    assert status.pop("proof_ms_p99_at_10m") == "NOT MEASURED"  # a 100-leaf tree is not 10M
    assert set(status) == {"append_vs_reference", "verify_per_s", "memory_flat"}
    assert set(status.values()) <= {"PASS", "MISS"}
    assert res["verify"]["ok"] and res["append"]["vs_reference"] > 0
    assert res["proofs"]["100"]["proofs_verified"] == 40
    assert res["proofs"]["100"]["source"].startswith("synthetic tree")
    assert res["proofs"]["3000"]["source"].startswith("the appended ledger")
    assert not list(tmp_path.glob("railbook-bench-*"))  # scratch removed


def test_bench_ledger_measures_the_reference_at_the_ledgers_size_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From ``_AT_SIZE_MIN`` entries the reference also goes into a copy of the appended ledger;
    the ledger itself is untouched (the bench verifies it afterwards) and the target is unchanged."""
    from ledger import bench

    monkeypatch.setattr(bench, "_AT_SIZE_MIN", 1000)
    res = _bench_at_3000(tmp_path)
    at_size = res["reference"]["hash_insert_at_size_per_s"]
    assert isinstance(at_size, int) and at_size > 0
    assert res["append"]["vs_reference_at_size"] == round(res["append"]["per_s"] / at_size, 3)
    fresh = res["reference"]["hash_insert_per_s"]
    assert res["append"]["vs_reference"] == round(res["append"]["per_s"] / fresh, 3)  # the target's
    assert res["verify"]["ok"]
    assert not list(tmp_path.rglob("at_size.duckdb"))
