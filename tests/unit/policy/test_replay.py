"""Replay: a tightened pack reports changed decisions; the same pack reports none."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from core.config import Config
from policy import DEFAULT_PACK_DIR, ApprovalBook, PolicyEngine, replay
from tests.unit.policy.conftest import T0, ev, grant


@pytest.fixture
def history(engine: PolicyEngine, config: Config) -> list:  # type: ignore[type-arg]
    events = [
        ev("file:Write", eid="w1"),
        ev("file:Read", eid="r1"),
        grant(eid="g1"),
        ev(eid="alter1", at=T0 + timedelta(seconds=1)),
        ev(eid="alter2", at=T0 + timedelta(seconds=2)),
        ev("sql:Select", eid="h1", actor="bob@example.com", kind="human", on_behalf_of=None, env="prod"),
    ]
    decisions = engine.evaluate(events, approvals=ApprovalBook(config))
    return list(zip(events, decisions, strict=True))


def _pack(tmp_path: Path, extra: str = "", drop: str | None = None) -> Path:
    dst = tmp_path / "proposed"
    shutil.copytree(DEFAULT_PACK_DIR, dst, ignore=shutil.ignore_patterns("tests"))
    if drop:
        (dst / drop).unlink()
    if extra:
        (dst / "extra.cedar").write_text(extra)
    return dst


def test_unchanged_pack_reports_nothing(engine: PolicyEngine, history: list) -> None:  # type: ignore[type-arg]
    report = replay(engine, history)
    assert report.changed == 0 and report.unchanged == len(history) == report.total
    assert report.old_versions == (engine.version,)


def test_tightened_pack_newly_flags(config: Config, history: list, tmp_path: Path) -> None:  # type: ignore[type-arg]
    tight = PolicyEngine.load(
        config,
        pack_dir=_pack(
            tmp_path,
            (
                '@id("no-prod-reads") @rail("2") @severity("low")\n'
                '@title("Humans read prod via a break-glass")\n'
                'forbid (principal is Human, action in Action::"Read", resource)\n'
                'when { resource.environment == "prod" };\n'
            ),
        ),
    )
    report = replay(tight, history)
    assert report.newly_flagged == 1 and report.no_longer_flagged == 0
    assert report.examples["newly_flagged"][0].event_id == "h1"
    assert report.policies_added == {"no-prod-reads": 1}
    assert report.to_dict()["new_version"] == tight.version != report.old_versions[0]


def test_loosened_pack_no_longer_flags(config: Config, history: list, tmp_path: Path) -> None:  # type: ignore[type-arg]
    loose = PolicyEngine.load(config, pack_dir=_pack(tmp_path, drop="rail3.cedar"))
    report = replay(loose, history)
    assert report.no_longer_flagged == 1 and report.examples["no_longer_flagged"][0].event_id == "alter2"
    assert report.policies_removed == {"rail3-destructive-without-approval": 1}


def test_since_folds_earlier_approvals(engine: PolicyEngine, history: list) -> None:  # type: ignore[type-arg]
    report = replay(engine, history, since=T0 + timedelta(seconds=1))
    assert report.skipped == 4 and report.total == 2 and report.changed == 0
