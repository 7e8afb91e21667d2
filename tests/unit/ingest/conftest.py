"""Fixtures for the ingest tests: sample records from tests/assets and the incident configuration."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from core.config import Config, load_config

ASSETS = Path(__file__).resolve().parents[2] / "assets"


@pytest.fixture
def asset() -> Callable[[str], Path]:
    def _asset(name: str) -> Path:
        path = ASSETS / name
        assert path.is_file(), f"missing test asset {path}"
        return path

    return _asset


@pytest.fixture(scope="session")
def config() -> Config:
    return load_config(ASSETS / "synthetic" / "railbook.incident.toml")
