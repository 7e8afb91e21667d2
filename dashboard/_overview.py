"""Overview page logic: the state of the four rails at a glance."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from core.event import format_time
from dashboard._aggregates import (
    AgentActivity,
    DayCount,
    Totals,
    active_agents,
    daily_counts,
    latest_time,
    totals,
)
from dashboard._integrity import VerifyStatus, latest_checkpoint
from dashboard._violations import acknowledgements

__all__ = ["RAIL_NAMES", "Overview", "overview", "series_by"]

logger = logging.getLogger(__name__)

RAIL_NAMES = {
    1: "1 · environment separation",
    2: "2 · no standing prod access",
    3: "3 · approval gates",
    4: "4 · attributable audit trail",
}


@dataclass(frozen=True)
class Overview:
    totals: Totals
    open_violations: int
    """Violations no acknowledgement event names yet."""
    daily: list[DayCount]
    agents: list[AgentActivity]
    checkpoint: dict[str, Any] | None
    """The latest signed checkpoint (``Checkpoint.to_dict()``), or ``None`` before the first."""
    verification: VerifyStatus | None
    """The last verification this dashboard (or ``railbook verify``) recorded."""
    window_days: int
    window_end: datetime
    """The charts' window ends here: now, or the newest event if the ledger is older."""


def overview(
    reader: Any,
    *,
    checkpoints: list[Any],
    verification: VerifyStatus | None,
    days: int = 30,
    now: datetime | None = None,
) -> Overview:
    """Everything the Overview page shows. ``days`` bounds the charts and the active-agents list; the
    window ends at the newest event when that is older than ``now`` (an archived offline copy still
    shows its activity)."""
    end = now or datetime.now(UTC)
    newest = latest_time(reader)
    if newest is not None and newest < end:
        end = newest
    since = end - timedelta(days=days)
    t = totals(reader)
    acked = len(acknowledgements(reader))
    cp = latest_checkpoint(checkpoints)
    return Overview(
        totals=t,
        open_violations=max(t.violations - acked, 0),
        daily=daily_counts(reader, since=since),
        agents=active_agents(reader, since=since),
        checkpoint=cp.to_dict() if cp is not None else None,
        verification=verification,
        window_days=days,
        window_end=end,
    )


def series_by(daily: list[DayCount], key: str) -> list[dict[str, Any]]:
    """Chart rows ``{"day", key, "count"}``: all entries by ``outcome`` (allowed / violation), or
    violations by ``rail`` or ``severity`` (a violation of two rails counts once per rail)."""
    out: dict[tuple[str, str], int] = {}
    for d in daily:
        if key == "outcome":
            if d.rail is not None:
                continue  # outcome rows are the rail-less ones (see daily_counts)
            label = "denied" if d.outcome == "deny" else "allowed"  # both modes: detect and gate
        elif d.outcome != "deny" or d.rail is None:
            continue
        elif key == "rail":
            label = RAIL_NAMES.get(d.rail, f"rail {d.rail}")
        elif key == "severity":
            label = d.severity or "unknown"
        else:
            raise ValueError(f"series_by: key {key!r} is not outcome, rail or severity")
        k = (d.day.isoformat(), label)
        out[k] = out.get(k, 0) + d.count
    return [{"day": k[0], key: k[1], "count": n} for k, n in sorted(out.items())]


def checkpoint_line(cp: dict[str, Any] | None) -> str:
    if cp is None:
        return "no signed checkpoint yet"
    return f"tree size {cp['tree_size']:,} · root {cp['root_hash'][:16]}… · signed {cp['created_at']}"


def verification_line(v: VerifyStatus | None) -> str:
    if v is None:
        return "not verified yet: open Integrity and run verification"
    verdict = "passed" if v.ok else "FAILED"
    return f"{verdict} at {format_time(v.at)} (tree size {v.tree_size:,}): {v.message}"
