"""What an alert says: one violation (or a group of repeats) with everything a responder needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.event import format_time

__all__ = ["Alert", "OutboxAlert"]


@dataclass(frozen=True)
class OutboxAlert:
    """One outbox row joined with its ledger entry (what the delivery worker groups)."""

    alert_id: int
    """The outbox row id (ascending in creation order)."""
    seq: int
    """The ledger entry it is about."""
    created_at: datetime
    """When the outbox row was written (UTC; the ledger transaction's time)."""
    event_id: str
    rails: tuple[int, ...]
    severity: str | None
    policies: tuple[str, ...]
    titles: tuple[str, ...] = ()
    """Each policy's ``@title``, same order as ``policies``."""
    actor: str = "unknown"
    actor_kind: str = "unknown"
    on_behalf_of: str | None = None
    action: str = "unknown:unknown"
    resource: str = "unknown"
    environment: str = "unknown"
    source: str = "unknown"
    occurred_at: datetime | None = None

    @property
    def group_key(self) -> tuple[str, str, str]:
        """Repeats share the first policy, the actor and the resource."""
        return (self.policies[0] if self.policies else "", self.actor, self.resource)


@dataclass(frozen=True)
class Alert:
    """What a sink receives. ``idempotency_key`` is the same on every retry of the same delivery."""

    idempotency_key: str
    """Receivers dedupe by this: delivery is at-least-once."""
    first: OutboxAlert
    """The first (oldest) violation of the group."""
    count: int = 1
    """How many violations this alert stands for (repeats of the same policy, actor and resource)."""
    alert_ids: tuple[int, ...] = ()
    """Outbox ids covered (first to last)."""
    last_event_id: str | None = None
    last_occurred_at: datetime | None = None
    evidence_url: str | None = None
    test: bool = False
    """True for ``railbook alerts test``: not a real violation."""
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def title(self) -> str:
        f = self.first
        head = f.titles[0] if f.titles else (f.policies[0] if f.policies else "policy violation")
        return ("[TEST] " if self.test else "") + head

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of a webhook/Kafka alert (stable keys; ``schema`` versions the shape)."""
        f = self.first
        return {
            "schema": "railbook.alert/v1",
            "idempotency_key": self.idempotency_key,
            "test": self.test,
            "title": self.title,
            "count": self.count,
            "alert_ids": list(self.alert_ids),
            "event_id": f.event_id,
            "last_event_id": self.last_event_id or f.event_id,
            "seq": f.seq,
            "created_at": format_time(f.created_at),
            "occurred_at": format_time(f.occurred_at) if f.occurred_at else None,
            "last_occurred_at": format_time(self.last_occurred_at) if self.last_occurred_at else None,
            "rails": list(f.rails),
            "severity": f.severity,
            "policies": list(f.policies),
            "titles": list(f.titles),
            "actor": {"id": f.actor, "kind": f.actor_kind, "on_behalf_of": f.on_behalf_of},
            "action": f.action,
            "resource": {"id": f.resource, "environment": f.environment},
            "source": f.source,
            "evidence_url": self.evidence_url,
            "evidence_cli": f"railbook why {f.event_id}",
        }
