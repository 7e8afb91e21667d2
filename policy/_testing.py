"""Policy unit tests: an event in, the expected decision and policy ids out (``railbook policy test``).

A test file is YAML or JSON::

    config:                      # optional: merged over the running configuration, per section
      identities: {approvers: ["alice@example.com"]}
    tests:
      - name: agent alters a prod table without approval
        given: [ ... ]           # optional earlier events (approvals), evaluated first, in order
        mode: detect             # or gate
        event:                   # a canonical event; omitted fields get defaults (see below)
          actor: {id: "agent:claude", on_behalf_of: "bob@example.com"}
          action: sql:AlterTable
          resource: {id: "db://prod-db.internal/payments", environment: prod}
        expect:
          outcome: deny
          policies: [rail1-agent-in-prod, rail2-prod-change-outside-pipeline,
                     rail3-destructive-without-approval]
          rails: [1, 2, 3]       # optional, like severity, approval, gate and notes

Event defaults: ``event_id`` (file, test and position), ``occurred_at`` 2026-01-05T09:00:00Z,
``source`` "test", and ``actor.kind`` from configuration (``[identities]``), as an adapter would.
``policies`` is compared as a set and must match exactly; the other expectations only when given.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.config import Config
from core.errors import NormaliseError, PolicyTestError
from core.event import CanonicalEvent, event_from_dict
from policy._approvals import ApprovalBook

if TYPE_CHECKING:
    from policy._decision import Decision
    from policy._engine import PolicyEngine

__all__ = ["PolicyTestReport", "TestFailure", "load_test_file", "run_policy_tests"]

logger = logging.getLogger(__name__)

DEFAULT_TIME = "2026-01-05T09:00:00Z"
_SUFFIXES = (".yaml", ".yml", ".json")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ApprovalExpect(_Strict):
    status: Literal["not-needed", "covered", "missing", "invalid"] | None = None
    failures: list[str] | None = None
    request_id: str | None = None


class _Expect(_Strict):
    outcome: Literal["allow", "deny"]
    policies: list[str] = Field(default_factory=list)
    rails: list[int] | None = None
    severity: Literal["info", "low", "medium", "high", "critical"] | None = None
    approval: _ApprovalExpect | None = None
    gate: Literal["allow", "deny", "ask"] | None = None
    notes: list[str] | None = None


class _Case(_Strict):
    name: str = Field(min_length=1)
    given: list[dict[str, Any]] = Field(default_factory=list)
    mode: Literal["detect", "gate"] = "detect"
    event: dict[str, Any]
    expect: _Expect


class _File(_Strict):
    description: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    tests: list[_Case] = Field(min_length=1)


@dataclass(frozen=True)
class TestFailure:
    """One failing test and what differed."""

    __test__ = False  # not a pytest class

    file: str
    name: str
    problems: tuple[str, ...]
    """One line per difference: ``policies: missing ['x']; unexpected ['y']``."""
    decision: dict[str, Any] | None = None

    def render(self) -> str:
        lines = [f"FAIL {self.file} :: {self.name}"]
        lines += [f"    {p}" for p in self.problems]
        if self.decision and self.decision.get("reasons"):
            lines.append("    decision reasons:")
            lines += [
                f"      - {r['policy_id']} (rail {r['rail']}, {r['severity']}): {r['title']}"
                for r in self.decision["reasons"]
            ]
        return "\n".join(lines)


@dataclass(frozen=True)
class PolicyTestReport:
    """What ``run_policy_tests`` found."""

    passed: int
    failures: tuple[TestFailure, ...]
    files: tuple[str, ...]
    policy_version: str
    results: tuple[tuple[str, str, bool], ...] = field(default=())
    """(file, test name, passed) for every test, in order."""

    @property
    def ok(self) -> bool:
        return not self.failures and self.passed > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "passed": self.passed,
            "failed": len(self.failures),
            "files": list(self.files),
            "policy_version": self.policy_version,
            "failures": [
                {"file": f.file, "name": f.name, "problems": list(f.problems), "decision": f.decision}
                for f in self.failures
            ],
        }


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_test_file(path: Path) -> Any:
    """Read a YAML or JSON test file into a validated model (``PolicyTestError`` names the problem)."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise PolicyTestError(f"{path}: cannot be read as {path.suffix[1:].upper()}: {exc}") from exc
    try:
        return _File.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise PolicyTestError(
            f"{path}: not a policy test file: {problems} (expected 'tests: [{{name, event, expect}}]')"
        ) from None


def _event(raw: dict[str, Any], config: Config, event_id: str, where: str) -> CanonicalEvent:
    data: dict[str, Any] = {"event_id": event_id, "occurred_at": DEFAULT_TIME, "source": "test", **raw}
    actor = dict(data.get("actor") or {})
    if "id" in actor and "kind" not in actor:
        actor["kind"] = config.actor_kind(actor["id"])
    data["actor"] = actor
    try:
        return event_from_dict(data, where=where)
    except NormaliseError as exc:
        raise PolicyTestError(f"{exc}; fix the event in the test file") from exc


def _compare(expect: _Expect, d: Decision) -> list[str]:
    problems: list[str] = []
    if d.outcome != expect.outcome:
        problems.append(f"outcome: expected {expect.outcome}, got {d.outcome}")
    want, got = set(expect.policies), set(d.policy_ids)
    if want != got:
        problems.append(f"policies: missing {sorted(want - got)}; unexpected {sorted(got - want)}")
    if expect.rails is not None and sorted(expect.rails) != list(d.rails):
        problems.append(f"rails: expected {sorted(expect.rails)}, got {list(d.rails)}")
    if expect.severity is not None and expect.severity != d.severity:
        problems.append(f"severity: expected {expect.severity}, got {d.severity}")
    if expect.gate is not None and expect.gate != d.gate:
        problems.append(f"gate: expected {expect.gate}, got {d.gate}")
    if expect.notes is not None and sorted(expect.notes) != list(d.notes):
        problems.append(f"notes: expected {sorted(expect.notes)}, got {list(d.notes)}")
    if expect.approval is not None:
        ap = d.approval
        e = expect.approval
        if ap is None:
            problems.append(
                f"approval: expected {e.model_dump(exclude_none=True)}, got none (not destructive)"
            )
        else:
            if e.status is not None and e.status != ap.status:
                problems.append(f"approval.status: expected {e.status}, got {ap.status}")
            if e.failures is not None and sorted(e.failures) != sorted(ap.failures):
                problems.append(
                    f"approval.failures: expected {sorted(e.failures)}, got {sorted(ap.failures)}"
                )
            if e.request_id is not None and e.request_id != ap.request_id:
                problems.append(f"approval.request_id: expected {e.request_id}, got {ap.request_id}")
    return problems


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise PolicyTestError(f"{path}: no such test file or directory")
    found = sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES and p.is_file())
    if not found:
        raise PolicyTestError(f"{path}: no *.yaml, *.yml or *.json policy test files found")
    return found


def run_policy_tests(engine: PolicyEngine, path: Path) -> PolicyTestReport:
    """Run every test file under ``path`` (a file or a directory) against ``engine``'s pack."""
    from policy._engine import PolicyEngine  # local: _engine does not import this module

    files = _files(Path(path))
    passed = 0
    failures: list[TestFailure] = []
    results: list[tuple[str, str, bool]] = []
    for file in files:
        spec = load_test_file(file)
        config = engine.config
        if spec.config:
            try:
                config = Config.model_validate(
                    _merge(config.model_dump(exclude={"source_path"}), spec.config)
                )
            except ValidationError as exc:
                raise PolicyTestError(
                    f"{file}: 'config' is not a valid railbook configuration: {exc}"
                ) from None
        eng = engine if config is engine.config else PolicyEngine(config, engine.pack)
        for n, case in enumerate(spec.tests):
            where = f"{file.name} :: {case.name}"
            book = ApprovalBook(config)
            given = [
                _event(g, config, f"{file.stem}#{n}:given{k}", f"{where} (given[{k}])")
                for k, g in enumerate(case.given)
            ]
            if given:
                eng.evaluate(given, approvals=book, mode="detect")
            event = _event(case.event, config, f"{file.stem}#{n}", where)
            decision = eng.evaluate([event], approvals=book, mode=case.mode)[0]
            problems = _compare(case.expect, decision)
            results.append((str(file), case.name, not problems))
            if problems:
                failures.append(TestFailure(str(file), case.name, tuple(problems), decision.to_dict()))
            else:
                passed += 1
    logger.info("policy tests passed=%d failed=%d files=%d", passed, len(failures), len(files))
    return PolicyTestReport(
        passed, tuple(failures), tuple(str(f) for f in files), engine.version, tuple(results)
    )
