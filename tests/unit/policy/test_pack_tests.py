"""The shipped policy tests pass, and the runner reports failures readably."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import PolicyTestError
from policy import DEFAULT_PACK_DIR, PolicyEngine, run_policy_tests

SHIPPED = DEFAULT_PACK_DIR / "tests"


def test_shipped_pack_tests_pass(engine: PolicyEngine) -> None:
    report = run_policy_tests(engine, SHIPPED)
    assert [f.render() for f in report.failures] == []
    assert report.ok and report.passed >= 60
    names = {name for _, name, _ in report.results}
    for needle in (
        "pipeline deploys to production",
        "in staging",
        "valid approval",
        "human reading production",
    ):
        assert any(needle in n for n in names), needle


def test_every_approval_failure_mode_has_its_own_test(engine: PolicyEngine) -> None:
    text = (SHIPPED / "approvals.yaml").read_text()
    for reason in (
        "self-approval",
        "approver-is-instructing-human",
        "not-an-approver",
        "action-mismatch",
        "resource-mismatch",
        "actor-mismatch",
        "expired",
        "already-used",
        "digest-mismatch",
        "granted-after-action",
        "denied",
    ):
        assert f"- {reason}" in text, reason


def test_a_failing_test_shows_a_readable_diff(engine: PolicyEngine, tmp_path: Path) -> None:
    f = tmp_path / "t.json"
    f.write_text(
        '{"tests": [{"name": "wrong", "event": {"actor": {"id": "agent:x", "on_behalf_of": "b@example.com"},'
        ' "action": "sql:AlterTable", "resource": {"id": "db://prod-db.internal/x", "environment": "prod"}},'
        ' "expect": {"outcome": "allow", "policies": ["rail1-agent-in-prod", "nope"], "gate": "ask"}}]}'
    )
    report = run_policy_tests(engine, f)
    assert not report.ok and report.passed == 0
    text = report.failures[0].render()
    assert "outcome: expected allow, got deny" in text
    assert "policies: missing ['nope']; unexpected ['rail2-prod-change-outside-pipeline', 'rail3-" in text
    assert "gate: expected ask, got None" in text
    assert "rail1-agent-in-prod (rail 1, critical)" in text


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("tests: []", "tests"),
        ("tests: [{name: x, event: {}, expect: {outcome: maybe}}]", "outcome"),
        ("tests: [{name: x, event: {action: 'noverb'}, expect: {outcome: allow}}]", "not a canonical event"),
        ("{{{", "cannot be read"),
    ],
)
def test_malformed_test_files(engine: PolicyEngine, tmp_path: Path, content: str, match: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(content)
    with pytest.raises(PolicyTestError, match=match):
        run_policy_tests(engine, f)


def test_no_test_files(engine: PolicyEngine, tmp_path: Path) -> None:
    with pytest.raises(PolicyTestError, match="no"):
        run_policy_tests(engine, tmp_path)
