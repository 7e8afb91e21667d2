"""``railbook bench …``: benchmarks that print numbers and write JSON (one subcommand per area)."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from railbook.cli import main


@main.group()
def bench() -> None:
    """Measure throughput and latency; prints a table and writes JSON.

    Each benchmark measures the raw cost of the same work in the same run as its
    reference and reports ratios, so results are comparable across machines.

    Example:

        railbook bench ledger --entries 200000 --out bench-results/ledger.json
    """


def write_results(name: str, results: dict[str, Any], out: str | None) -> Path:
    """Write benchmark results (with machine facts) to ``out`` or ``bench-results/<name>.json``."""
    path = Path(out) if out else Path("bench-results") / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": name,
        "at": datetime.now(UTC).isoformat(),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "results": results,
    }
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return path
