"""``ApprovalBook.find`` (one pass, checking each candidate as it is found) answers exactly as
the two-pass search it replaced: collect every candidate, then check them in order."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import Config
from core.event import CanonicalEvent, Change
from policy import ApprovalBook
from tests.unit.policy.conftest import H1, H2, PROD_DB, STAGING_DB, T0, ev, grant

_ACTORS = ["agent:a", "agent:b", "agent:a", "carol@example.com"]
_ACTIONS = ["sql:AlterTable", "sql:DropTable"]
_RESOURCES = [STAGING_DB, PROD_DB]
_RIDS = ["r1", "r2", "r3"]
# approvers (DEMO_CONFIG: alice, carol) most of the time, so that several grants often cover a probe
_APPROVERS = ["alice@example.com", "carol@example.com", "carol@example.com", "bob@example.com", "agent:a"]

_grants = st.builds(
    lambda by, rid, actor, action, resource, minutes, decision, digest, ttl: grant(
        eid="x",
        by=by,
        rid=rid,
        actor=actor,
        action=action,
        resource=resource,
        at=T0 + timedelta(minutes=minutes),
        decision=decision,
        digest=digest,
        expires_at=None if ttl is None else T0 + timedelta(minutes=minutes + ttl),
    ),
    st.sampled_from(_APPROVERS),
    st.sampled_from(_RIDS),
    st.sampled_from(_ACTORS),
    st.sampled_from(_ACTIONS),
    st.sampled_from(_RESOURCES),
    st.integers(-30, 10),
    st.sampled_from(["grant", "grant", "grant", "deny"]),
    st.sampled_from([None, None, H1, H2]),
    st.none() | st.integers(1, 60),
)
_probes = st.builds(
    lambda actor, action, resource, minutes, obo, diff, rid: ev(
        action,
        eid="x",
        actor=actor,
        on_behalf_of=obo,
        resource=resource,
        at=T0 + timedelta(minutes=minutes),
        change=Change(task="t", diff_sha256=diff),
        attributes={"request_id": rid} if rid else None,
    ),
    st.sampled_from(_ACTORS),
    st.sampled_from(_ACTIONS),
    st.sampled_from(_RESOURCES),
    st.integers(-10, 40),
    st.sampled_from([None, "bob@example.com"]),
    st.sampled_from([H2, H1, None]),
    st.none() | st.sampled_from(_RIDS),
)


def _two_pass(book: ApprovalBook, event: CanonicalEvent, mode: Any) -> tuple[Any, int, tuple[str, ...]]:
    """The search before 2026-12-07, on the book's indexes: (first covering grant, candidates,
    failures)."""
    rid = event.attributes.get("request_id") if event.attributes else None
    actor, action, resource = event.actor.id, event.action, event.resource.id
    sources = (
        book._by_request.get(rid, ()) if rid else (),
        book._by_resource.get(resource) or (),
        book._by_actor_action.get((actor, action)) or (),
    )
    candidates, seen = [], set()
    for group in sources:
        for g in group:
            if g.event_id in seen:
                continue
            seen.add(g.event_id)
            same = (g.actor == actor) + (g.action == action) + (g.resource == resource)
            if (rid and g.request_id == rid) or same >= 2:
                candidates.append(g)
    failures: set[str] = set()
    for g in candidates:
        reasons = []
        if g.decision != "grant":
            failures.add("denied")
            continue
        reasons += ["denied"] if g.request_id in book._denied else []
        reasons += ["self-approval"] if g.approver == actor else []
        obo = event.actor.on_behalf_of
        reasons += ["approver-is-instructing-human"] if obo and g.approver == obo else []
        reasons += [] if book._is_approver(g.approver) else ["not-an-approver"]
        reasons += ["actor-mismatch"] if g.actor != actor else []
        reasons += ["action-mismatch"] if g.action != action else []
        reasons += ["resource-mismatch"] if g.resource != resource else []
        diff = event.change.diff_sha256
        reasons += ["digest-mismatch"] if g.digest is not None and g.digest != diff else []
        if g.granted_at > event.occurred_at:
            reasons.append("granted-after-action")
        elif event.occurred_at > g.expires_at:
            reasons.append("expired")
        reasons += ["already-used"] if g.uses and book._used_up(g, event.event_id, mode) else []
        if not reasons:
            return g, len(candidates), ()
        failures.update(reasons)
    return None, len(candidates), tuple(sorted(failures))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(st.booleans(), _grants, _probes, st.booleans()), min_size=1, max_size=40),
    st.sampled_from(["detect", "gate"]),
)
def test_find_answers_as_the_two_pass_search(config: Config, steps: list[Any], mode: Any) -> None:
    book = ApprovalBook(config)
    for k, (is_grant, g, probe, spend) in enumerate(steps):
        if is_grant:
            book.record_approval(_named(g, f"g{k}"))
            continue
        probe = _named(probe, f"p{k}")
        found = book.find(probe, mode)
        grant_, candidates, failures = _two_pass(book, probe, mode)
        assert found.grant is grant_
        assert found.failures == failures
        if grant_ is None:
            assert found.candidates == candidates
        else:  # the search stops at the covering grant
            assert 0 < found.candidates <= candidates
        if spend and found.grant is not None:
            book.use(found.grant, probe.event_id, mode)


def test_of_two_covering_grants_the_first_recorded_is_found(config: Config) -> None:
    book = ApprovalBook(config)
    book.record_approval(grant(eid="g1", rid="r1", by="alice@example.com"))
    book.record_approval(grant(eid="g2", rid="r2", by="carol@example.com"))
    found = book.find(ev(eid="e1"))
    assert found.grant is not None and found.grant.request_id == "r1" and found.candidates == 1
    book.use(found.grant, "e1", "detect")
    again = book.find(ev(eid="e2"))
    assert again.grant is not None and again.grant.request_id == "r2" and again.candidates == 2


def _named(event: CanonicalEvent, eid: str) -> CanonicalEvent:
    return ev(
        event.action,
        eid=eid,
        actor=event.actor.id,
        kind=event.actor.kind,
        on_behalf_of=event.actor.on_behalf_of,
        resource=event.resource.id,
        at=event.occurred_at,
        change=event.change,
        attributes=dict(event.attributes),
        approval=event.approval,
        source=event.source,
    )
