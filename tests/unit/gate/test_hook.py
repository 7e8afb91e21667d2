"""The Claude Code hook contract: documented output shape, exit codes, fail-closed behaviour."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.config import Config
from policy import Reason
from railbook.gate import (
    GateAnswer,
    GateRequestError,
    GateSettings,
    GateUnreachableError,
    hook_output,
    run_hook,
)

DOCS = Path(__file__).resolve().parents[2] / "assets" / "agent-hooks" / "claude-code-doc-examples"
REASON = Reason(
    "rail3-destructive-without-approval", 3, "high", "A destructive action ran without a valid approval"
)


def _payload(command: str) -> str:
    doc = json.loads((DOCS / "01.PreToolUse.input.Bash.json").read_text())
    doc["tool_input"]["command"] = command
    return json.dumps(doc)


def _answer(decision: str) -> GateAnswer:
    return GateAnswer(
        decision=decision,  # type: ignore[arg-type]
        request_id="req-0123456789abcdef",
        reasons=(REASON,) if decision != "allow" else (),
        message=f"Railbook says {decision} (request req-0123456789abcdef)",
        policy_version="v",
        event_id="gate:req-0123456789abcdef",
    )


def _run(stdin: str, ask: Callable[[dict[str, Any]], GateAnswer], config: Config, **settings: Any) -> Any:
    return run_hook(stdin, ask=ask, settings=GateSettings(**settings), config=config, where="http://gate")


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    return make_config()


def test_output_matches_the_documented_shape() -> None:
    documented = json.loads((DOCS / "04.PreToolUse.output.deny.json").read_text())
    ours = hook_output("deny", "Database writes are not allowed")
    assert ours == documented


@pytest.mark.parametrize("decision", ["allow", "deny"])
def test_allow_and_deny_pass_through(decision: str, config: Config) -> None:
    res = _run(_payload("npm test"), lambda p: _answer(decision), config)
    assert res.exit_code == 0
    out = res.output["hookSpecificOutput"]
    assert out["hookEventName"] == "PreToolUse"
    assert out["permissionDecision"] == decision
    assert "req-0123456789abcdef" in out["permissionDecisionReason"]


def test_ask_becomes_deny_by_default_with_the_request_id(config: Config) -> None:
    res = _run(_payload("psql -c 'DROP TABLE x'"), lambda p: _answer("ask"), config)
    out = res.output["hookSpecificOutput"]
    assert out["permissionDecision"] == "deny"
    assert "req-0123456789abcdef" in out["permissionDecisionReason"]


def test_ask_as_ask_is_configurable(config: Config) -> None:
    res = _run(_payload("psql -c 'DROP TABLE x'"), lambda p: _answer("ask"), config, ask_as="ask")
    assert res.output["hookSpecificOutput"]["permissionDecision"] == "ask"


def test_allow_as_none_prints_nothing(config: Config) -> None:
    res = _run(_payload("npm test"), lambda p: _answer("allow"), config, allow_as="none")
    assert res.output is None and res.exit_code == 0


def _down(payload: dict[str, Any]) -> GateAnswer:
    raise GateUnreachableError("connection refused")


def test_unreachable_fails_closed_for_destructive(config: Config) -> None:
    res = _run(_payload("psql -h staging-db.internal -d app -c 'DROP TABLE users'"), _down, config)
    out = res.output["hookSpecificOutput"]
    assert out["permissionDecision"] == "deny"
    assert (
        "unreachable" in out["permissionDecisionReason"] and "fails closed" in out["permissionDecisionReason"]
    )


def test_unreachable_fails_open_for_reads(config: Config) -> None:
    res = _run(_payload("psql -h staging-db.internal -d app -c 'SELECT 1'"), _down, config)
    out = res.output["hookSpecificOutput"]
    assert out["permissionDecision"] == "allow"
    assert "fails open" in out["permissionDecisionReason"]


def test_unreachable_behaviour_is_configurable(config: Config) -> None:
    res = _run(
        _payload("psql -h staging-db.internal -d app -c 'DROP TABLE users'"),
        _down,
        config,
        on_unreachable_destructive="ask",
    )
    assert res.output["hookSpecificOutput"]["permissionDecision"] == "ask"


def test_refused_request_denies(config: Config) -> None:
    def refuse(p: dict[str, Any]) -> GateAnswer:
        raise GateRequestError("bad token", status=401, code="unauthorized")

    res = _run(_payload("npm test"), refuse, config)
    assert res.output["hookSpecificOutput"]["permissionDecision"] == "deny"


@pytest.mark.parametrize("stdin", ["not json", "[1, 2]"])
def test_unreadable_input_blocks_with_exit_2(stdin: str, config: Config) -> None:
    res = _run(stdin, lambda p: _answer("allow"), config)
    assert res.exit_code == 2 and res.output is None and res.stderr


def test_a_crash_blocks_with_exit_2_never_exit_1(config: Config) -> None:
    def boom(p: dict[str, Any]) -> GateAnswer:
        raise RuntimeError("bug")

    res = _run(_payload("npm test"), boom, config)
    assert res.exit_code == 2


def test_other_hook_events_are_ignored(config: Config) -> None:
    post = (DOCS / "03.PostToolUse.input.Write.json").read_text()
    res = _run(post, lambda p: pytest.fail("must not ask"), config)
    assert res.output is None and res.exit_code == 0
