"""``railbook policy replay`` over a real on-disk DuckDB ledger, which it must not modify."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from core.config import Config
from policy import DEFAULT_PACK_DIR, ApprovalBook, PolicyEngine
from railbook.cli import main
from tests.unit.policy.conftest import ev, grant

pytestmark = pytest.mark.integration


def test_replay_reads_the_ledger_and_leaves_it_untouched(
    make_config: Callable[..., Config], tmp_path: Path
) -> None:
    import ledger as ledger_mod

    config = make_config()
    engine = PolicyEngine.load(config)
    events = [
        ev("file:Write", eid="w1"),
        grant(eid="g1"),
        ev(eid="alter1"),
        ev("sql:Select", eid="h1", actor="bob@example.com", kind="human", on_behalf_of=None, env="prod"),
    ]
    decisions = engine.evaluate(events, approvals=ApprovalBook(config))
    with ledger_mod.Ledger.open(config) as led:
        led.append(list(zip(events, decisions, strict=True)))
    db = config.ledger_path
    before = hashlib.sha256(db.read_bytes()).hexdigest()

    pack = tmp_path / "proposed"
    shutil.copytree(DEFAULT_PACK_DIR, pack, ignore=shutil.ignore_patterns("tests"))
    (pack / "tight.cedar").write_text(
        '@id("no-prod-reads") @rail("2") @severity("low") @title("t")\n'
        'forbid (principal is Human, action in Action::"Read", resource)\n'
        'when { resource.environment == "prod" };\n'
    )
    cfg_file = tmp_path / "railbook.toml"
    cfg_file.write_text(f'[ledger]\npath = "{db}"\n[identities]\napprovers = ["alice@example.com"]\n')
    runner = CliRunner()
    same = runner.invoke(
        main, ["--config", str(cfg_file), "policy", "replay", "--policies", str(DEFAULT_PACK_DIR), "--json"]
    )
    assert same.exit_code == 0, same.output
    assert json.loads(same.output)["changed"] == 0 and json.loads(same.output)["total"] == 4
    tight = runner.invoke(
        main, ["--config", str(cfg_file), "policy", "replay", "--policies", str(pack), "--json"]
    )
    assert tight.exit_code == 0, tight.output
    doc = json.loads(tight.output)
    assert doc["newly_flagged"] == 1 and doc["examples"]["newly_flagged"][0]["event_id"] == "h1"
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
