"""Reading the alert outbox for ``railbook alerts`` and ``GET /v1/alerts`` (status, not delivery)."""

from __future__ import annotations

from typing import Any

from core.event import format_time

__all__ = ["recent_alerts"]

_COLUMNS = (
    "alert_id, seq, event_id, created_at, rails, severity, policies, status, sink, attempts, "
    "last_error, updated_at"
)


def recent_alerts(ledger: Any, limit: int = 100, *, status: str | None = None) -> list[dict[str, Any]]:
    """The newest ``limit`` outbox rows (optionally only ``status``), newest first, JSON-ready.

    Uses ``ledger.recent_alerts`` when the ledger offers it; otherwise a read-only query of the
    ``alerts`` table on the ledger's own connection (no write).
    """
    fn = getattr(ledger, "recent_alerts", None)
    if fn is not None:
        rows: list[dict[str, Any]] = list(fn(limit, status=status))
    else:
        where = "WHERE status = ?" if status else ""
        params: list[Any] = [status] if status else []
        cur = ledger.connection().execute(
            f"SELECT {_COLUMNS} FROM alerts {where} ORDER BY alert_id DESC LIMIT ?", [*params, int(limit)]
        )
        names = [d[0] for d in cur.description or []]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    out = []
    for r in rows:
        d = dict(r)
        for key in ("created_at", "updated_at"):
            if d.get(key) is not None and hasattr(d[key], "astimezone"):
                d[key] = format_time(d[key])
        d["rails"] = list(d.get("rails") or [])
        d["policies"] = list(d.get("policies") or [])
        out.append(d)
    return out
