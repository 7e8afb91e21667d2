"""Fixtures for the policy tests: a demo-like config, the default engine (strict), event builders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.config import Config
from core.event import Actor, Approval, CanonicalEvent, Change, Resource
from policy import ApprovalBook, PolicyEngine
from tests.conftest import DEMO_CONFIG

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
H1 = "1" * 64
H2 = "2" * 64
PROD_DB = "db://prod-db.internal/payments/accounts"
STAGING_DB = "db://staging-db.internal/payments/accounts"
AGENT = "agent:claude-code"


@pytest.fixture(scope="session")
def config() -> Config:
    return Config.model_validate(DEMO_CONFIG)


@pytest.fixture(scope="session")
def engine(config: Config) -> PolicyEngine:
    return PolicyEngine.load(config, strict=True)


@pytest.fixture
def book(config: Config) -> ApprovalBook:
    return ApprovalBook(config)


def ev(
    action: str = "sql:AlterTable",
    *,
    eid: str = "e1",
    actor: str = AGENT,
    kind: str = "agent",
    on_behalf_of: str | None = "bob@example.com",
    credential: str | None = None,
    resource: str = STAGING_DB,
    env: str = "staging",
    at: datetime = T0,
    change: Change | None = None,
    data_classes: tuple[str, ...] = (),
    attributes: dict[str, str] | None = None,
    approval: Approval | None = None,
    source: str = "agent",
) -> CanonicalEvent:
    return CanonicalEvent(
        event_id=eid,
        occurred_at=at,
        source=source,
        actor=Actor(actor, kind, on_behalf_of=on_behalf_of, credential=credential),  # type: ignore[arg-type]
        action=action,
        resource=Resource(resource, "database", env, data_classes=data_classes),
        change=change
        if change is not None
        else Change(task="fix migration", prompt_sha256=H1, diff_sha256=H2),
        approval=approval,
        attributes=attributes or {},
    )


def grant(
    *,
    eid: str = "g1",
    by: str = "alice@example.com",
    rid: str = "req-1",
    actor: str = AGENT,
    action: str = "sql:AlterTable",
    resource: str = STAGING_DB,
    at: datetime = T0 - timedelta(minutes=2),
    decision: str = "grant",
    digest: str | None = None,
    expires_at: datetime | None = None,
) -> CanonicalEvent:
    return ev(
        "approval:Grant" if decision == "grant" else "approval:Deny",
        eid=eid,
        actor=by,
        kind="human" if "@" in by else "agent",
        on_behalf_of=None,
        resource=resource,
        at=at,
        source="approval",
        approval=Approval(rid, decision, actor, action, resource, digest, expires_at),  # type: ignore[arg-type]
    )


@pytest.fixture
def make_event() -> Callable[..., CanonicalEvent]:
    return ev


def dump(d: Any) -> Any:
    return d.to_dict()
