"""Page logic as plain functions, over the fake reader (no Streamlit)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import IntegrityError
from dashboard._aggregates import active_agents, daily_counts, distinct_values, totals
from dashboard._approvals import approval_event, approval_history, pending_requests, refusal
from dashboard._auth import auth_method, token_user, user_from_oidc
from dashboard._events import EventFilter, event_detail, fetch_page
from dashboard._evidence import EvidenceQuery, chain_steps, evidence_answer, find_changes
from dashboard._integrity import VerifyStatus, load_status, read_checkpoints, run_verification, save_status
from dashboard._overview import overview, series_by
from dashboard._settings import dashboard_settings
from dashboard._violations import ACK_ACTION, ViolationFilter, acknowledgement_event, fetch_violations
from tests.unit.dashboard.conftest import T0, FakeReader, allow, seed

# --- events ----------------------------------------------------------------------------------------


def test_filters_go_to_the_reader(reader: FakeReader) -> None:
    flt = EventFilter(source="agent", outcome="deny", environment="prod", text="ALTER", rail=1)
    page = fetch_page(reader, flt, page=0, page_size=10)
    assert [r["event_id"] for r in page.rows] == ["agent:alter-prod"]
    name, kwargs = reader.calls[-1]
    assert name == "entries"
    assert kwargs["source"] == "agent" and kwargs["outcome"] == "deny" and kwargs["text"] == "ALTER"
    assert kwargs["limit"] == 11 and kwargs["offset"] == 0  # one extra row tells whether a next page exists


def test_pagination_walks_every_entry_once(reader: FakeReader) -> None:
    seen: list[int] = []
    page = 0
    while True:
        p = fetch_page(reader, EventFilter(), page=page, page_size=5)
        seen += [r["seq"] for r in p.rows]
        if not p.has_next:
            break
        page += 1
    assert seen == sorted(seen, reverse=True) == list(range(len(reader.items)))[::-1]


@given(n=st.integers(min_value=0, max_value=40), size=st.integers(min_value=1, max_value=12))
def test_pages_partition_the_ledger(n: int, size: int) -> None:
    r = FakeReader()
    base = seed(FakeReader())["read0"]
    for i in range(n):
        r.add(
            type(base.event)(f"e{i}", T0, "agent", base.event.actor, "shell:Exec", base.event.resource),
            allow(),
        )
    rows: list[int] = []
    for page in range(n // size + 2):
        p = fetch_page(r, EventFilter(), page=page, page_size=size)
        rows += [x["seq"] for x in p.rows]
        assert p.has_next == ((page + 1) * size < n)
    assert sorted(rows) == list(range(n))


def test_page_bounds_are_checked(reader: FakeReader) -> None:
    with pytest.raises(ValueError, match="page_size"):
        fetch_page(reader, EventFilter(), page_size=0)
    with pytest.raises(ValueError, match="page must be"):
        fetch_page(reader, EventFilter(), page=-1)


def test_detail_has_event_decision_reasons_and_raw(reader: FakeReader) -> None:
    d = event_detail(reader.get("agent:alter-prod"))
    assert d["event"]["action"] == "sql:AlterTable" and "raw" not in d["event"]
    assert [r["policy_id"] for r in d["reasons"]] == ["rail1-agent-in-prod", "rail3-destructive-unapproved"]
    assert d["raw"] == {"tool": "psql", "command": "ALTER TABLE balances ..."}
    assert len(d["record"]["leaf_hash"]) == 64


# --- violations and acknowledgements --------------------------------------------------------------


def test_violations_by_rail_severity_and_agent(reader: FakeReader) -> None:
    rows, _, more = fetch_violations(reader, ViolationFilter(rail=1))
    assert [r["event_id"] for r in rows] == ["agent:alter-prod"] and not more
    rows, _, _ = fetch_violations(reader, ViolationFilter(severity="medium"))
    assert [r["event_id"] for r in rows] == ["github:push-1"]
    rows, _, _ = fetch_violations(reader, ViolationFilter(actor="bob@example.com"))
    assert "github:push-1" not in [r["event_id"] for r in rows] and "agent:alter-prod" in [
        r["event_id"] for r in rows
    ]


def test_acknowledgement_is_an_event_and_closes_the_violation(config: Any, reader: FakeReader) -> None:
    cfg = config()
    target = reader.get("agent:alter-prod")
    ev = acknowledgement_event(cfg, "alice@example.com", target, "  restored from backup, CHG-9 ", now=T0)
    assert ev.action == ACK_ACTION and ev.source == "dashboard" and ev.actor.kind == "human"
    assert (
        ev.attributes["acknowledges"] == "agent:alter-prod"
        and ev.attributes["comment"] == "restored from backup, CHG-9"
    )
    assert ev.resource.environment == "unknown"  # the ack itself touches no environment
    reader.add(ev, allow())
    rows, _, _ = fetch_violations(reader, ViolationFilter(open_only=True))
    assert "agent:alter-prod" not in [r["event_id"] for r in rows]
    rows, _, _ = fetch_violations(reader, ViolationFilter())
    assert next(r for r in rows if r["event_id"] == "agent:alter-prod")["acknowledged"] == "alice@example.com"


def test_acknowledgement_refusals(config: Any, reader: FakeReader) -> None:
    with pytest.raises(ValueError, match="needs a comment"):
        acknowledgement_event(config(), "alice@example.com", reader.get("agent:alter-prod"), "   ")
    with pytest.raises(ValueError, match="not a violation"):
        acknowledgement_event(config(), "alice@example.com", reader.get("agent:read-1"), "fine")


# --- approvals --------------------------------------------------------------------------------------


def test_pending_requests_and_history(reader: FakeReader) -> None:
    pending = pending_requests(reader)
    assert [p.request_id for p in pending] == ["req-2", "req-1"]
    req1 = pending[1]
    assert (
        req1.command == "DROP TABLE tmp_balances"
        and req1.digest == "e" * 64
        and req1.on_behalf_of == "bob@example.com"
    )
    hist = approval_history(reader)
    assert [h["request_id"] for h in hist] == ["req-0"] and hist[0]["approver"] == "carol@example.com"


@pytest.mark.parametrize(
    ("user", "reason"),
    [
        (None, "not-signed-in"),
        ("mallory@example.com", "not-an-approver"),
        ("bob@example.com", "approver-is-instructing-human"),
        ("alice@example.com", None),
    ],
)
def test_refusals_are_named(config: Any, reader: FakeReader, user: str | None, reason: str | None) -> None:
    req = pending_requests(reader)[1]
    assert refusal(config(), user, req) == reason
    if reason is not None:
        with pytest.raises(PermissionError, match=reason):
            approval_event(config(), user, req, "grant")


def test_self_approval_is_refused(config: Any, reader: FakeReader) -> None:
    cfg = config(identities={"agents": ["agent:*"], "approvers": ["agent:claude-1", "alice@example.com"]})
    assert refusal(cfg, "agent:claude-1", pending_requests(reader)[1]) == "self-approval"


def test_approval_event_scopes_the_request(config: Any, reader: FakeReader) -> None:
    req = pending_requests(reader)[1]
    ev = approval_event(
        config(), "alice@example.com", req, "grant", comment="one-off", now=T0, ttl=timedelta(minutes=5)
    )
    ap = ev.approval
    assert ev.action == "approval:Grant" and ev.source == "approval" and ev.actor.id == "alice@example.com"
    assert ap is not None and (ap.request_id, ap.actor, ap.action, ap.resource, ap.digest) == (
        "req-1",
        "agent:claude-1",
        "sql:DropTable",
        "db://staging-db.internal/app",
        "e" * 64,
    )
    assert ap.expires_at == T0 + timedelta(minutes=5) and ev.attributes["comment"] == "one-off"
    deny_ev = approval_event(config(), "alice@example.com", req, "deny")
    assert (
        deny_ev.action == "approval:Deny"
        and deny_ev.approval is not None
        and deny_ev.approval.expires_at is None
    )
    reader.add(ev, allow())
    assert [p.request_id for p in pending_requests(reader)] == ["req-2"]


# --- evidence ---------------------------------------------------------------------------------------


def test_find_by_event_commit_pr_resource_and_time(reader: FakeReader) -> None:
    assert [r["event_id"] for r in find_changes(reader, EvidenceQuery(event_id=" agent:alter-prod "))] == [
        "agent:alter-prod"
    ]
    assert {r["event_id"] for r in find_changes(reader, EvidenceQuery(commit="abc1234"))} == {
        "agent:alter-prod",
        "github:push-1",
    }
    assert [
        r["event_id"]
        for r in find_changes(reader, EvidenceQuery(pull_request="https://github.com/acme/app/pull/7"))
    ] == ["agent:alter-prod"]
    assert len(find_changes(reader, EvidenceQuery(resource="db://staging-db.internal/app"))) == 3
    assert len(find_changes(reader, EvidenceQuery(since=T0 + timedelta(hours=4)))) == 2
    assert find_changes(reader, EvidenceQuery()) == []
    assert find_changes(reader, EvidenceQuery(event_id="nope")) == []


def test_evidence_answer_names_the_whole_chain(reader: FakeReader) -> None:
    a = evidence_answer(reader, "agent:alter-staging")
    assert a is not None
    steps = {s: (v, ok) for s, v, ok in chain_steps(a)}
    assert steps["who"][0] == "agent:claude-1 (agent)"
    assert steps["on whose instruction"] == ("bob@example.com", True)
    assert steps["task / prompt"][0] == "fix flaky migration"
    assert steps["diff sha256"] == ("f" * 64, True)
    assert "granted by carol@example.com" in steps["approval"][0] and "req-0" in steps["approval"][0]
    assert steps["policy version"][0] == "a" * 64
    assert steps["decision"][0].startswith("allowed")
    bad = {s: (v, ok) for s, v, ok in chain_steps(evidence_answer(reader, "github:push-1"))}  # type: ignore[arg-type]
    assert bad["on whose instruction"] == ("— missing —", False) and not bad["decision"][1]
    assert evidence_answer(reader, "nope") is None


# --- overview and aggregates (pure-Python fallback) ---------------------------------------------------


def test_overview_counts_and_series(reader: FakeReader) -> None:
    ov = overview(reader, checkpoints=[], verification=None, days=30)
    # two detect-mode denies; the two gate-mode "ask" answers were stopped, not violations
    assert (ov.totals.entries, ov.totals.violations) == (len(reader.items), 2)
    assert ov.open_violations == 2 and ov.checkpoint is None
    assert {a.actor for a in ov.agents} == {"agent:claude-1", "claude[bot]"}
    by_rail = series_by(ov.daily, "rail")
    assert sum(r["count"] for r in by_rail) == 3  # alter-prod counts for rail 1 and rail 3, push-1 for 4
    by_outcome = series_by(ov.daily, "outcome")
    assert sum(r["count"] for r in by_outcome) == len(reader.items)
    assert {r["severity"] for r in series_by(ov.daily, "severity")} == {"critical", "medium"}
    with pytest.raises(ValueError):
        series_by(ov.daily, "colour")


def test_aggregates_fallback(reader: FakeReader) -> None:
    assert totals(reader).entries == len(reader.items)
    assert "agent" in distinct_values(reader, "source")
    assert sum(d.count for d in daily_counts(reader) if d.rail is None) == len(reader.items)
    assert active_agents(reader)[0].actor == "agent:claude-1"
    with pytest.raises(ValueError):
        distinct_values(reader, "raw")


# --- integrity --------------------------------------------------------------------------------------


def test_run_verification_reports_progress_and_failure() -> None:
    seen: list[float] = []

    def good(progress: Any = None) -> dict[str, Any]:
        progress(50, 100)
        return {"ok": True, "tree_size": 100}

    s = run_verification(good, progress=lambda f, _t: seen.append(f))
    assert s.ok and s.tree_size == 100 and seen == [0.5, 1.0]

    def bad(progress: Any = None) -> None:
        raise IntegrityError("entry 7 modified", seq=7)

    s = run_verification(bad)
    assert not s.ok and s.first_bad_seq == 7 and "entry 7" in s.message

    class Report:
        ok = False
        tree_size = 9
        message = "root mismatch"

    assert not run_verification(lambda progress=None: Report()).ok


def test_status_round_trip_and_checkpoint_file(config: Any, tmp_path: Path) -> None:
    cfg = config()
    assert load_status(cfg) is None
    s = VerifyStatus(True, datetime(2026, 1, 1, tzinfo=UTC), 5, "fine", None, 0.25)
    save_status(cfg, s)
    assert load_status(cfg) == s
    assert read_checkpoints(tmp_path / "missing.log") == []
    bad = tmp_path / "cp.log"
    bad.write_text("not json\n" + json.dumps({"note": "x", "created_at": "2026-01-01T00:00:00Z"}) + "\n")
    assert read_checkpoints(bad) == []  # unreadable lines are skipped (verification reports them)


# --- sign-in ----------------------------------------------------------------------------------------


def test_auth_method_resolution(config: Any) -> None:
    cfg = config()
    assert auth_method(cfg, dashboard_settings(cfg), has_oidc_secrets=True) == "oidc"
    assert auth_method(cfg, dashboard_settings(cfg), has_oidc_secrets=False) == "none"
    local = config(dashboard={"local_user": "alice@example.com"})
    assert auth_method(local, dashboard_settings(local), has_oidc_secrets=False) == "local"
    exposed = config(dashboard={"local_user": "alice@example.com", "auth": "local", "host": "0.0.0.0"})
    assert auth_method(exposed, dashboard_settings(exposed), has_oidc_secrets=False) == "none"


def test_token_sign_in(config: Any) -> None:
    from railbook.service.auth import hash_token

    cfg = config(
        server={
            "tokens": [
                {
                    "name": "alice",
                    "sha256": hash_token("rbk_alice"),
                    "roles": ["approver"],
                    "actor": "alice@example.com",
                },
                {"name": "ci", "sha256": hash_token("rbk_ci"), "roles": ["ingest"], "actor": "pipeline:ci"},
                {"name": "anon", "sha256": hash_token("rbk_anon"), "roles": ["approver"]},
            ]
        }
    )
    assert auth_method(cfg, dashboard_settings(cfg), has_oidc_secrets=False) == "token"
    user, why = token_user(cfg, " rbk_alice ")
    assert user is not None and user.id == "alice@example.com" and user.token == "rbk_alice" and why == ""
    assert "rbk_alice" not in repr(user)
    assert token_user(cfg, "rbk_ci")[0] is None  # an ingest token cannot approve
    assert "names no actor" in token_user(cfg, "rbk_anon")[1]
    assert token_user(cfg, "")[1] == "enter your approver token"


def test_oidc_user() -> None:
    assert user_from_oidc({"is_logged_in": True, "email": "alice@example.com"}).id == "alice@example.com"  # type: ignore[union-attr]
    assert user_from_oidc({"is_logged_in": False, "email": "x@example.com"}) is None
    assert user_from_oidc(None) is None


def test_bad_dashboard_settings_name_the_key(config: Any) -> None:
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\[dashboard\] page_size"):
        dashboard_settings(config(dashboard={"page_size": 0}))


def test_service_submitter_posts_the_documented_bodies(config: Any, reader: FakeReader) -> None:
    import httpx

    from dashboard._submit import ServiceSubmitter

    seen: list[tuple[str, dict[str, Any], str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, json.loads(request.content), request.headers.get("authorization", "")))
        if request.url.path == "/v1/approvals":
            return httpx.Response(
                200, json={"event_id": "approval:req-1:svc", "seq": 77, "approver": "alice@example.com"}
            )
        if json.loads(request.content).get("attributes", {}).get("comment") == "boom":
            return httpx.Response(403, json={"error": "forbidden", "message": "token lacks ingest"})
        return httpx.Response(200, json={"appended": 1})

    sub = ServiceSubmitter(
        "http://svc", default_token="rbk_local", client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    req = pending_requests(reader)[1]
    ev = approval_event(
        config(), "alice@example.com", req, "grant", comment="plan ok", now=T0, ttl=timedelta(seconds=600)
    )
    r = sub.submit_approval(ev, token="rbk_alice")
    assert (r.event_id, r.seq) == ("approval:req-1:svc", 77)
    path, body, auth = seen[0]
    assert path == "/v1/approvals" and auth == "Bearer rbk_alice"
    assert body == {
        "request_id": "req-1",
        "decision": "grant",
        "digest": "e" * 64,
        "expires_in": 600.0,
        "note": "plan ok",
    }
    ack = acknowledgement_event(config(), "alice@example.com", reader.get("agent:alter-prod"), "done", now=T0)
    sub.submit_event(ack, token=None)
    assert (
        seen[1][0] == "/v1/events" and seen[1][2] == "Bearer rbk_local" and seen[1][1]["action"] == ACK_ACTION
    )
    from core.errors import ServiceError

    bad = acknowledgement_event(config(), "alice@example.com", reader.get("agent:alter-prod"), "boom", now=T0)
    with pytest.raises(ServiceError, match="forbidden: token lacks ingest"):
        sub.submit_event(bad, token=None)
