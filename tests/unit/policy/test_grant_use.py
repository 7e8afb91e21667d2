"""A grant is consumed only by an answer that lets the action through.

Gate mode: only a gate ``allow`` consumes a grant; a ``deny`` (or ``ask``) for another rail leaves
it for the corrected request. Detect mode: the action already ran, so an event the grant covers
consumes it even when another rail flags the event (one approval, one run).
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import Config
from core.event import CanonicalEvent, Change
from policy import ApprovalBook, Decision, PolicyEngine
from tests.unit.policy.conftest import H2, PROD_DB, T0, ev, grant

UNATTRIBUTED = {"on_behalf_of": None, "change": Change()}


def _state(book: ApprovalBook, rid: str = "req-1") -> tuple[str, tuple[str, ...]]:
    s = book.get(rid)
    assert s is not None
    return s.status, s.used_by


def test_gate_deny_for_missing_attribution_leaves_the_grant_unused(
    engine: PolicyEngine, book: ApprovalBook
) -> None:
    engine.evaluate([grant()], approvals=book)
    denied = engine.evaluate([ev(eid="gate-1", **UNATTRIBUTED)], approvals=book, mode="gate")[0]  # type: ignore[arg-type]
    assert denied.gate == "deny" and denied.outcome == "deny"
    assert 4 in denied.rails and 3 not in denied.rails
    # the grant covers the request (so the answer explains that only attribution is missing) ...
    assert denied.approval is not None and denied.approval.status == "covered"
    # ... but a refused request does not spend it
    assert _state(book) == ("granted", ())
    fixed = engine.evaluate([ev(eid="gate-2", at=T0 + timedelta(seconds=5))], approvals=book, mode="gate")[0]
    assert fixed.gate == "allow" and fixed.approval is not None and fixed.approval.status == "covered"
    assert _state(book) == ("used", ("gate-2",))


def test_gate_deny_for_agent_in_prod_leaves_the_grant_unused(
    engine: PolicyEngine, book: ApprovalBook
) -> None:
    engine.evaluate([grant(resource=PROD_DB)], approvals=book)
    d = engine.evaluate([ev(eid="gate-1", resource=PROD_DB, env="prod")], approvals=book, mode="gate")[0]
    assert d.gate == "deny" and 1 in d.rails and 3 not in d.rails
    assert _state(book) == ("granted", ())


def test_execution_after_a_refused_gate_request_inherits_no_grant(
    engine: PolicyEngine, book: ApprovalBook
) -> None:
    """The audit record of a run cannot carry the digest; only an *allowed* request passes its grant on."""
    engine.evaluate([grant(digest=H2)], approvals=book)
    refused = engine.evaluate([ev(eid="gate-1", on_behalf_of=None)], approvals=book, mode="gate")[0]
    assert refused.gate == "deny" and refused.approval is not None and refused.approval.status == "covered"
    executed = engine.evaluate(
        [ev(eid="cloudtrail:x", at=T0 + timedelta(seconds=5), source="cloudtrail", change=Change())],
        approvals=book,
    )[0]
    assert "rail3-destructive-without-approval" in executed.policy_ids
    assert executed.approval is not None and executed.approval.failures == ("digest-mismatch",)
    assert _state(book) == ("granted", ())


def test_execution_after_an_allowed_gate_request_uses_its_grant(
    engine: PolicyEngine, book: ApprovalBook
) -> None:
    engine.evaluate([grant(digest=H2)], approvals=book)
    allowed = engine.evaluate([ev(eid="gate-1")], approvals=book, mode="gate")[0]
    assert allowed.gate == "allow"
    executed = engine.evaluate(
        [ev(eid="cloudtrail:x", at=T0 + timedelta(seconds=5), source="cloudtrail", change=Change())],
        approvals=book,
    )[0]
    assert executed.outcome == "allow" and executed.approval is not None
    assert executed.approval.request_id == "req-1"
    assert _state(book) == ("used", ("gate-1", "cloudtrail:x"))


def test_gate_deny_then_allow_in_one_batch_equals_one_by_one(engine: PolicyEngine, config: Config) -> None:
    events = [
        grant(),
        ev(eid="gate-1", **UNATTRIBUTED),  # type: ignore[arg-type]
        ev(eid="gate-2", at=T0 + timedelta(seconds=1)),
        ev(eid="gate-3", at=T0 + timedelta(seconds=2)),
    ]
    batched_book = ApprovalBook(config)
    batched = engine.evaluate(events, approvals=batched_book, mode="gate")
    book = ApprovalBook(config)
    single = [engine.evaluate([e], approvals=book, mode="gate")[0] for e in events]
    assert batched == single
    assert [d.gate for d in batched[1:]] == ["deny", "allow", "ask"]
    assert batched[3].approval is not None and batched[3].approval.failures == ("already-used",)
    assert _state(batched_book) == _state(book) == ("used", ("gate-2",))


def test_rebuilt_book_does_not_spend_a_grant_on_a_refused_gate_request(
    engine: PolicyEngine, config: Config
) -> None:
    live = ApprovalBook(config)
    events = [grant(), ev(eid="gate-1", **UNATTRIBUTED)]  # type: ignore[arg-type]
    decisions = engine.evaluate(events[:1], approvals=live) + engine.evaluate(
        events[1:], approvals=live, mode="gate"
    )
    rebuilt = ApprovalBook.rebuild(config, list(zip(events, decisions, strict=True)))
    assert rebuilt.requests() == live.requests()
    assert _state(rebuilt) == ("granted", ())


def test_detect_event_denied_for_another_rail_still_consumes_the_grant(
    engine: PolicyEngine, book: ApprovalBook
) -> None:
    """Decided: it ran, and the approval was for exactly that run, so the grant is spent."""
    engine.evaluate([grant()], approvals=book)
    ran = engine.evaluate([ev(eid="a1", **UNATTRIBUTED)], approvals=book)[0]  # type: ignore[arg-type]
    assert ran.outcome == "deny" and ran.rails == (4,)
    assert ran.approval is not None and ran.approval.status == "covered"
    assert _state(book) == ("used", ("a1",))
    again = engine.evaluate([ev(eid="a2", at=T0 + timedelta(seconds=1))], approvals=book)[0]
    assert again.rails == (3,) and again.approval is not None and again.approval.failures == ("already-used",)


_STEPS = st.lists(
    st.tuples(
        st.sampled_from(["grant", "ok", "unattributed", "prod", "deny"]),
        st.integers(-300, 300),
    ),
    max_size=10,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_STEPS)
def test_gate_batched_equals_sequential_and_only_allows_spend(
    engine: PolicyEngine, config: Config, steps: list[tuple[str, int]]
) -> None:
    events: list[CanonicalEvent] = []
    for i, (kind, secs) in enumerate(steps):
        at = T0 + timedelta(seconds=secs)
        if kind in ("grant", "deny"):
            events.append(grant(eid=f"g{i}", rid=f"r{i % 2}", at=at, decision=kind))
        elif kind == "ok":
            events.append(ev(eid=f"q{i}", at=at))
        elif kind == "unattributed":
            events.append(ev(eid=f"q{i}", at=at, **UNATTRIBUTED))  # type: ignore[arg-type]
        else:
            events.append(ev(eid=f"q{i}", at=at, env="prod"))
    live = ApprovalBook(config)
    batched = engine.evaluate(events, approvals=live, mode="gate")
    book = ApprovalBook(config)
    single: list[Decision] = [engine.evaluate([e], approvals=book, mode="gate")[0] for e in events]
    assert batched == single
    assert live.requests() == book.requests()
    spent = {eid for s in live.requests() for eid in s.used_by}
    for e, d in zip(events, batched, strict=True):
        covered = d.approval is not None and d.approval.status == "covered"
        assert (e.event_id in spent) == (d.gate == "allow" and covered)
    rebuilt = ApprovalBook.rebuild(config, list(zip(events, batched, strict=True)))
    assert rebuilt.requests() == live.requests()
