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
    assert "hash_insert_all_rows_per_s" not in res["reference"]  # 3,000 rows: the first rows are all
    assert res["proofs"]["100"]["proofs_verified"] == 40
    assert res["proofs"]["100"]["source"].startswith("synthetic tree")
    assert res["proofs"]["3000"]["source"].startswith("the appended ledger")
    assert not list(tmp_path.glob("railbook-bench-*"))  # scratch removed


def test_bench_ledger_reference_is_all_the_rows_when_there_are_more_than_its_first_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond ``_FIRST_ROWS`` entries the target's reference inserts all of them, into a table
    growing as the ledger's did; the first-rows reference (before and after) is still reported."""
    from ledger import bench

    monkeypatch.setattr(bench, "_FIRST_ROWS", 1000)
    res = _bench_at_3000(tmp_path)
    ref = res["reference"]
    assert ref["hash_insert_entries"] == 1000
    assert ref["hash_insert_per_s"] == ref["hash_insert_all_rows_per_s"] > 0
    assert ref["hash_insert_first_rows_per_s"] == max(ref["hash_insert_per_s_before_after"])
    assert res["append"]["vs_reference"] == round(res["append"]["per_s"] / ref["hash_insert_per_s"], 3)
    assert res["append"]["vs_first_rows_reference"] == round(
        res["append"]["per_s"] / ref["hash_insert_first_rows_per_s"], 3
    )
    assert res["verify"]["ok"]
    assert not list(tmp_path.rglob("raw.duckdb"))
