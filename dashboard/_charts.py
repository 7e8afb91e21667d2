"""Altair charts for the Overview (pure: rows in, chart out)."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

__all__ = ["SEVERITY_COLORS", "stacked_bars"]

SEVERITY_COLORS = {
    "critical": "#7f1d1d",
    "high": "#dc2626",
    "medium": "#f59e0b",
    "low": "#facc15",
    "info": "#93c5fd",
    "unknown": "#9ca3af",
}
OUTCOME_COLORS = {"allowed": "#16a34a", "denied": "#dc2626"}


def stacked_bars(rows: list[dict[str, Any]], key: str, *, title: str) -> alt.Chart:
    """Daily counts stacked by ``key`` (``outcome``, ``rail`` or ``severity``)."""
    df = pd.DataFrame(
        rows if rows else [{"day": None, key: None, "count": 0}][:0], columns=["day", key, "count"]
    )
    color: Any
    if key == "severity":
        order = [s for s in SEVERITY_COLORS if s in set(df[key])] or list(SEVERITY_COLORS)
        color = alt.Color(
            f"{key}:N",
            sort=order,
            scale=alt.Scale(domain=order, range=[SEVERITY_COLORS[s] for s in order]),
            title=key,
        )
    elif key == "outcome":
        color = alt.Color(
            f"{key}:N",
            scale=alt.Scale(domain=list(OUTCOME_COLORS), range=list(OUTCOME_COLORS.values())),
            title="decision",
        )
    else:
        color = alt.Color(f"{key}:N", title=key)
    chart: alt.Chart = (
        alt.Chart(df, title=title)
        .mark_bar()
        .encode(
            x=alt.X("day:T", title="day (UTC)"),
            y=alt.Y("count:Q", title="entries"),
            color=color,
            tooltip=["day:T", f"{key}:N", "count:Q"],
        )
        .properties(height=240)
    )
    return chart
