"""Fakes for the pipeline/ledger, so service tests run before (and without) the real ones."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from core.deadletter import DeadLetter
from core.event import CanonicalEvent
from policy import Decision, Reason


@dataclass
class FakeSummary:
    read: int = 0
    appended: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    violations: int = 0
    entries: list[tuple[int, CanonicalEvent, Decision]] = field(default_factory=list)
    checkpoint: Any = None


VIOLATION = Decision(
    outcome="deny",
    reasons=(Reason("rail1-agent-in-prod", 1, "high", "Agent acted on production"),),
    policy_version="0" * 64,
)
ALLOW = Decision(outcome="allow", reasons=(), policy_version="0" * 64)


class FakeLedger:
    def __init__(self) -> None:
        self.entries: list[tuple[int, CanonicalEvent, Decision]] = []
        self.dead: list[DeadLetter] = []
        self.offsets: list[Any] = []
        self.checkpoints = 0
        self.threads: set[str] = set()

    def maybe_checkpoint(self) -> Any:
        self.threads.add(threading.current_thread().name)
        self.checkpoints += 1
        return None


class FakePipeline:
    """Prod resources are violations; ``fail_on`` event ids make ``process`` raise."""

    def __init__(self, fail_on: set[str] | None = None) -> None:
        self.ledger = FakeLedger()
        self.calls: list[int] = []
        self.fail_on = fail_on or set()
        self.threads: set[str] = set()
        self.minted: list[frozenset[str]] = []
        """Per ``process`` call, the ids the caller minted (gate requests skip the ledger lookup)."""

    def process(
        self,
        items: Sequence[CanonicalEvent | DeadLetter],
        *,
        offsets: Mapping[str, Any] | None = None,
        mode: str = "detect",
        minted: AbstractSet[str] = frozenset(),
    ) -> FakeSummary:
        self.threads.add(threading.current_thread().name)
        self.minted.append(frozenset(minted))
        if any(isinstance(i, CanonicalEvent) and i.event_id in self.fail_on for i in items):
            raise RuntimeError("boom")
        self.calls.append(len(items))
        s = FakeSummary(read=len(items))
        have = {e[1].event_id for e in self.ledger.entries}
        for it in items:
            if isinstance(it, DeadLetter):
                self.ledger.dead.append(it)
                s.dead_lettered += 1
            elif it.event_id in have:
                s.duplicates += 1
            else:
                have.add(it.event_id)
                d = VIOLATION if it.resource.environment == "prod" else ALLOW
                entry = (len(self.ledger.entries), it, d)
                self.ledger.entries.append(entry)
                s.entries.append(entry)
                s.appended += 1
                s.violations += d.is_violation
        if offsets:
            self.ledger.offsets.append(offsets)
        return s


@contextmanager
def opener(pipeline: FakePipeline) -> Iterator[FakePipeline]:
    yield pipeline


def make_event(
    event_id: str, env: str = "prod", *, actor: str = "agent:claude-1", source: str = "agent"
) -> CanonicalEvent:
    from datetime import UTC, datetime

    from core.event import Actor, Resource

    return CanonicalEvent(
        event_id=event_id,
        occurred_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        source=source,
        actor=Actor(id=actor, kind="agent", on_behalf_of="bob@example.com"),
        action="sql:AlterTable",
        resource=Resource(id=f"db://{env}-db.internal/payments", type="database", environment=env),
    )
