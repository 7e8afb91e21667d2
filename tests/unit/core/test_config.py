"""Configuration: exact keys, clear errors naming file and key, classification rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_config
from core.errors import ConfigError

GOOD = """
[ledger]
path = "data/ledger.duckdb"
[environments.prod]
aws_accounts = ["111111111111"]
k8s_clusters = ["prod-eks"]
db_hosts = ["prod-db.internal", "*.prod.example.com"]
protected_branches = ["main"]
[identities]
agents = ["arn:aws:sts::*:assumed-role/agent-*/*", "agent:*", "*[bot]"]
pipelines = ["arn:aws:sts::*:assumed-role/deploy-pipeline/*", "pipeline:*"]
humans = ["arn:aws:iam::*:user/*", "*@*"]
approvers = ["alice@example.com"]
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "railbook.toml"
    p.write_text(text)
    return p


def test_documented_example_loads_and_classifies(tmp_path: Path) -> None:
    c = load_config(write(tmp_path, GOOD))
    assert c.ledger_path == Path("data/ledger.duckdb")
    assert c.actor_kind("arn:aws:sts::111111111111:assumed-role/agent-migrator/session1") == "agent"
    assert c.actor_kind("arn:aws:sts::111111111111:assumed-role/deploy-pipeline/run-42") == "pipeline"
    assert c.actor_kind("dependabot[bot]") == "agent"
    assert c.actor_kind("robot") == "unknown"  # '[bot]' is literal, not a character class
    assert c.actor_kind("bob@example.com") == "human"
    assert c.actor_kind("agent:claude@corp") == "agent"  # agents take precedence over '*@*'
    assert c.actor_kind(None) == "unknown"
    assert c.environment_for_host("PROD-DB.internal") == "prod"
    assert c.environment_for_host("x.prod.example.com") == "prod"
    assert c.environment_for_host("staging-db") == "unknown"
    assert c.environment_for_account("111111111111") == "prod"
    assert c.environment_for_cluster("prod-eks") == "prod"
    assert c.is_protected_branch("refs/heads/main") and not c.is_protected_branch("feature")
    assert c.is_approver("alice@example.com") and not c.is_approver("bob@example.com")


def test_no_file_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAILBOOK_CONFIG", raising=False)
    c = load_config()
    assert c.source_path is None and c.environments == {}
    assert c.environment_for_host("prod-db.internal") == "unknown"


def test_env_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path, GOOD)
    monkeypatch.setenv("RAILBOOK_CONFIG", str(p))
    monkeypatch.setenv("RAILBOOK_LEDGER", "/elsewhere/l.duckdb")
    c = load_config()
    assert c.source_path == str(p) and c.ledger.path == "/elsewhere/l.duckdb"
    assert load_config(ledger="flag.duckdb").ledger.path == "flag.duckdb"


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("[ledger\npath=1", ["not valid TOML"]),
        ("[identities]\nagents = 'agent:*'\n", ["identities.agents", "valid list"]),
        ("[environments.prod]\naws_acounts = ['1']\n", ["environments.prod.aws_acounts", "Extra inputs"]),
        ("[ledgr]\npath='x'\n", ["ledgr"]),
        ("[ledger]\ncheckpoint_every = 0\n", ["ledger.checkpoint_every"]),
    ],
)
def test_malformed_config_names_file_and_key(tmp_path: Path, text: str, needles: list[str]) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(p)
    msg = str(info.value)
    assert str(p) in msg
    for n in needles:
        assert n in msg


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_section_settings_names_key_and_hides_secrets(tmp_path: Path) -> None:
    from pydantic import BaseModel, ConfigDict

    from core.config import section_settings

    class S(BaseModel):
        model_config = ConfigDict(extra="forbid")
        port: int = 1
        github_secret: int = 0

    c = load_config(write(tmp_path, "[server]\nport = 'eighty'\ngithub_secret = 'hunter2'\n"))
    with pytest.raises(ConfigError) as info:
        section_settings(c, "server", S)
    msg = str(info.value)
    assert "[server] port" in msg and "'eighty'" in msg and str(tmp_path) in msg
    assert "[server] github_secret" in msg and "hunter2" not in msg
    assert section_settings(c, "server", S, overrides={"port": "8", "github_secret": "7"}).port == 8
