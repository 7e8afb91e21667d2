"""Approvals are event-sourced: a book rebuilt from history equals the book built while evaluating."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import Config
from policy import ApprovalBook, PolicyEngine
from tests.unit.policy.conftest import T0, ev, grant


def _history(engine: PolicyEngine, config: Config) -> tuple[ApprovalBook, list]:  # type: ignore[type-arg]
    book = ApprovalBook(config)
    events = [
        grant(eid="g1", rid="r1"),
        ev(eid="a1"),
        grant(eid="g2", rid="r2", action="sql:DropTable", at=T0 + timedelta(seconds=5)),
        ev("sql:DropTable", eid="a2", at=T0 + timedelta(seconds=10)),
        ev("sql:DropTable", eid="a3", at=T0 + timedelta(seconds=20)),
    ]
    decisions = engine.evaluate(events, approvals=book)
    gate_event = ev(
        "sql:Truncate", eid="gate-1", attributes={"request_id": "r3"}, at=T0 + timedelta(seconds=30)
    )
    decisions += engine.evaluate([gate_event], approvals=book, mode="gate")
    return book, list(zip([*events, gate_event], decisions, strict=True))


def test_rebuild_equals_live_state(engine: PolicyEngine, config: Config) -> None:
    live, records = _history(engine, config)
    rebuilt = ApprovalBook.rebuild(config, records)
    assert rebuilt.requests() == live.requests()
    assert [r.request_id for r in live.pending()] == ["r3"]
    assert live.get("r1") is not None and live.get("r1").status == "used"  # type: ignore[union-attr]
    assert live.get("r1").used_by == ("a1",)  # type: ignore[union-attr]
    assert live.get("r2").used_by == ("a2",)  # type: ignore[union-attr]
    assert live.get("nope") is None
    # observing again changes nothing (the engine already recorded it all)
    for event, decision in records:
        live.observe(event, decision)
    assert live.requests() == rebuilt.requests()


def test_rebuilt_book_decides_like_the_live_one(engine: PolicyEngine, config: Config) -> None:
    live, records = _history(engine, config)
    rebuilt = ApprovalBook.rebuild(config, records)
    probe = ev("sql:DropTable", eid="probe", at=T0 + timedelta(seconds=40))
    assert engine.evaluate([probe], approvals=live) == engine.evaluate([probe], approvals=rebuilt)


def test_denial_closes_a_pending_request(engine: PolicyEngine, config: Config) -> None:
    book, _ = _history(engine, config)
    engine.evaluate([grant(eid="d3", rid="r3", decision="deny", action="sql:Truncate")], approvals=book)
    assert book.pending() == [] and book.get("r3").status == "denied"  # type: ignore[union-attr]


def test_ttl_from_config(engine: PolicyEngine, config: Config) -> None:
    short = config.model_copy(
        update={"policy": config.policy.model_copy(update={"approval_ttl_seconds": 60})}
    )
    eng = PolicyEngine(short, engine.pack)
    book = ApprovalBook(short)
    d = eng.evaluate([grant(at=T0 - timedelta(seconds=90)), ev()], approvals=book)[1]
    assert d.approval is not None and d.approval.failures == ("expired",)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["grant", "act", "deny"]),
            st.sampled_from(
                ["alice@example.com", "bob@example.com", "agent:claude-code", "dave@example.com"]
            ),
            st.sampled_from(["sql:AlterTable", "sql:DropTable"]),
            st.integers(-1200, 1200),
        ),
        max_size=12,
    )
)
def test_rebuild_matches_live_for_any_history(engine: PolicyEngine, config: Config, steps: list) -> None:  # type: ignore[type-arg]
    events = []
    for i, (kind, who, action, secs) in enumerate(steps):
        at = T0 + timedelta(seconds=secs)
        if kind == "act":
            events.append(ev(action, eid=f"a{i}", at=at))
        else:
            events.append(grant(eid=f"g{i}", rid=f"r{i % 3}", by=who, action=action, at=at, decision=kind))
    live = ApprovalBook(config)
    decisions = engine.evaluate(events, approvals=live)
    rebuilt = ApprovalBook.rebuild(config, list(zip(events, decisions, strict=True)))
    assert rebuilt.requests() == live.requests()
    for d in decisions:
        if d.approval is not None and d.approval.status == "covered":
            assert d.outcome == "allow"


def test_long_expired_grants_leave_the_scope_index_of_a_busy_resource(config: Config) -> None:
    """Past 32 grants on a scope, grants expired more than a day ago stop being candidates (they
    stay in the request index); younger ones are kept, so "expired" is still named for them."""
    book = ApprovalBook(config)
    for i in range(40):
        book.record_approval(grant(eid=f"g{i}", rid=f"r{i}", at=T0 + timedelta(seconds=i)))
    book.record_approval(grant(eid="late", rid="late", at=T0 + timedelta(hours=30)))
    soon = book.find(ev(eid="a1", at=T0 + timedelta(hours=2)))
    assert soon.grant is None and soon.candidates == 41
    assert soon.failures == ("expired", "granted-after-action")
    later = book.find(ev(eid="a2", at=T0 + timedelta(days=2)))
    assert later.grant is None and later.candidates == 1 and later.failures == ("expired",)
    named = book.find(ev(eid="a3", at=T0 + timedelta(days=2), attributes={"request_id": "r0"}))
    assert named.candidates == 2  # the request index still names r0
