"""``railbook bench dashboard``: every page's queries + render over published segments, timed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.config import Config

__all__ = ["run_bench"]

logger = logging.getLogger(__name__)

#: (name, page file, widget values set before the timed run)
SCENARIOS: list[tuple[str, str, dict[str, Any]]] = [
    ("overview", "overview", {}),
    ("events", "events", {}),
    ("events:deny", "events", {"ev.outcome": "deny"}),
    ("events:text", "events", {"ev.text": "TASK-42"}),
    ("events:page5", "events", {"ev.page": 5}),
    ("violations", "violations", {}),
    ("violations:sev", "violations", {"vi.severity": "critical"}),
    ("approvals", "approvals", {}),
    ("evidence", "evidence", {"evi.commit": "00000000abcd"}),
    ("integrity", "integrity", {}),
]


def _config(root: Path, entries: int) -> Config:
    return Config.model_validate(
        {
            "ledger": {
                "path": str(root / "ledger.duckdb"),
                "checkpoint_every": max(entries, 1) * 2,
                "checkpoint_seconds": 1e9,
            },
        }
    )


def build(root: Path, entries: int, say: Callable[[str], None]) -> tuple[Config, float]:
    """Build (or reuse) a ledger of ``entries`` synthetic entries with its segments published."""
    from dashboard._seed import seed_ledger, synthetic

    config = _config(root, entries)
    if config.segments_dir.is_dir() and any(config.segments_dir.glob("*.parquet")):
        say(f"reusing {root}")
        return config, 0.0
    root.mkdir(parents=True, exist_ok=True)
    say(f"building a {entries:,}-entry ledger in {root} …")
    t = time.perf_counter()
    seed_ledger(
        config,
        synthetic(entries),
        batch=50_000,
        progress=lambda n: say(f"  {n:,} entries") if n % 200_000 == 0 else None,
    )
    return config, time.perf_counter() - t


def run_bench(
    root: Path, *, entries: int, budget: float = 2.0, say: Callable[[str], None] = lambda _m: None
) -> dict[str, Any]:
    from streamlit.testing.v1 import AppTest

    from dashboard import APP_PATH, open_backend
    from dashboard._ui_common import BACKEND_KEY

    config, build_s = build(root, entries, say)
    backend = open_backend(config, mode="segments")
    pages: dict[str, dict[str, Any]] = {}
    at = AppTest.from_file(str(APP_PATH), default_timeout=120)
    at.session_state[BACKEND_KEY] = backend
    at.run()  # warm: imports, the first segment scan
    for name, page, values in SCENARIOS:
        at.switch_page(f"pages/{page}.py").run()
        for key, value in values.items():
            if key.endswith(".page"):
                at.session_state[key] = value
            else:
                widget = (
                    at.selectbox(key=key) if key.endswith(("outcome", "severity")) else at.text_input(key=key)
                )
                widget.set_value(value)
        t = time.perf_counter()
        at.run()
        seconds = time.perf_counter() - t
        errors = [str(e.value) for e in at.exception]
        pages[name] = {
            "seconds": round(seconds, 4),
            "within_budget": seconds <= budget and not errors,
            "errors": errors,
        }
        say(f"{name:<16} {seconds:7.3f} s")
        for key in values:  # back to the defaults for the next scenario
            if key.endswith(".page"):
                at.session_state[key] = 0
            elif key.endswith(("outcome", "severity")):
                at.selectbox(key=key).set_value("any")
            else:
                at.text_input(key=key).set_value("")
    with backend.source.reader() as reader:
        size = reader.size
    return {
        "entries": size,
        "build_seconds": round(build_s, 2),
        "budget_seconds": budget,
        "pages": pages,
        "all_within_budget": all(p["within_budget"] for p in pages.values()),
    }
