"""Bypass detection: an agent's destructive action seen only in CloudTrail, with and without a gate
request for it (real DuckDB ledger on disk, the default policy pack, the real CloudTrail adapter).

The CloudTrail record is synthetic (no public sample of rds:DeleteDBInstance exists; see
shared/fixtures/PROVENANCE.md): its shape follows the AssumedRole records of the AWS docs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.config import Config
from core.event import Actor, CanonicalEvent, Change, Resource, format_time, sha256_hex
from ingest import normalise_record
from railbook.gate import Gate

pytestmark = pytest.mark.integration

ROLE = "arn:aws:iam::222222222222:role/agent-claude"
DB = "arn:aws:rds:eu-west-1:222222222222:db:orders-staging"
COMMAND = "aws rds delete-db-instance --db-instance-identifier orders-staging --skip-final-snapshot"


def cloudtrail(event_id: str, at: datetime) -> dict[str, Any]:
    return {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:claude-1",
            "arn": "arn:aws:sts::222222222222:assumed-role/agent-claude/claude-1",
            "accountId": "222222222222",
            "accessKeyId": "ASIAEXAMPLEEXAMPLE",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "arn": ROLE,
                    "accountId": "222222222222",
                    "userName": "agent-claude",
                }
            },
        },
        "eventTime": format_time(at).replace(".000000", ""),
        "eventSource": "rds.amazonaws.com",
        "eventName": "DeleteDBInstance",
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "192.0.2.1",
        "userAgent": "aws-cli/2.15",
        "requestParameters": {"dBInstanceIdentifier": "orders-staging", "skipFinalSnapshot": True},
        "responseElements": None,
        "requestID": f"req-{event_id}",
        "eventID": event_id,
        "eventType": "AwsApiCall",
        "recipientAccountId": "222222222222",
    }


@pytest.fixture
def gate(make_config: Callable[..., Config]) -> Iterator[Gate]:
    from railbook.wiring import open_pipeline

    with open_pipeline(make_config()) as pipeline:
        yield Gate.in_process(pipeline)


def ingest(gate: Gate, record: dict[str, Any]) -> Any:
    events = normalise_record(record, source="cloudtrail", where="test", config=gate.config)
    summary = gate.backend.submit(events, "detect")
    ((_, event, decision),) = summary.entries
    return event, decision


def proposal() -> CanonicalEvent:
    return CanonicalEvent(
        event_id="agent:proposal-1",
        occurred_at=datetime.now(UTC),
        source="agent",
        actor=Actor("agent:claude-1", "agent", on_behalf_of="bob@example.com", session="s1", credential=ROLE),
        action="rds:DeleteDBInstance",
        resource=Resource(DB, "rds-instance", "staging", "222222222222"),
        change=Change(task="JIRA-9 retire orders-staging", diff_sha256=sha256_hex(COMMAND.encode())),
    )


def test_no_gate_request_is_a_bypass(gate: Gate) -> None:
    event, decision = ingest(gate, cloudtrail("ct-bypass-1", datetime.now(UTC)))
    assert event.actor.kind == "agent" and event.resource.environment == "staging"
    assert decision.is_violation
    assert "rail3-gate-bypass" in decision.policy_ids


def test_a_granted_gate_request_is_linked_not_flagged(gate: Gate) -> None:
    first = gate.ask(proposal())
    assert first.decision == "ask"
    gate.approve(first.request_id, approver="alice@example.com")
    second = gate.ask(proposal())
    assert second.decision == "allow"

    event, decision = ingest(gate, cloudtrail("ct-linked-1", datetime.now(UTC) + timedelta(seconds=1)))
    assert "rail3-gate-bypass" not in decision.policy_ids
    assert not decision.is_violation, decision.reasons
    assert decision.approval is not None and decision.approval.status == "covered"
    assert decision.approval.request_id == first.request_id
    assert gate.status(first.request_id).used_by == (second.event_id, event.event_id)

    # the gate said yes to one run: a second deletion is not covered again
    _, again = ingest(gate, cloudtrail("ct-linked-2", datetime.now(UTC) + timedelta(seconds=2)))
    assert again.is_violation


def test_a_request_outside_the_window_does_not_link(make_config: Callable[..., Config]) -> None:
    from railbook.wiring import open_pipeline

    with open_pipeline(make_config(policy={"bypass_window_seconds": 60})) as pipeline:
        gate = Gate.in_process(pipeline)
        gate.ask(proposal())
        _, decision = ingest(gate, cloudtrail("ct-late-1", datetime.now(UTC) + timedelta(minutes=5)))
    assert "rail3-gate-bypass" in decision.policy_ids
