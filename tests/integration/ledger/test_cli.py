"""The ledger commands end to end on an on-disk ledger (real DuckDB)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger import Ledger
from tests.unit.ledger.conftest import make_config, records

pytestmark = pytest.mark.integration

from railbook import cli  # noqa: E402


def test_verify_prove_evidence_keygen(tmp_path: Path) -> None:
    from click.testing import CliRunner

    config = make_config(tmp_path)
    with Ledger.open(config) as led:
        led.append(records(30))
        led.checkpoint()
    db = str(config.ledger_path)
    run = CliRunner().invoke
    r = run(cli.main, ["--ledger", db, "verify", "--json", "--against", str(config.checkpoints_file)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["ok"] is True
    r = run(cli.main, ["--ledger", db, "prove", "test:3"])
    assert r.exit_code == 0 and json.loads(r.stdout)["seq"] == 3
    out = tmp_path / "pack.json"
    r = run(cli.main, ["--ledger", db, "evidence", "--commit", f"{3:040x}", "--out", str(out)])
    assert r.exit_code == 0, r.output
    r = run(cli.main, ["verify-evidence", str(out), "--key", str(config.key_path) + ".pub", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["ok"] is True
    pack = json.loads(out.read_text())
    pack["entries"][0]["entry"] = pack["entries"][0]["entry"].replace("deny", "allow")
    out.write_text(json.dumps(pack))
    r = run(cli.main, ["verify-evidence", str(out)])
    assert r.exit_code == 1 and "does not verify" in r.output
    import duckdb

    con = duckdb.connect(db)
    con.execute("UPDATE entries SET outcome = 'allow' WHERE seq = 7")
    con.close()
    r = run(cli.main, ["--ledger", db, "verify"])
    assert r.exit_code == 1 and "seq 7" in r.output and "modified" in r.output
    r = run(cli.main, ["keygen", "--out", str(tmp_path / "k" / "new.key")])
    assert r.exit_code == 0 and (tmp_path / "k" / "new.key.pub").exists()
    r = run(cli.main, ["keygen", "--out", str(tmp_path / "k" / "new.key")])
    assert r.exit_code != 0 and "already exists" in r.output
