"""Shared test fixtures: sample assets, a config factory, and the integration switch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.config import Config

ASSETS = Path(__file__).parent / "assets"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--skip-integration",
        action="store_true",
        default=False,
        help="skip tests that need real services (Kafka broker, HTTP servers, Chromium)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--skip-integration"):
        return
    skip = pytest.mark.skip(reason="--skip-integration given")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def asset() -> Callable[[str], Path]:
    """Path of a sample file under tests/assets/ (fails clearly if it is missing)."""

    def _asset(name: str) -> Path:
        path = ASSETS / name
        if not path.exists():
            raise FileNotFoundError(f"test asset {name!r} not found under {ASSETS}")
        return path

    return _asset


DEMO_CONFIG: dict[str, Any] = {
    "environments": {
        "prod": {
            "aws_accounts": ["111111111111"],
            "k8s_clusters": ["prod-eks"],
            "db_hosts": ["prod-db.internal", "*.prod.example.com"],
            "protected_branches": ["main"],
        },
        "staging": {
            "aws_accounts": ["222222222222"],
            "k8s_clusters": ["staging-eks"],
            "db_hosts": ["staging-db.internal"],
        },
        "dev": {"aws_accounts": ["333333333333"], "db_hosts": ["localhost", "127.0.0.1"]},
    },
    "identities": {
        "agents": ["arn:aws:sts::*:assumed-role/agent-*/*", "agent:*", "*[bot]"],
        "pipelines": ["arn:aws:sts::*:assumed-role/deploy-pipeline/*", "pipeline:*"],
        "humans": ["arn:aws:iam::*:user/*", "*@*"],
        "approvers": ["alice@example.com", "carol@example.com"],
    },
}


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    """A Config like the demo's, with its ledger under tmp_path; keyword overrides per section."""

    def _make(**sections: Any) -> Config:
        data: dict[str, Any] = {k: v for k, v in DEMO_CONFIG.items()}
        data["ledger"] = {"path": str(tmp_path / "ledger.duckdb"), "checkpoint_every": 100}
        for key, value in sections.items():
            data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
        return Config.model_validate(data)

    return _make
