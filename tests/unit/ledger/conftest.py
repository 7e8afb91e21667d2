"""Shared fixtures for ledger tests: a config in a temp dir and record builders."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from core.config import Config
from core.event import Actor, CanonicalEvent, Change, Resource
from ledger import Ledger
from policy import Decision, Reason

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def make_event(i: int, **kw: object) -> CanonicalEvent:
    base: dict[str, object] = {
        "event_id": f"test:{i}",
        "occurred_at": T0 + timedelta(seconds=i),
        "source": "agent",
        "actor": Actor(id=f"agent:coder-{i % 3}", kind="agent", on_behalf_of="alice@example.com"),
        "action": "sql:AlterTable" if i % 5 == 0 else "shell:Exec",
        "resource": Resource(
            id=f"db://prod-db/{i % 4}", type="database", environment="prod" if i % 2 else "dev"
        ),
        "change": Change(
            task="fix flaky migration",
            commit=f"{i:040x}",
            pull_request=f"https://github.com/o/r/pull/{i % 7}",
        ),
    }
    base.update(kw)
    return CanonicalEvent(**base)  # type: ignore[arg-type]


def make_decision(deny: bool = False) -> Decision:
    if not deny:
        return Decision(outcome="allow", reasons=(), policy_version="p" * 64)
    return Decision(
        outcome="deny",
        reasons=(Reason("rail1-agent-in-prod", 1, "high", "Agent acted on production"),),
        policy_version="p" * 64,
    )


def records(n: int, start: int = 0) -> list[tuple[CanonicalEvent, Decision]]:
    return [(make_event(i), make_decision(deny=i % 2 == 1)) for i in range(start, start + n)]


def make_config(tmp: Path, **ledger: object) -> Config:
    return Config.model_validate(
        {
            "ledger": {
                "path": str(tmp / "ledger.duckdb"),
                "checkpoint_every": 10,
                "checkpoint_seconds": 3600,
                "segment_seconds": 0,  # one segment per checkpoint: tests name them
                **ledger,
            }
        }
    )


def store_last(path: Path, table: str, key: str, value: int) -> None:
    """Rewrite the ledger file at ``path`` so that the row of ``table`` with ``key = value`` is
    stored after all others: the same content, a different storage order."""
    con = duckdb.connect(str(path))
    try:
        con.execute(f"CREATE TEMP TABLE moved AS SELECT * FROM {table} WHERE {key} = ?", [value])
        con.execute(f"DELETE FROM {table} WHERE {key} = ?", [value])
        con.execute(f"INSERT INTO {table} SELECT * FROM moved")
    finally:
        con.close()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
def ledger(config: Config) -> Iterator[Ledger]:
    with Ledger.open(config) as led:
        yield led
