"""The in-process gate over a real pipeline (DuckDB in a temp dir, the default policy pack)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.config import Config
from core.event import Actor, CanonicalEvent, Change, Resource, sha256_hex
from railbook.gate import (
    ApprovalRefusedError,
    Gate,
    GateAnswer,
    GateRequestError,
    NeededApproval,
    RequestStatus,
    UnknownRequestError,
    proposal_from_event,
    proposal_from_hook,
)

DROP = "psql -h staging-db.internal -d app -c 'DROP TABLE users'"


def hook(command: str, n: int = 0) -> dict[str, Any]:
    return {
        "session_id": "s1",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": command},
        "tool_use_id": f"toolu_{n}",
        "railbook_agent_id": "agent:claude-1",
        "railbook_on_behalf_of": "bob@example.com",
        "railbook_task": "JIRA-1 drop the old table",
    }


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    return make_config()


@pytest.fixture
def gate(config: Config) -> Iterator[Gate]:
    from railbook.wiring import open_pipeline

    with open_pipeline(config) as pipeline:
        yield Gate.in_process(pipeline)


def ask(gate: Gate, command: str = DROP, *, now: datetime | None = None) -> GateAnswer:
    return gate.ask(proposal_from_hook(hook(command), gate.config), now=now)


def test_round_trip_ask_approve_allow_once(gate: Gate) -> None:
    first = ask(gate)
    assert first.decision == "ask"
    assert first.request_id.startswith("req-") and first.event_id == f"gate:{first.request_id}"
    assert first.needed_approval is not None
    assert first.needed_approval.digest == sha256_hex(DROP.encode())
    assert [r.policy_id for r in first.reasons] == ["rail3-destructive-without-approval"]
    assert gate.status(first.request_id).status == "pending"

    receipt = gate.approve(first.request_id, approver="alice@example.com")
    assert receipt.scope == first.needed_approval
    assert gate.status(first.request_id).status == "approved"

    second = ask(gate)
    assert second.decision == "allow"
    assert second.approval is not None and second.approval.request_id == first.request_id
    assert gate.status(first.request_id).status == "used"
    assert gate.status(second.request_id).status == "allowed"

    third = ask(gate)
    assert third.decision == "ask"
    assert third.approval is not None and "already-used" in third.approval.failures


@pytest.mark.parametrize(
    ("approver", "code"),
    [
        ("agent:claude-1", "self-approval"),
        ("bob@example.com", "approver-is-instructing-human"),
        ("mallory@example.com", "not-an-approver"),
    ],
)
def test_separation_of_duties(gate: Gate, approver: str, code: str) -> None:
    first = ask(gate)
    with pytest.raises(ApprovalRefusedError) as info:
        gate.approve(first.request_id, approver=approver)
    assert info.value.code == code and info.value.status == 403
    assert gate.status(first.request_id).status == "pending"
    assert ask(gate).decision == "ask"


def test_a_changed_command_needs_a_new_approval(gate: Gate) -> None:
    first = ask(gate)
    gate.approve(first.request_id, approver="alice@example.com")
    changed = ask(gate, DROP + " ")
    assert changed.decision == "ask"
    assert changed.approval is not None and "digest-mismatch" in changed.approval.failures
    with pytest.raises(ApprovalRefusedError) as info:
        gate.approve(changed.request_id, approver="carol@example.com", digest=sha256_hex(DROP.encode()))
    assert info.value.code == "digest-mismatch"


def test_expiry_is_honoured(gate: Gate) -> None:
    first = ask(gate)
    gate.approve(first.request_id, approver="alice@example.com", expires_in=60)
    later = datetime.now(UTC) + timedelta(seconds=120)
    assert gate.status(first.request_id, now=later).status == "expired"
    again = ask(gate, now=later)
    assert again.decision == "ask"
    assert again.approval is not None and "expired" in again.approval.failures


def test_answered_once(gate: Gate) -> None:
    first = ask(gate)
    gate.approve(first.request_id, approver="alice@example.com", decision="deny")
    assert gate.status(first.request_id).status == "denied"
    with pytest.raises(ApprovalRefusedError) as info:
        gate.approve(first.request_id, approver="carol@example.com")
    assert info.value.code == "already-answered" and info.value.status == 409


def test_allowed_and_refused_requests_cannot_be_approved(gate: Gate) -> None:
    allowed = ask(gate, "npm test")
    assert allowed.decision == "allow"
    prod = ask(gate, "psql -h prod-db.internal -d app -c 'DROP TABLE users'")
    assert prod.decision == "deny"
    assert "rail1-agent-in-prod" in [r.policy_id for r in prod.reasons]
    assert gate.status(prod.request_id).status == "refused"
    for rid in (allowed.request_id, prod.request_id):
        with pytest.raises(ApprovalRefusedError) as info:
            gate.approve(rid, approver="alice@example.com")
        assert info.value.code == "not-awaiting-approval"


def test_unknown_request(gate: Gate) -> None:
    with pytest.raises(UnknownRequestError):
        gate.status("req-0000000000000000")
    with pytest.raises(UnknownRequestError):
        gate.approve("req-0000000000000000", approver="alice@example.com")


def test_every_request_and_answer_is_a_ledger_entry(gate: Gate) -> None:
    first = ask(gate)
    receipt = gate.approve(first.request_id, approver="alice@example.com")
    ledger = gate.backend.read(lambda p: p.ledger)
    entry = ledger.get(first.event_id)
    assert entry is not None and entry.seq == first.seq
    assert entry.event.source == "gate" and entry.decision.mode == "gate" and entry.decision.gate == "ask"
    assert entry.decision.policy_version == first.policy_version
    grant = ledger.get(receipt.event_id)
    assert grant is not None and grant.event.action == "approval:Grant"
    assert grant.event.actor.id == "alice@example.com"


def test_a_gate_request_skips_the_duplicate_lookup_but_an_approval_does_not(
    gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = gate.backend.read(lambda p: p.ledger)
    looked: list[list[str]] = []
    real = ledger.existing

    def spy(ids: Any) -> set[str]:
        ids = list(ids)
        looked.append(ids)
        return real(ids)

    monkeypatch.setattr(ledger, "existing", spy)
    first = ask(gate)
    assert looked == []  # the id was minted for this request: nothing to look up
    gate.approve(first.request_id, approver="alice@example.com")
    assert looked == [[f"approval:{first.request_id}"]]  # an approval may be a re-delivery


def test_a_colliding_request_id_is_refused_and_consumes_no_approval(
    gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    import railbook.gate._gate as gate_module
    from core.errors import GateError

    first = ask(gate)
    gate.approve(first.request_id, approver="alice@example.com")
    # the 1-in-2^64 case: the "fresh" id is one the ledger already holds
    monkeypatch.setattr(gate_module, "new_request_id", lambda: first.request_id)
    with pytest.raises(GateError, match="collided"):
        ask(gate)
    monkeypatch.undo()
    assert gate.status(first.request_id).status == "approved"  # the grant was not spent
    again = ask(gate)
    assert again.decision == "allow" and again.approval is not None
    assert again.approval.request_id == first.request_id


def test_ask_async_answers_after_the_commit_in_process_and_over_the_writer(config: Config) -> None:
    import asyncio

    from railbook.service.writer import Writer
    from railbook.wiring import open_pipeline

    with open_pipeline(config) as pipeline:
        local = Gate.in_process(pipeline)
        answer = asyncio.run(local.ask_async(proposal_from_hook(hook(DROP), config)))
        assert answer.decision == "ask" and pipeline.ledger.get(answer.event_id) is not None
    with Writer.for_config(config) as writer:
        remote = Gate.over_writer(writer, config)
        answer = asyncio.run(remote.ask_async(proposal_from_hook(hook(DROP, 1), config)))
        assert answer.decision == "ask" and answer.seq is not None
        entry = writer.call(lambda p: p.ledger.get(answer.event_id)).result(5)
        assert entry is not None and entry.seq == answer.seq


@pytest.mark.parametrize("use_async", [False, True])
def test_a_writer_timeout_fails_the_request_and_writes_nothing(config: Config, use_async: bool) -> None:
    import asyncio
    import threading

    from railbook.gate import WriterBackend
    from railbook.gate._gate import WriterTimeoutError
    from railbook.service.writer import Writer

    with Writer.for_config(config) as writer:
        release = threading.Event()
        busy = writer.call(lambda _p: release.wait(10))
        gate = Gate(WriterBackend(writer, config, timeout=0.2))
        proposal = proposal_from_hook(hook(DROP), config)
        with pytest.raises(WriterTimeoutError, match="did not commit"):
            if use_async:
                asyncio.run(gate.ask_async(proposal))
            else:
                gate.ask(proposal)
        release.set()
        busy.result(5)
        size = writer.call(lambda p: p.ledger.size).result(5)
    assert size == 0  # the request timed out before the writer took it: never recorded


def test_server_time_not_client_time(gate: Gate, config: Config) -> None:
    past = datetime(2020, 1, 1, tzinfo=UTC)
    ev = CanonicalEvent(
        event_id="client:1",
        occurred_at=past,
        source="agent",
        actor=Actor("agent:claude-1", "agent", on_behalf_of="bob@example.com"),
        action="sql:DropTable",
        resource=Resource("db://staging-db.internal/app", "database", "staging"),
        change=Change(task="t", diff_sha256="0" * 64),
    )
    answer = gate.ask(ev)
    entry = gate.backend.read(lambda p: p.ledger.get(answer.event_id))
    assert entry is not None and entry.event.occurred_at > past
    assert entry.event.attributes["gate.claimed_at"].startswith("2020-01-01")


def test_event_proposals_must_be_the_tokens_actor(config: Config) -> None:
    doc = {
        "event_id": "x:1",
        "occurred_at": "2026-01-01T00:00:00Z",
        "source": "agent",
        "actor": {"id": "agent:other"},
        "action": "sql:DropTable",
        "resource": {"id": "db://staging-db.internal/app"},
    }
    with pytest.raises(GateRequestError) as info:
        proposal_from_event(doc, config, actor="agent:claude-1")
    assert info.value.status == 403
    assert proposal_from_event(doc, config).actor.kind == "agent"


def test_hook_proposals_take_the_tokens_actor(config: Config) -> None:
    ev = proposal_from_hook(hook("npm test"), config, actor="agent:from-token")
    assert ev.actor.id == "agent:from-token"
    with pytest.raises(GateRequestError) as info:
        proposal_from_hook({**hook("npm test"), "hook_event_name": "PostToolUse"}, config)
    assert info.value.code == "not-pre-tool-use"


_text = st.text(min_size=1, max_size=20)
_sha = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


@given(
    decision=st.sampled_from(["allow", "deny", "ask"]),
    rid=_text,
    digest=st.none() | _sha,
    seq=st.none() | st.integers(min_value=0, max_value=2**40),
)
def test_answer_json_round_trip(decision: str, rid: str, digest: str | None, seq: int | None) -> None:
    na = NeededApproval("agent:a", "sql:DropTable", "db://h/d", digest, "staging", "bob@example.com")
    a = GateAnswer(decision, rid, (), "m", "v", f"gate:{rid}", seq, na)  # type: ignore[arg-type]
    assert GateAnswer.from_dict(a.to_dict()) == a


@given(status=st.sampled_from(["pending", "approved", "denied", "used", "expired", "allowed", "refused"]),
       used=st.lists(_text, max_size=3))  # fmt: skip
def test_status_json_round_trip(status: str, used: list[str]) -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    s = RequestStatus("req-1", status, "ask", "agent:a", requested_at=at, expires_at=at, used_by=tuple(used))  # type: ignore[arg-type]
    assert RequestStatus.from_dict(s.to_dict()) == s
