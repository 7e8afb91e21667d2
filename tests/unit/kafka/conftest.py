from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.event import Actor, CanonicalEvent, Resource


@pytest.fixture
def make_event() -> CanonicalEvent:
    return CanonicalEvent(
        event_id="agent:sess-1:1",
        occurred_at=datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
        source="agent",
        actor=Actor("agent:migrator", "agent", on_behalf_of="dave@example.com", session="sess-1"),
        action="sql:AlterTable",
        resource=Resource("db://prod-db.internal/ledger", "database", "prod"),
        attributes={"tool": "Bash"},
    )
