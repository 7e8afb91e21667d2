"""Deciding ahead (``PolicyEngine.prejudge``, serve's consumer process) and reusing those decisions
(``evaluate(known=...)``) decides exactly as evaluating everything in order does."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import Config
from core.errors import PolicyError
from core.event import CanonicalEvent
from policy import ApprovalBook, PolicyEngine
from tests.unit.policy.conftest import PROD_DB, T0, ev, grant
from tests.unit.policy.test_engine_fast import _event, _numbered, _split


@pytest.fixture(scope="module")
def consumer_side(config: Config) -> PolicyEngine:
    return PolicyEngine.load(config)


@pytest.fixture(scope="module")
def serve_side(config: Config) -> PolicyEngine:
    return PolicyEngine.load(config)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_event(), min_size=1, max_size=16), st.lists(st.integers(0, 16), max_size=4))
def test_decisions_made_ahead_equal_deciding_everything_in_order(
    engine: PolicyEngine,
    consumer_side: PolicyEngine,
    serve_side: PolicyEngine,
    config: Config,
    evs: list[CanonicalEvent],
    cuts: list[int],
) -> None:
    evs = _numbered(evs)
    ref_book = ApprovalBook(config)
    expected = [engine.evaluate([e], approvals=ref_book)[0] for e in evs]
    book = ApprovalBook(config)
    got = []
    for part in _split(evs, cuts):  # one serve batch each
        known = consumer_side.prejudge(part)
        got.extend(serve_side.evaluate(part, approvals=book, known=known))
    assert got == expected
    # the approval book saw every grant and use, in order: later destructive events agree too
    assert book.requests() == ref_book.requests()
    assert book.pending() == ref_book.pending()
    probe = [replace(e, event_id=f"probe{i}") for i, e in enumerate(evs)]
    assert serve_side.evaluate(probe, approvals=book) == engine.evaluate(probe, approvals=ref_book)


def test_only_events_no_approval_can_change_are_decided_ahead(
    consumer_side: PolicyEngine, config: Config
) -> None:
    events = [
        ev("sql:Select", eid="read"),
        ev("sql:DropTable", eid="drop", resource=PROD_DB, env="prod"),
        grant(eid="g1", resource=PROD_DB),
    ]
    ahead = consumer_side.prejudge(events)
    assert ahead[1] is None  # destructive: it depends on the approval book
    plain = consumer_side.evaluate(events, approvals=ApprovalBook(config))
    assert [ahead[0], ahead[2]] == [plain[0], plain[2]]


def test_an_approval_decided_ahead_is_recorded_in_order(
    consumer_side: PolicyEngine, serve_side: PolicyEngine, config: Config
) -> None:
    """alter (before the grant: unapproved) · grant · alter (covered): the grant, decided ahead,
    must reach the book between the two, not before the first nor after the second."""
    at = T0 + timedelta(minutes=1)
    events = [
        ev("sql:AlterTable", eid="a1", at=at),  # staging: an agent may, with an approval
        grant(eid="g1", at=at + timedelta(seconds=1)),
        ev("sql:AlterTable", eid="a2", at=at + timedelta(seconds=2)),
    ]
    known = consumer_side.prejudge(events)
    assert known[1] is not None and known[0] is None and known[2] is None
    got = serve_side.evaluate(events, approvals=ApprovalBook(config), known=known)
    one_by_one = ApprovalBook(config)
    assert got == [consumer_side.evaluate([e], approvals=one_by_one)[0] for e in events]
    assert got[0].outcome == "deny" and got[2].outcome == "allow"


def test_a_known_decision_serve_cannot_vouch_for_is_decided_again(
    consumer_side: PolicyEngine, serve_side: PolicyEngine, config: Config
) -> None:
    drop = ev("sql:DropTable", eid="drop", resource=PROD_DB, env="prod")
    read = ev("sql:Select", eid="read")
    allow = consumer_side.prejudge([read])[0]
    assert allow is not None and allow.outcome == "allow"
    truth = consumer_side.evaluate([drop, read], approvals=ApprovalBook(config))
    assert truth[0].outcome == "deny"
    # a decision offered for a destructive action, or made by another pack version, is not taken
    stale = replace(allow, policy_version="0" * 64)
    got = serve_side.evaluate([drop, read], approvals=ApprovalBook(config), known=[allow, stale])
    assert got == truth
    assert got[1].policy_version == serve_side.version


@pytest.mark.parametrize(
    ("mode", "known_len", "match"),
    [("gate", 1, "detect mode"), ("detect", 2, "one per event")],
)
def test_known_decisions_are_for_detect_mode_one_per_event(
    serve_side: PolicyEngine, config: Config, mode: Any, known_len: int, match: str
) -> None:
    with pytest.raises(PolicyError, match=match):
        serve_side.evaluate(
            [ev("sql:Select")], approvals=ApprovalBook(config), mode=mode, known=[None] * known_len
        )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_event(), min_size=1, max_size=16), st.integers(0, 15))
def test_deciding_an_event_that_touches_no_approval_twice_changes_nothing(
    engine: PolicyEngine, config: Config, evs: list[CanonicalEvent], at: int
) -> None:
    """``touches_approvals`` is what lets the pipeline leave such a duplicate to the ledger: a
    re-delivered (or forged) copy decided again leaves the book as it was, and decides as the
    first did. Every event it says touches nothing is one ``prejudge`` decides ahead."""
    evs = _numbered(evs)
    book = ApprovalBook(config)
    engine.evaluate(evs, approvals=book)
    ref_book = ApprovalBook(config)
    engine.evaluate(evs, approvals=ref_book)
    again = evs[at % len(evs)]
    assert engine.touches_approvals(again, "gate")
    if engine.touches_approvals(again):
        assert engine.prejudge([again])[0] is None or again.approval is not None
        return
    assert engine.prejudge([again])[0] is not None
    forged = replace(again, event_id=evs[0].event_id)  # an id the book may have seen on another event
    first = engine.evaluate([again], approvals=ApprovalBook(config))
    assert engine.evaluate([again, forged], approvals=book) == first * 2
    assert book.requests() == ref_book.requests()
    assert book.pending() == ref_book.pending()
    probe = [replace(e, event_id=f"probe{i}") for i, e in enumerate(evs)]
    assert engine.evaluate(probe, approvals=book) == engine.evaluate(probe, approvals=ref_book)


def test_what_touches_approvals(engine: PolicyEngine) -> None:
    assert not engine.touches_approvals(ev("sql:Select", eid="read"))
    assert engine.touches_approvals(ev("sql:DropTable", eid="drop", resource=PROD_DB, env="prod"))
    assert engine.touches_approvals(grant(eid="g1", resource=PROD_DB))  # it brings a grant in
    assert engine.touches_approvals(ev("sql:Select", eid="read"), "gate")  # the gate records requests
