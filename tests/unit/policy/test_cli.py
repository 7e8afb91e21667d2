"""``railbook policy validate|test|replay`` and ``railbook bench policy`` through click."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from core.config import Config
from policy import DEFAULT_PACK_DIR, ApprovalBook, PolicyEngine
from railbook.cli import main
from tests.unit.policy.conftest import ev


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_validate_default_and_json() -> None:
    code, out = _run("policy", "validate", "--json")
    doc = json.loads(out)
    assert (
        code == 0
        and doc["ok"]
        and doc["forbids_by_rail"] == {"rail 1": 3, "rail 2": 5, "rail 3": 4, "rail 4": 4}
    )


def test_validate_broken_pack_fails_naming_the_line(tmp_path: Path) -> None:
    pack = tmp_path / "p"
    shutil.copytree(DEFAULT_PACK_DIR, pack, ignore=shutil.ignore_patterns("tests"))
    (pack / "bad.cedar").write_text("\n\nforbid (principal, action, resource) when { principal.nope };\n")
    code, out = _run("policy", "validate", str(pack))
    assert code == 1 and "bad.cedar:3" in out


def test_policy_test_exit_codes(tmp_path: Path) -> None:
    code, out = _run("policy", "test", str(DEFAULT_PACK_DIR / "tests"), "--json")
    assert code == 0 and json.loads(out)["failed"] == 0
    bad = tmp_path / "t.yaml"
    bad.write_text(
        "tests: [{name: x, event: {actor: {id: 'agent:x'}, action: 'file:Read',"
        " resource: {id: r, environment: prod}}, expect: {outcome: allow}}]\n"
    )
    code, out = _run("policy", "test", str(bad))
    assert code == 1 and "policies: missing []; unexpected ['rail1-agent-in-prod']" in out


def test_replay_from_records_file(tmp_path: Path) -> None:
    config = Config()
    engine = PolicyEngine.load(config)
    events = [
        ev("file:Write", eid="w"),
        ev("sql:Select", eid="h", actor="bob@example.com", kind="human", on_behalf_of=None, env="prod"),
    ]
    decisions = engine.evaluate(events, approvals=ApprovalBook(config))
    records = tmp_path / "r.jsonl"
    records.write_text(
        "".join(
            json.dumps({"event": e.to_dict(), "decision": d.to_dict()}) + "\n"
            for e, d in zip(events, decisions, strict=True)
        )
    )
    pack = tmp_path / "p"
    shutil.copytree(DEFAULT_PACK_DIR, pack, ignore=shutil.ignore_patterns("tests"))
    code, out = _run("policy", "replay", "--policies", str(pack), "--records", str(records), "--json")
    assert code == 0 and json.loads(out)["changed"] == 0
    (pack / "x.cedar").write_text(
        '@id("x") @rail("2") @severity("low") @title("t")\nforbid (principal is Human, action, resource);\n'
    )
    code, out = _run("policy", "replay", "--policies", str(pack), "--records", str(records))
    assert code == 0 and "newly flagged" in out and "h bob@example.com" in out


def test_bench_policy_small(tmp_path: Path) -> None:
    out_file = tmp_path / "b.json"
    code, out = _run(
        "bench",
        "policy",
        "--events",
        "200",
        "--batch",
        "100",
        "--seconds",
        "0.05",
        "--out",
        str(out_file),
        "--json",
    )
    doc = json.loads(out)
    assert code == 0 and doc["default"]["batched_distinct_per_s"] > 0 and "ratios" in doc
    assert json.loads(out_file.read_text())["benchmark"] == "policy"


def test_every_policy_command_has_help_with_an_example() -> None:
    for args in (
        ["policy"],
        ["policy", "validate"],
        ["policy", "test"],
        ["policy", "replay"],
        ["bench", "policy"],
    ):
        code, out = _run(*args, "--help")
        assert code == 0 and "Example:" in out, args
