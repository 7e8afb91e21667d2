"""A small in-memory reader with the ledger's read API, seeded with a story like the demo's."""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.canonical import canonical_json
from core.config import Config
from core.event import Actor, Approval, CanonicalEvent, Change, Resource, format_time
from policy import ApprovalCheck, Decision, Reason

PV = "a" * 64
#: two days ago at 09:00 UTC, so the Overview's 30-day window holds the story
T0 = (datetime.now(UTC) - timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class FakeEntry:
    seq: int
    event: CanonicalEvent
    decision: Decision
    entry_bytes: bytes
    leaf_hash: bytes
    chain_hash: bytes
    ingested_at: datetime


def make_entry(seq: int, event: CanonicalEvent, decision: Decision) -> FakeEntry:
    b = canonical_json({"seq": seq, "event": event.to_dict(), "decision": decision.to_dict()})
    leaf = hashlib.sha256(b"\x00" + b).digest()
    return FakeEntry(seq, event, decision, b, leaf, hashlib.sha256(leaf).digest(), event.occurred_at)


@dataclass
class FakeReader:
    """Filters like ``ledger._query.entries`` (newest first, ``*`` globs on actor/action)."""

    items: list[FakeEntry] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def add(self, event: CanonicalEvent, decision: Decision) -> FakeEntry:
        e = make_entry(len(self.items), event, decision)
        self.items.append(e)
        return e

    @staticmethod
    def _m(value: str | None, pattern: str) -> bool:
        return value is not None and (
            fnmatch.fnmatchcase(value, pattern) if "*" in pattern else value == pattern
        )

    def entries(
        self,
        *,
        source: str | None = None,
        actor: str | None = None,
        kind: str | None = None,
        action: str | None = None,
        environment: str | None = None,
        outcome: str | None = None,
        mode: str | None = None,
        rail: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        text: str | None = None,
        limit: int = 100,
        offset: int = 0,
        ascending: bool = False,
    ) -> list[FakeEntry]:
        self.calls.append(
            ("entries", {k: v for k, v in locals().items() if k not in ("self",) and v is not None})
        )
        out = []
        for x in sorted(self.items, key=lambda e: e.seq, reverse=not ascending):
            e, d = x.event, x.decision
            if source is not None and e.source != source:
                continue
            if actor is not None and not (self._m(e.actor.id, actor) or self._m(e.actor.on_behalf_of, actor)):
                continue
            if kind is not None and e.actor.kind != kind:
                continue
            if mode is not None and d.mode != mode:
                continue
            if action is not None and not self._m(e.action, action):
                continue
            if environment is not None and e.resource.environment != environment:
                continue
            if outcome is not None and d.outcome != outcome:
                continue
            if rail is not None and rail not in d.rails:
                continue
            if since is not None and e.occurred_at < since:
                continue
            if until is not None and e.occurred_at >= until:
                continue
            if text and text.lower() not in x.entry_bytes.decode().lower():
                continue
            out.append(x)
        return out[offset : offset + limit]

    def violations(
        self, *, rail: int | None = None, since: datetime | None = None, limit: int = 1000
    ) -> list[FakeEntry]:
        return self.entries(outcome="deny", rail=rail, since=since, limit=limit)

    def find(
        self,
        *,
        commit: str | None = None,
        pull_request: str | None = None,
        resource: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 10000,
    ) -> list[FakeEntry]:
        self.calls.append(("find", {"commit": commit, "pull_request": pull_request, "resource": resource}))
        out = []
        for x in self.items:
            c = x.event.change
            if commit is not None and not (c.commit or "").startswith(commit):
                continue
            if pull_request is not None and c.pull_request != pull_request:
                continue
            if resource is not None and x.event.resource.id != resource:
                continue
            if since is not None and x.event.occurred_at < since:
                continue
            if until is not None and x.event.occurred_at >= until:
                continue
            out.append(x)
        return out[:limit]

    def get(self, event_id: str) -> FakeEntry | None:
        return next((x for x in self.items if x.event.event_id == event_id), None)

    def stats(self) -> dict[str, Any]:
        return {
            "size": len(self.items),
            "violations": sum(1 for x in self.items if x.decision.is_violation),
        }


def allow() -> Decision:
    return Decision("allow", (), PV)


def deny(*reasons: tuple[str, int, str, str]) -> Decision:
    return Decision("deny", tuple(Reason(p, r, s, t) for p, r, s, t in reasons), PV)


def seed(reader: FakeReader) -> dict[str, FakeEntry]:
    """The incident story: an agent alters a prod table; a gate request waits; a covered change."""
    out: dict[str, FakeEntry] = {}
    agent = Actor("agent:claude-1", "agent", on_behalf_of="bob@example.com", session="s-1")
    for i in range(12):
        out[f"read{i}"] = reader.add(
            CanonicalEvent(
                f"agent:read-{i}",
                T0 + timedelta(minutes=i),
                "agent",
                agent,
                "shell:Exec",
                Resource(f"host://dev-{i}", "host", "dev"),
                Change(task="fix flaky migration"),
            ),
            allow(),
        )
    out["alter"] = reader.add(
        CanonicalEvent(
            "agent:alter-prod",
            T0 + timedelta(hours=1),
            "agent",
            agent,
            "sql:AlterTable",
            Resource("db://prod-db.internal/ledger", "database", "prod"),
            Change(
                task="fix flaky migration",
                diff_sha256="d" * 64,
                commit="abc1234def",
                pull_request="https://github.com/acme/app/pull/7",
            ),
            raw='{"tool":"psql","command":"ALTER TABLE balances ..."}',
        ),
        deny(
            ("rail1-agent-in-prod", 1, "critical", "An agent acted on a production resource"),
            ("rail3-destructive-unapproved", 3, "high", "A destructive action ran without approval"),
        ),
    )
    out["push"] = reader.add(
        CanonicalEvent(
            "github:push-1",
            T0 + timedelta(hours=2),
            "github",
            Actor("claude[bot]", "agent"),
            "git:Push",
            Resource("acme/app@main", "git-branch", "prod"),
            Change(commit="abc1234def"),
        ),
        deny(("rail4-missing-human", 4, "medium", "An agent change names no instructing human")),
    )
    out["request"] = reader.add(
        CanonicalEvent(
            "gate:req-1",
            T0 + timedelta(hours=3),
            "gate",
            agent,
            "sql:DropTable",
            Resource("db://staging-db.internal/app", "database", "staging"),
            Change(task="drop temp table", diff_sha256="e" * 64),
            attributes={"request_id": "req-1", "command": "DROP TABLE tmp_balances"},
        ),
        Decision(
            "deny",
            (Reason("rail3-destructive-unapproved", 3, "high", "Destructive action needs approval"),),
            PV,
            ApprovalCheck("missing"),
            mode="gate",
            gate="ask",
        ),
    )
    out["request2"] = reader.add(
        CanonicalEvent(
            "gate:req-2",
            T0 + timedelta(hours=3, minutes=5),
            "gate",
            agent,
            "s3:DeleteBucket",
            Resource("arn:aws:s3:::old-logs", "s3-bucket", "staging"),
            Change(task="cleanup"),
            attributes={"request_id": "req-2"},
        ),
        Decision(
            "deny",
            (Reason("rail3-destructive-unapproved", 3, "high", "Destructive action needs approval"),),
            PV,
            ApprovalCheck("missing"),
            mode="gate",
            gate="ask",
        ),
    )
    out["grant0"] = reader.add(
        CanonicalEvent(
            "approval:req-0:x",
            T0 + timedelta(hours=4),
            "approval",
            Actor("carol@example.com", "human"),
            "approval:Grant",
            Resource("db://staging-db.internal/app", "database", "staging"),
            approval=Approval(
                "req-0", "grant", "agent:claude-1", "sql:AlterTable", "db://staging-db.internal/app"
            ),
            attributes={"comment": "ok for staging"},
        ),
        allow(),
    )
    out["covered"] = reader.add(
        CanonicalEvent(
            "agent:alter-staging",
            T0 + timedelta(hours=5),
            "agent",
            agent,
            "sql:AlterTable",
            Resource("db://staging-db.internal/app", "database", "staging"),
            Change(task="fix flaky migration", diff_sha256="f" * 64, commit="fedcba9876"),
        ),
        Decision("allow", (), PV, ApprovalCheck("covered", "req-0", "carol@example.com")),
    )
    return out


@pytest.fixture
def reader() -> FakeReader:
    r = FakeReader()
    seed(r)
    return r


DASH_CONFIG: dict[str, Any] = {
    "identities": {
        "agents": ["agent:*", "*[bot]"],
        "humans": ["*@*"],
        "approvers": ["alice@example.com", "carol@example.com", "bob@example.com"],
    },
}


@pytest.fixture
def config(tmp_path: Path) -> Callable[..., Config]:
    def _make(**sections: Any) -> Config:
        data = {**DASH_CONFIG, "ledger": {"path": str(tmp_path / "ledger.duckdb")}, **sections}
        return Config.model_validate(data)

    return _make


@dataclass
class FakeSubmitter:
    """Records what the dashboard submits (the service's place in these tests)."""

    events: list[CanonicalEvent] = field(default_factory=list)
    tokens: list[str | None] = field(default_factory=list)

    def _take(self, event: CanonicalEvent, token: str | None) -> Any:
        from dashboard._submit import Receipt

        self.events.append(event)
        self.tokens.append(token)
        return Receipt(event.event_id, 100 + len(self.events), "allow", (), "fake")

    def submit_event(self, event: CanonicalEvent, *, token: str | None) -> Any:
        return self._take(event, token)

    def submit_approval(self, event: CanonicalEvent, *, token: str | None) -> Any:
        return self._take(event, token)


_ = format_time
