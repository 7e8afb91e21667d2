"""The engine: the rails on real-shaped events, batching = one-by-one, sequential approvals, gate mode."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import Config
from core.event import Actor, CanonicalEvent, Change, Resource
from policy import ApprovalBook, Decision, PolicyEngine
from tests.conftest import ASSETS
from tests.unit.core.strategies import events as any_events
from tests.unit.policy.conftest import AGENT, PROD_DB, STAGING_DB, T0, ev, grant


def test_the_incident_is_rails_1_2_3(engine: PolicyEngine, book: ApprovalBook) -> None:
    d = engine.evaluate([ev(resource=PROD_DB, env="prod")], approvals=book)[0]
    assert d.outcome == "deny"
    assert d.rails == (1, 2, 3)
    assert d.severity == "critical"
    assert d.policy_version == engine.version
    assert d.approval is not None and d.approval.status == "missing"
    assert {r.policy_id for r in d.reasons} == {
        "rail1-agent-in-prod",
        "rail2-prod-change-outside-pipeline",
        "rail3-destructive-without-approval",
    }
    assert all(r.title and r.remediation for r in d.reasons)
    assert Decision.from_dict(json.loads(json.dumps(d.to_dict()))) == d


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (ev("ci:Deploy", actor="pipeline:deploy", kind="pipeline", resource=PROD_DB, env="prod"), ()),
        (ev("file:Write", env="staging"), ()),
        (ev("sql:Select", actor="bob@example.com", kind="human", on_behalf_of=None, env="prod"), ()),
        (ev("sql:Insert", actor="bob@example.com", kind="human", on_behalf_of=None, env="prod"), (2,)),
        (ev("file:Write", env="staging", data_classes=("pci",)), (1,)),
        (ev("file:Write", change=Change(task="x")), (4,)),
        (ev("s3:GetObject", credential="arn:aws:iam::222222222222:user/bob"), (4,)),
        (ev("git:Push", attributes={"git.ref": "refs/heads/main"}), (2,)),
    ],
)
def test_rails_and_look_alikes(
    engine: PolicyEngine, book: ApprovalBook, event: CanonicalEvent, expected: tuple[int, ...]
) -> None:
    assert engine.evaluate([event], approvals=book)[0].rails == expected


def _cloudtrail(path: Path, config: Config, env: str) -> CanonicalEvent:
    """A test-only mapping of a real CloudTrail record (the adapter is built elsewhere)."""
    data = json.loads(path.read_text())
    if isinstance(data, dict):
        data = data.get("Records", [data])
    rec = data[0]
    ui = rec["userIdentity"]
    actor_id = ui["arn"]
    service = rec["eventSource"].split(".")[0]
    return CanonicalEvent(
        event_id=f"cloudtrail:{rec['eventID']}",
        occurred_at=T0,
        source="cloudtrail",
        actor=Actor(actor_id, config.actor_kind(actor_id), credential=ui.get("accessKeyId")),
        action=f"{service}:{rec['eventName']}",
        resource=Resource(
            f"arn:aws:{service}:::{rec['eventName']}", "aws", env, account=rec.get("recipientAccountId")
        ),
        attributes={"error_code": rec["errorCode"]} if rec.get("errorCode") else {},
    )


@pytest.mark.parametrize(
    ("fixture", "env", "policies"),
    [
        (
            "stratus-red-team/aws.defense-evasion.cloudtrail-stop.json",
            "prod",
            {"rail2-prod-change-outside-pipeline", "rail3-audit-tampering-without-approval"},
        ),
        (
            "stratus-red-team/aws.defense-evasion.cloudtrail-delete.json",
            "staging",
            {"rail3-audit-tampering-without-approval"},
        ),
        (
            "stratus-red-team/aws.persistence.iam-backdoor-user.json",
            "staging",
            {"rail3-destructive-without-approval"},
        ),
        ("stratus-red-team/aws.defense-evasion.vpc-remove-flow-logs.json", "dev", set()),
        ("awsdocs-iam-user-guide/iam.GetUserPolicy.IAMUser-console.json", "prod", set()),
        (
            "awsdocs-dynamodb-developer-guide/dynamodb.DeleteTable.Records.json",
            "staging",
            {"rail3-destructive-without-approval"},
        ),
    ],
)
def test_real_cloudtrail_records(
    engine: PolicyEngine, config: Config, book: ApprovalBook, fixture: str, env: str, policies: set[str]
) -> None:
    path = ASSETS / "cloudtrail" / fixture
    assert path.exists(), f"test asset {path} missing"
    d = engine.evaluate([_cloudtrail(path, config, env)], approvals=book)[0]
    assert set(d.policy_ids) == policies
    assert "unknown-action" not in d.notes


def test_unknown_action_destructive_only_where_configured(config: Config) -> None:
    eng = PolicyEngine.load(
        config.model_copy(
            update={"policy": config.policy.model_copy(update={"unknown_destructive_in": ["staging"]})}
        )
    )
    book = ApprovalBook(config)
    pipe = {"actor": "pipeline:x", "kind": "pipeline", "on_behalf_of": None}
    staging = eng.evaluate([ev("weird:Thing", env="staging", **pipe)], approvals=book)[0]  # type: ignore[arg-type]
    prod = eng.evaluate([ev("weird:Thing", env="prod", **pipe)], approvals=book)[0]  # type: ignore[arg-type]
    assert staging.policy_ids == ("rail3-destructive-without-approval",) and "unknown-action" in staging.notes
    assert prod.outcome == "allow" and "unknown-action" in prod.notes


def test_approval_earlier_in_the_batch_is_visible_and_consumed_once(
    engine: PolicyEngine, book: ApprovalBook
) -> None:
    a = ev(eid="a1", at=T0)
    b = ev(eid="a2", at=T0 + timedelta(seconds=1))
    d_grant, d1, d2 = engine.evaluate([grant(), a, b], approvals=book)
    assert d_grant.outcome == "allow" and d_grant.approval is None
    assert d1.outcome == "allow" and d1.approval is not None and d1.approval.status == "covered"
    assert d2.outcome == "deny" and d2.approval is not None and d2.approval.failures == ("already-used",)
    # a later grant does not reach back
    book2 = ApprovalBook(engine.config)
    first = engine.evaluate([a, grant(at=T0 - timedelta(seconds=5))], approvals=book2)[0]
    assert first.approval is not None and first.approval.status == "missing"


def test_re_evaluating_the_same_event_is_idempotent(engine: PolicyEngine, book: ApprovalBook) -> None:
    engine.evaluate([grant()], approvals=book)
    first = engine.evaluate([ev()], approvals=book)[0]
    again = engine.evaluate([ev()], approvals=book)[0]
    assert first == again and first.outcome == "allow"


def test_gate_ask_then_approve_then_allowed_once_then_execution_linked(
    engine: PolicyEngine, book: ApprovalBook
) -> None:
    ask = engine.evaluate([ev(eid="gate-1", attributes={"request_id": "r-9"})], approvals=book, mode="gate")[
        0
    ]
    assert ask.gate == "ask" and ask.mode == "gate"
    assert [p.request_id for p in book.pending()] == ["r-9"]
    engine.evaluate([grant(rid="r-9", at=T0 + timedelta(seconds=30))], approvals=book)
    assert book.pending() == [] and (state := book.get("r-9")) is not None and state.status == "granted"
    later = T0 + timedelta(minutes=1)
    ok = engine.evaluate(
        [ev(eid="gate-2", at=later, attributes={"request_id": "r-9"})], approvals=book, mode="gate"
    )[0]
    assert ok.gate == "allow"
    again = engine.evaluate(
        [ev(eid="gate-3", at=later, attributes={"request_id": "r-9"})], approvals=book, mode="gate"
    )[0]
    assert again.gate == "ask" and again.approval is not None and "already-used" in again.approval.failures
    executed = engine.evaluate([ev(eid="cloudtrail:x", at=later + timedelta(seconds=5))], approvals=book)[0]
    assert (
        executed.outcome == "allow"
        and executed.approval is not None
        and executed.approval.request_id == "r-9"
    )
    replayed = engine.evaluate([ev(eid="cloudtrail:y", at=later + timedelta(seconds=6))], approvals=book)[0]
    assert replayed.outcome == "deny"


def test_gate_denies_outright_when_a_rail_other_than_approval_fires(
    engine: PolicyEngine, book: ApprovalBook
) -> None:
    d = engine.evaluate([ev(resource=PROD_DB, env="prod")], approvals=book, mode="gate")[0]
    assert d.gate == "deny"
    allow = engine.evaluate([ev("file:Read")], approvals=book, mode="gate")[0]
    assert allow.gate == "allow" and allow.outcome == "allow"


def test_batch_of_many_dedups_but_decides_like_one_by_one(engine: PolicyEngine, config: Config) -> None:
    events = [ev("file:Write", eid=f"w{i}") for i in range(50)] + [ev(eid="x", resource=PROD_DB, env="prod")]
    batched = engine.evaluate(events, approvals=ApprovalBook(config))
    single = [engine.evaluate([e], approvals=ApprovalBook(config))[0] for e in events]
    assert batched == single
    assert batched[0] is batched[1]  # identical inputs share one decision


def test_same_actor_with_different_attributes_in_one_batch(engine: PolicyEngine, book: ApprovalBook) -> None:
    own = ev("s3:GetObject", eid="o", credential="arn:aws:sts::1:assumed-role/agent-a/s")
    borrowed = ev("s3:GetObject", eid="b", credential="arn:aws:iam::1:user/bob")
    d_own, d_borrowed = engine.evaluate([own, borrowed], approvals=book)
    assert d_own.outcome == "allow"
    assert d_borrowed.policy_ids == ("rail4-agent-with-human-credentials",)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(any_events, min_size=1, max_size=12))
def test_any_events_batched_equals_sequential(
    engine: PolicyEngine, config: Config, evs: list[CanonicalEvent]
) -> None:
    evs = [CanonicalEvent(**{**e.__dict__, "event_id": f"{i}:{e.event_id}"}) for i, e in enumerate(evs)]
    batched = engine.evaluate(evs, approvals=ApprovalBook(config))
    book = ApprovalBook(config)
    sequential = [engine.evaluate([e], approvals=book)[0] for e in evs]
    assert batched == sequential
    for d in batched:
        assert d.outcome in ("allow", "deny")
        assert (d.outcome == "deny") == bool(d.reasons)


def test_bad_mode_is_an_error(engine: PolicyEngine, book: ApprovalBook) -> None:
    from core.errors import PolicyError

    with pytest.raises(PolicyError, match="mode"):
        engine.evaluate([ev()], approvals=book, mode="nope")  # type: ignore[arg-type]


def test_agent_approval_book_kinds(config: Config) -> None:
    assert config.actor_kind(AGENT) == "agent"
    assert STAGING_DB != PROD_DB
