"""Approvals, Evidence and Integrity pages (thin rendering over the plain page functions)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from core.errors import RailbookError
from core.event import format_time
from dashboard._approvals import REFUSALS, approval_event, approval_history, pending_requests, refusal
from dashboard._evidence import EvidenceQuery, chain_steps, evidence_answer, find_changes
from dashboard._integrity import checkpoint_rows, inclusion
from dashboard._overview import verification_line
from dashboard._ui_common import backend, current_user, day_range, flash, header, show_flash, sidebar

__all__ = ["render_approvals", "render_evidence", "render_integrity"]

logger = logging.getLogger(__name__)


def _answer(request_id: str, decision: str) -> None:
    b = backend()
    user = current_user(b)
    with b.source.reader() as reader:
        pending = {r.request_id: r for r in pending_requests(reader)}
    req = pending.get(request_id)
    if req is None:
        flash("warning", f"request {request_id!r} is no longer pending")
        return
    comment = str(st.session_state.get(f"ap.comment.{request_id}", ""))
    try:
        event = approval_event(b.config, user.id if user else None, req, decision, comment=comment)  # type: ignore[arg-type]
        receipt = b.submitter.submit_approval(event, token=user.token if user else None)
    except PermissionError as exc:
        flash("error", f"Refused — {exc}")
        return
    except (ValueError, RailbookError) as exc:
        flash("error", f"Not submitted: {exc}")
        return
    verb = "Granted" if decision == "grant" else "Denied"
    extra = f" The policy layer noted: {', '.join(receipt.reasons)}." if receipt.reasons else ""
    flash("success", f"{verb} {request_id} as {event.actor.id} (approval event {receipt.event_id}).{extra}")


def render_approvals() -> None:
    b = backend()
    user = sidebar(b)
    header("Approvals", "Destructive actions waiting for a human: what each would do, and who may answer it.")
    show_flash()
    with b.source.reader() as reader:
        pending = pending_requests(reader)
        history = approval_history(reader)
    st.subheader(f"Pending ({len(pending)})")
    if not pending:
        st.info("No requests are waiting for approval.")
    for req in pending:
        with st.container(border=True):
            st.markdown(f"**{req.request_id}** — {req.what()}")
            st.markdown(
                f"on behalf of **{req.on_behalf_of or '—'}** · requested {format_time(req.requested_at)}"
                + (f" · task: {req.task}" if req.task else "")
            )
            if req.command:
                st.code(req.command)
            if req.digest:
                st.caption(f"digest sha256 {req.digest} (only this exact command/plan is approved)")
            for r in req.reasons:
                st.markdown(f"- needs approval: {r}")
            why = refusal(b.config, user.id if user else None, req)
            st.text_input("Comment", key=f"ap.comment.{req.request_id}")
            c1, c2 = st.columns(2)
            c1.button(
                "Approve",
                key=f"ap.grant.{req.request_id}",
                type="primary",
                on_click=_answer,
                args=(req.request_id, "grant"),
            )
            c2.button(
                "Deny", key=f"ap.deny.{req.request_id}", on_click=_answer, args=(req.request_id, "deny")
            )
            if why is not None:
                st.warning(f"You cannot answer this request — {why}: {REFUSALS[why]}")
    st.subheader("History")
    if history:
        st.dataframe(history, hide_index=True, width="stretch")
    else:
        st.caption("No approvals recorded yet.")


def render_evidence() -> None:
    b = backend()
    sidebar(b)
    header(
        "Evidence",
        "Who authorized that change, and where is the record? Find it, read the chain, hand over the pack.",
    )
    # deep links (alerts point here): /evidence?event_id=…, ?commit=…, ?pull_request=…, ?resource=…
    for param, key in (
        ("event_id", "evi.event_id"),
        ("commit", "evi.commit"),
        ("pull_request", "evi.pr"),
        ("resource", "evi.resource"),
    ):
        if param in st.query_params and key not in st.session_state:
            st.session_state[key] = st.query_params[param]
    c1, c2 = st.columns(2)
    event_id = c1.text_input("Event id", key="evi.event_id")
    commit = c2.text_input("Commit (full or ≥ 7 characters)", key="evi.commit")
    c3, c4 = st.columns(2)
    pr = c3.text_input("Pull request URL", key="evi.pr")
    resource = c4.text_input("Resource id", key="evi.resource")
    since, until = day_range("evi.days")
    q = EvidenceQuery(event_id or None, commit or None, pr or None, resource or None, since, until)
    if q.is_empty():
        st.info("Name a change: an event id, a commit, a pull request, a resource or a time range.")
        return
    with b.source.reader() as reader:
        try:
            rows = find_changes(reader, q)
        except RailbookError as exc:
            st.error(exc.diagnostics())
            return
        if not rows:
            st.warning("Nothing in the ledger matches.")
            return
        st.dataframe(rows, hide_index=True, width="stretch")
        chosen = st.selectbox(
            "Show the attribution chain of", [r["event_id"] for r in rows], key="evi.chosen"
        )
        answer = evidence_answer(reader, chosen)
    if answer is None:
        st.warning(f"{chosen} is not in the ledger.")
        return
    st.subheader("Attribution chain")
    verdict = answer["decision"]["outcome"]
    (st.error if verdict == "deny" else st.success)(
        f"{answer['event_id']} · {'VIOLATION' if verdict == 'deny' else 'allowed'} · {answer['occurred_at']}"
    )
    st.table(
        [{"step": s, "value": v, "check": "ok" if ok else "attention"} for s, v, ok in chain_steps(answer)]
    )
    if answer["attribution_missing"]:
        st.error("Attribution gaps (rail 4): " + ", ".join(answer["attribution_missing"]))
    one = {"event_id": chosen}
    change = {
        k: v
        for k, v in (
            ("commit", q.commit),
            ("pull_request", q.pull_request),
            ("resource", q.resource),
            ("since", q.since),
            ("until", q.until),
        )
        if v
    }
    packs = [(f"this event ({chosen})", one)]
    if change and not q.event_id:
        packs.append(("the whole change (all matches)", change))
    for n, (label, query) in enumerate(packs):
        key = f"evi.pack.{n}"
        ident = repr(sorted(query.items()))
        if st.button(f"Prepare evidence pack: {label}", key=f"evi.prep.{n}"):
            try:
                st.session_state[key] = (ident, b.evidence_pack(**query))
            except RailbookError as exc:
                st.session_state[key] = None
                st.warning(f"Evidence pack for {label} unavailable: {exc}")
        ready = st.session_state.get(key)
        if ready and ready[0] == ident:
            st.download_button(
                f"Download evidence pack: {label}",
                data=ready[1],
                file_name="evidence-"
                + "-".join(str(v) for v in query.values()).replace(":", "_").replace("/", "_")[:60]
                + ".json",
                mime="application/json",
                key=f"evi.dl.{n}",
            )
    st.caption("Verify a pack offline with `railbook verify-evidence FILE` — it needs nothing but the file.")
    with st.expander("Answer as JSON (same as `railbook why --json`)"):
        st.json(answer)


def render_integrity() -> None:
    b = backend()
    sidebar(b)
    header(
        "Integrity",
        "Re-derive every leaf, the chain, each signed root and signature; prove an entry is included.",
    )
    status = b.verification()
    (st.success if status and status.ok else st.warning if status is None else st.error)(
        f"Last verification: {verification_line(status)}"
    )
    if st.button("Run verification", type="primary", key="in.verify"):
        bar = st.progress(0.0, text="verifying…")

        def progress(frac: float, text: str) -> None:
            bar.progress(max(0.0, min(frac, 1.0)), text=text or "verifying…")

        try:
            result = b.verify(progress)
        except RailbookError as exc:
            st.error(exc.diagnostics())
        else:
            (st.success if result.ok else st.error)(
                f"Verification {'passed' if result.ok else 'FAILED'} in {result.seconds:.1f} s: "
                f"{result.message}"
                + (
                    f" (first bad entry: seq {result.first_bad_seq})"
                    if result.first_bad_seq is not None
                    else ""
                )
            )
    st.subheader("Signed checkpoints")
    cps = b.checkpoints()
    if cps:
        st.dataframe(checkpoint_rows(cps)[:500], hide_index=True, width="stretch")
        with st.expander("Latest signed note (C2SP tlog-checkpoint)"):
            st.code(max(cps, key=lambda c: c.tree_size).signed_note_text)
    else:
        st.info("No signed checkpoint yet.")
    st.subheader("Inclusion proof")
    eid = st.text_input("Event id", key="in.event_id")
    if eid.strip():
        try:
            with b.source.reader() as reader:
                proof: dict[str, Any] = inclusion(reader, eid)
        except RailbookError as exc:
            st.error(exc.diagnostics())
        else:
            st.json(proof)
    st.caption(f"Checked at {format_time(datetime.now(UTC))}")
