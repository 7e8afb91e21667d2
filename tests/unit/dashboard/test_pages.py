"""Every page through Streamlit's AppTest, over the fake reader and a recording submitter."""

from __future__ import annotations

from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import APP_PATH, open_backend
from dashboard._backend import Backend
from dashboard._ui_common import BACKEND_KEY
from tests.unit.dashboard.conftest import FakeReader, FakeSubmitter


def _app(backend: Backend, page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP_PATH), default_timeout=30)
    at.session_state[BACKEND_KEY] = backend
    at.run()
    if page:
        at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def make_backend(config: Any, reader: FakeReader) -> Any:
    def _make(**dashboard: Any) -> tuple[Backend, FakeSubmitter]:
        b = open_backend(config(dashboard=dashboard), reader=reader)
        sub = FakeSubmitter()
        b.submitter = sub
        return b, sub

    return _make


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [str(x.value) for x in at.caption]
    for kind in ("success", "error", "warning", "info"):
        parts += [str(x.value) for x in getattr(at, kind)]
    return "\n".join(parts)


def test_overview(make_backend: Any) -> None:
    b, _ = make_backend()
    at = _app(b)
    assert at.title[0].value == "Overview"
    metrics = {m.label: m.value for m in at.metric}
    # gate-mode "ask" answers are stopped actions, not violations: 2 of the 4 denies
    assert metrics["Entries"] == "18" and metrics["Violations"] == "2" and metrics["Open violations"] == "2"
    assert metrics["Active agents (30 d)"] == "2"
    assert "no signed checkpoint yet" in _texts(at)
    assert len(at.get("vega_lite_chart")) == 3


def test_events_filters_and_detail(make_backend: Any) -> None:
    b, _ = make_backend()
    at = _app(b, "events")
    assert len(at.dataframe[0].value) == 18
    at.selectbox(key="ev.outcome").set_value("deny").run()
    assert set(at.dataframe[0].value["decision"]) == {"deny"}
    at.text_input(key="ev.text").set_value("ALTER TABLE balances").run()
    assert list(at.dataframe[0].value["event_id"]) == ["agent:alter-prod"]
    assert "rail1-agent-in-prod" in _texts(at)
    at.text_input(key="ev.text").set_value("no-such-thing").run()
    assert "No events match these filters." in _texts(at)


def test_events_pagination(make_backend: Any) -> None:
    b, _ = make_backend(page_size=5)
    at = _app(b, "events")
    first = list(at.dataframe[0].value["seq"])
    assert first == [17, 16, 15, 14, 13]
    at.button(key="ev.next").click().run()
    assert list(at.dataframe[0].value["seq"]) == [12, 11, 10, 9, 8]
    at.button(key="ev.prev").click().run()
    assert list(at.dataframe[0].value["seq"]) == first


def test_violations_acknowledge_submits_an_event(make_backend: Any) -> None:
    b, sub = make_backend(local_user="alice@example.com")
    at = _app(b, "violations")
    assert list(at.dataframe[0].value["event_id"]) == ["github:push-1", "agent:alter-prod"]
    at.selectbox(key="vi.severity").set_value("critical").run()
    assert list(at.dataframe[0].value["event_id"]) == ["agent:alter-prod"]
    at.text_area(key="vi.comment").set_value("rolled back; see INC-42").run()
    at.button(key="vi.ack").click().run()
    assert len(sub.events) == 1
    ev = sub.events[0]
    assert ev.action == "railbook:Acknowledge" and ev.actor.id == "alice@example.com"
    assert (
        ev.attributes["acknowledges"] == "agent:alter-prod"
        and ev.attributes["comment"] == "rolled back; see INC-42"
    )
    assert "Acknowledged agent:alter-prod" in _texts(at)


def test_violations_read_only_without_sign_in(make_backend: Any) -> None:
    b, sub = make_backend()
    at = _app(b, "violations")
    assert at.button(key="vi.ack").disabled
    assert "Read-only" in _texts(at)
    assert sub.events == []


def test_approve_produces_an_approval_event(make_backend: Any) -> None:
    b, sub = make_backend(local_user="alice@example.com")
    at = _app(b, "approvals")
    assert "Pending (2)" in [s.value for s in at.subheader]
    at.text_input(key="ap.comment.req-1").set_value("checked the plan").run()
    at.button(key="ap.grant.req-1").click().run()
    assert len(sub.events) == 1
    ev = sub.events[0]
    assert ev.action == "approval:Grant" and ev.actor.id == "alice@example.com"
    assert (
        ev.approval is not None
        and ev.approval.request_id == "req-1"
        and ev.approval.action == "sql:DropTable"
    )
    assert ev.attributes["comment"] == "checked the plan"
    assert "Granted req-1 as alice@example.com" in _texts(at)
    at.button(key="ap.deny.req-2").click().run()
    assert sub.events[-1].action == "approval:Deny"


def test_instructing_human_is_refused_with_the_named_reason(make_backend: Any) -> None:
    b, sub = make_backend(local_user="bob@example.com")  # the agent acts on bob's instruction
    at = _app(b, "approvals")
    assert "approver-is-instructing-human" in _texts(at)
    at.button(key="ap.grant.req-1").click().run()
    assert sub.events == []
    assert "Refused — approver-is-instructing-human" in _texts(at)


def test_not_signed_in_is_refused(make_backend: Any) -> None:
    b, sub = make_backend()
    at = _app(b, "approvals")
    at.button(key="ap.grant.req-1").click().run()
    assert sub.events == [] and "not-signed-in" in _texts(at)


def test_evidence_answer(make_backend: Any) -> None:
    b, _ = make_backend()
    b.packer = lambda **q: b'{"format": "railbook-evidence/1"}'
    at = _app(b, "evidence")
    assert "Name a change" in _texts(at)
    at.text_input(key="evi.commit").set_value("fedcba9").run()
    table = at.table[0].value
    steps = dict(zip(table["step"], table["value"], strict=True))
    assert steps["on whose instruction"] == "bob@example.com"
    assert "granted by carol@example.com" in steps["approval"]
    at.button(key="evi.prep.0").click().run()
    assert len(at.get("download_button")) >= 1
    at.text_input(key="evi.commit").set_value("").run()
    at.text_input(key="evi.event_id").set_value("github:push-1").run()
    assert "Attribution gaps (rail 4): on_behalf_of, task_or_prompt, diff_sha256" in _texts(at)


def test_integrity_runs_verification(make_backend: Any, config: Any) -> None:
    b, _ = make_backend()
    calls: list[int] = []

    def verifier(progress: Any = None) -> dict[str, Any]:
        calls.append(1)
        progress(18, 18)
        return {"ok": True, "tree_size": 18}

    b.verifier = verifier
    at = _app(b, "integrity")
    assert "not verified yet" in _texts(at)
    at.button(key="in.verify").click().run()
    assert calls == [1]
    assert "Verification passed" in _texts(at)
    at.switch_page("pages/overview.py").run()
    assert "Integrity: verification passed" in _texts(at)


def test_integrity_proof_error_is_shown(make_backend: Any) -> None:
    b, _ = make_backend()
    at = _app(b, "integrity")
    at.text_input(key="in.event_id").set_value("agent:alter-prod").run()
    assert "cannot build proofs" in "\n".join(str(e.value) for e in at.error)
