"""Overview, Events and Violations pages (thin rendering over the plain page functions)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from core.errors import RailbookError
from core.event import format_time
from dashboard._aggregates import distinct_values
from dashboard._charts import stacked_bars
from dashboard._events import EventFilter, event_detail, fetch_page
from dashboard._overview import RAIL_NAMES, checkpoint_line, overview, series_by, verification_line
from dashboard._ui_common import backend, day_range, flash, header, show_flash, sidebar
from dashboard._violations import ViolationFilter, acknowledgement_event, fetch_violations

__all__ = ["render_events", "render_overview", "render_violations"]

logger = logging.getLogger(__name__)

SEVERITY_CHOICES = ["critical", "high", "medium", "low", "info"]


def render_overview() -> None:
    b = backend()
    sidebar(b)
    header(
        "Overview",
        "The four rails at a glance: what happened, what broke a rail, and whether the record holds.",
    )
    with b.source.reader() as reader:
        ov = overview(
            reader, checkpoints=b.checkpoints(), verification=b.verification(), days=b.settings.overview_days
        )
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Entries", f"{ov.totals.entries:,}")
    c2.metric("Violations", f"{ov.totals.violations:,}")
    c3.metric("Open violations", f"{ov.open_violations:,}")
    c4.metric(f"Active agents ({ov.window_days} d)", f"{len(ov.agents):,}")
    if (datetime.now(UTC) - ov.window_end).days >= 1:
        st.caption(
            f"Charts cover the {ov.window_days} days up to the newest event ({format_time(ov.window_end)})."
        )
    v = ov.verification
    if v is not None and not v.ok:
        st.error(f"Integrity: verification {verification_line(v)}")
    elif v is not None:
        st.success(f"Integrity: verification {verification_line(v)}")
    else:
        st.warning(f"Integrity: {verification_line(v)}")
    st.markdown(f"**Latest signed checkpoint:** {checkpoint_line(ov.checkpoint)}")
    left, right = st.columns(2)
    left.altair_chart(
        stacked_bars(series_by(ov.daily, "rail"), "rail", title="Violations by rail"), width="stretch"
    )
    right.altair_chart(
        stacked_bars(series_by(ov.daily, "severity"), "severity", title="Violations by severity"),
        width="stretch",
    )
    st.altair_chart(
        stacked_bars(series_by(ov.daily, "outcome"), "outcome", title="Events by decision"), width="stretch"
    )
    st.subheader("Active agents")
    if ov.agents:
        st.dataframe(
            [
                {
                    "agent": a.actor,
                    "on behalf of": a.on_behalf_of or "—",
                    "events": a.events,
                    "violations": a.violations,
                    "last seen": format_time(a.last_seen),
                }
                for a in ov.agents
            ],
            hide_index=True,
            width="stretch",
        )
    else:
        st.info(f"No agent activity in the last {ov.window_days} days.")


def _filters(reader: Any) -> EventFilter:
    with st.expander("Filters", expanded=True):
        c1, c2, c3, c4 = st.columns(4)
        source = c1.selectbox("Source", ["any", *distinct_values(reader, "source")], key="ev.source")
        kind = c2.selectbox(
            "Actor kind", ["any", "agent", "human", "pipeline", "service", "unknown"], key="ev.kind"
        )
        env = c3.selectbox("Environment", ["any", *distinct_values(reader, "environment")], key="ev.env")
        outcome = c4.selectbox("Decision", ["any", "deny", "allow"], key="ev.outcome")
        c5, c6, c7 = st.columns(3)
        actor = c5.text_input("Actor (or on behalf of; * wildcard)", key="ev.actor")
        action = c6.text_input("Action (e.g. sql:*)", key="ev.action")
        rail = c7.selectbox("Rail", ["any", "1", "2", "3", "4"], key="ev.rail")
        since, until = day_range("ev.days")
        text = st.text_input("Search (ids, actor, action, resource, task, raw record)", key="ev.text")
    return EventFilter(
        source=None if source == "any" else source,
        actor=actor.strip() or None,
        kind=None if kind == "any" else kind,
        action=action.strip() or None,
        environment=None if env == "any" else env,
        outcome=None if outcome == "any" else outcome,
        rail=None if rail == "any" else int(rail),
        since=since,
        until=until,
        text=text.strip() or None,
    )


def _pager(key: str, flt: Any) -> int:
    if st.session_state.get(f"{key}.filter") != flt:
        st.session_state[f"{key}.filter"] = flt
        st.session_state[f"{key}.page"] = 0
    return int(st.session_state.get(f"{key}.page", 0))


def _pager_buttons(key: str, page: int, has_next: bool, shown: int, first: int) -> None:
    c1, c2, c3 = st.columns([1, 1, 4])
    if c1.button("◀ Previous", key=f"{key}.prev", disabled=page == 0):
        st.session_state[f"{key}.page"] = page - 1
        st.rerun()
    if c2.button("Next ▶", key=f"{key}.next", disabled=not has_next):
        st.session_state[f"{key}.page"] = page + 1
        st.rerun()
    c3.caption(f"Page {page + 1} · rows {first}–{first + shown - 1 if shown else 0}")


def render_events() -> None:
    b = backend()
    sidebar(b)
    header(
        "Events", "Every event and its decision. Filters and search run in the ledger; one page at a time."
    )
    with b.source.reader() as reader:
        flt = _filters(reader)
        page = _pager("ev", flt)
        result = fetch_page(reader, flt, page=page, page_size=b.settings.page_size)
        if not result.rows:
            st.info("No events match these filters.")
            return
        st.dataframe(result.rows, hide_index=True, width="stretch")
        _pager_buttons("ev", page, result.has_next, len(result.rows), result.first)
        st.subheader("Detail")
        ids = [r["event_id"] for r in result.rows]
        chosen = st.selectbox("Event", ids, key="ev.detail")
        entry = next(e for e in result.entries if e.event.event_id == chosen)
        _detail(event_detail(entry))


def _detail(d: dict[str, Any]) -> None:
    dec = d["decision"]
    if dec["outcome"] == "deny":
        st.error(f"VIOLATION · rails {', '.join(map(str, dec['rails']))} · {dec['severity']}")
        for r in d["reasons"]:
            st.markdown(
                f"- **{r['policy_id']}** (rail {r['rail']}, {r['severity']}): {r['title']}"
                + (f" — *{r['remediation']}*" if r.get("remediation") else "")
            )
    else:
        st.success("allowed")
    t1, t2, t3, t4 = st.tabs(["Canonical event", "Decision", "Raw record", "Ledger record"])
    t1.json(d["event"])
    t2.json(dec)
    if d["raw"] is None:
        t3.caption("The event is its own raw record.")
    else:
        t3.json(d["raw"]) if isinstance(d["raw"], (dict, list)) else t3.code(str(d["raw"]))
    t4.json(d["record"])


def _ack(event_id: str, comment_key: str) -> None:
    b = backend()
    from dashboard._ui_common import current_user

    user = current_user(b)
    if user is None:
        flash("error", "not-signed-in: sign in to acknowledge a violation")
        return
    comment = str(st.session_state.get(comment_key, ""))
    try:
        with b.source.reader() as reader:
            entry = reader.get(event_id)
        if entry is None:
            flash("error", f"event {event_id!r} is not in the ledger")
            return
        event = acknowledgement_event(b.config, user.id, entry, comment)
        receipt = b.submitter.submit_event(event, token=user.token)
    except (ValueError, RailbookError) as exc:
        flash("error", f"Not acknowledged: {exc}")
        return
    st.session_state[comment_key] = ""
    flash("success", f"Acknowledged {event_id} as {user.id} (event {receipt.event_id}, {receipt.via}).")


def render_violations() -> None:
    b = backend()
    user = sidebar(b)
    header(
        "Violations",
        "Every event a rail forbids, newest first. Acknowledge one with a comment: that is an event too.",
    )
    show_flash()
    c1, c2, c3, c4 = st.columns(4)
    rail = c1.selectbox("Rail", ["any", *[RAIL_NAMES[i] for i in (1, 2, 3, 4)]], key="vi.rail")
    severity = c2.selectbox("Severity", ["any", *SEVERITY_CHOICES], key="vi.severity")
    agent = c3.text_input("Agent (or on behalf of)", key="vi.agent")
    open_only = c4.checkbox("Open only", key="vi.open")
    since, _until = day_range("vi.days")
    flt = ViolationFilter(
        rail=None if rail == "any" else int(rail.split(" ")[0]),
        severity=None if severity == "any" else severity,
        actor=agent.strip() or None,
        since=since,
        open_only=open_only,
    )
    page = _pager("vi", flt)
    with b.source.reader() as reader:
        rows, entries, more = fetch_violations(reader, flt, page=page, page_size=b.settings.page_size)
    if not rows:
        st.success("No violations match.")
        return
    cols = [
        "seq",
        "occurred_at",
        "rails",
        "severity",
        "actor",
        "on_behalf_of",
        "action",
        "resource",
        "environment",
        "titles",
        "acknowledged",
        "event_id",
    ]
    st.dataframe([{k: r[k] for k in cols} for r in rows], hide_index=True, width="stretch")
    _pager_buttons("vi", page, more, len(rows), page * b.settings.page_size + 1)
    st.subheader("Acknowledge")
    chosen = st.selectbox("Violation", [r["event_id"] for r in rows], key="vi.chosen")
    entry = next(e for e in entries if e.event.event_id == chosen)
    _detail(event_detail(entry))
    st.text_area("Comment (what was done about it, or why it is accepted)", key="vi.comment")
    st.button(
        "Acknowledge",
        key="vi.ack",
        on_click=_ack,
        args=(chosen, "vi.comment"),
        disabled=user is None,
        help=None if user else "sign in to acknowledge",
    )
