"""Backtesting a policy set over the ledger's history (``railbook policy replay``).

Re-evaluates recorded events, in ledger order, under a proposed pack and compares each new
decision with the one recorded. Nothing is written anywhere: approvals are re-derived into a
fresh ``ApprovalBook`` (grants from approval events, uses from the new decisions), so a policy
that changes which actions need approval also changes which grants are consumed.

With ``since``, earlier records are folded into the book as recorded (so approvals granted
before ``since`` still count) and only later records are re-evaluated.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from core.event import format_time
from policy._approvals import ApprovalBook

if TYPE_CHECKING:
    from core.event import CanonicalEvent
    from policy._decision import Decision
    from policy._engine import PolicyEngine

__all__ = ["ReplayChange", "ReplayReport", "replay"]

logger = logging.getLogger(__name__)

Category = Literal["newly_flagged", "no_longer_flagged", "reasons_changed"]


@dataclass(frozen=True)
class ReplayChange:
    """One past decision that would come out differently."""

    event_id: str
    occurred_at: datetime
    actor: str
    action: str
    resource: str
    old_outcome: str
    new_outcome: str
    old_policies: tuple[str, ...]
    new_policies: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "occurred_at": format_time(self.occurred_at),
            "actor": self.actor,
            "action": self.action,
            "resource": self.resource,
            "old": {"outcome": self.old_outcome, "policies": list(self.old_policies)},
            "new": {"outcome": self.new_outcome, "policies": list(self.new_policies)},
        }


@dataclass(frozen=True)
class ReplayReport:
    """Counts of changed decisions, examples of each kind, and which policies moved."""

    total: int
    newly_flagged: int
    no_longer_flagged: int
    reasons_changed: int
    unchanged: int
    skipped: int
    """Records before ``since`` (folded into approvals, not re-evaluated)."""
    new_version: str
    old_versions: tuple[str, ...]
    examples: dict[str, list[ReplayChange]] = field(default_factory=dict)
    policies_added: dict[str, int] = field(default_factory=dict)
    """Policy id → how many re-evaluated decisions newly name it."""
    policies_removed: dict[str, int] = field(default_factory=dict)
    """Policy id → how many decisions no longer name it."""

    @property
    def changed(self) -> int:
        return self.newly_flagged + self.no_longer_flagged + self.reasons_changed

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "newly_flagged": self.newly_flagged,
            "no_longer_flagged": self.no_longer_flagged,
            "reasons_changed": self.reasons_changed,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "changed": self.changed,
            "new_version": self.new_version,
            "old_versions": list(self.old_versions),
            "examples": {k: [c.to_dict() for c in v] for k, v in self.examples.items()},
            "policies_added": dict(self.policies_added),
            "policies_removed": dict(self.policies_removed),
        }


def replay(
    engine_new: PolicyEngine,
    records: Iterable[tuple[CanonicalEvent, Decision]],
    *,
    since: datetime | None = None,
    batch: int = 1000,
    max_examples: int = 20,
) -> ReplayReport:
    """Re-evaluate ``records`` (ledger order) under ``engine_new``; report what would change."""
    book = ApprovalBook(engine_new.config)
    counts: Counter[str] = Counter()
    added: Counter[str] = Counter()
    removed: Counter[str] = Counter()
    examples: dict[str, list[ReplayChange]] = {
        "newly_flagged": [],
        "no_longer_flagged": [],
        "reasons_changed": [],
    }
    old_versions: dict[str, None] = {}
    pending: list[tuple[CanonicalEvent, Decision]] = []

    def flush() -> None:
        if not pending:
            return
        mode = pending[0][1].mode
        new = engine_new.evaluate([e for e, _ in pending], approvals=book, mode=mode)
        for (event, old), dec in zip(pending, new, strict=True):
            _compare(event, old, dec, counts, added, removed, examples, max_examples)
        pending.clear()

    for event, old in records:
        old_versions.setdefault(old.policy_version, None)
        if since is not None and event.occurred_at < since:
            counts["skipped"] += 1
            book.observe(event, old)
            continue
        if pending and (pending[0][1].mode != old.mode or len(pending) >= batch):
            flush()
        pending.append((event, old))
    flush()
    report = ReplayReport(
        total=sum(counts[k] for k in ("newly_flagged", "no_longer_flagged", "reasons_changed", "unchanged")),
        newly_flagged=counts["newly_flagged"],
        no_longer_flagged=counts["no_longer_flagged"],
        reasons_changed=counts["reasons_changed"],
        unchanged=counts["unchanged"],
        skipped=counts["skipped"],
        new_version=engine_new.version,
        old_versions=tuple(old_versions),
        examples=examples,
        policies_added=dict(added.most_common()),
        policies_removed=dict(removed.most_common()),
    )
    logger.info(
        "replay total=%d newly_flagged=%d no_longer_flagged=%d reasons_changed=%d",
        report.total,
        report.newly_flagged,
        report.no_longer_flagged,
        report.reasons_changed,
    )
    return report


def _compare(
    event: CanonicalEvent,
    old: Decision,
    new: Decision,
    counts: Counter[str],
    added: Counter[str],
    removed: Counter[str],
    examples: dict[str, list[ReplayChange]],
    max_examples: int,
) -> None:
    old_ids, new_ids = set(old.policy_ids), set(new.policy_ids)
    category: Category | None = None
    if old.is_violation != new.is_violation:
        category = "newly_flagged" if new.is_violation else "no_longer_flagged"
    elif old_ids != new_ids:
        category = "reasons_changed"
    for pid in new_ids - old_ids:
        added[pid] += 1
    for pid in old_ids - new_ids:
        removed[pid] += 1
    if category is None:
        counts["unchanged"] += 1
        return
    counts[category] += 1
    if len(examples[category]) < max_examples:
        examples[category].append(
            ReplayChange(
                event_id=event.event_id,
                occurred_at=event.occurred_at,
                actor=event.actor.id,
                action=event.action,
                resource=event.resource.id,
                old_outcome=old.outcome,
                new_outcome=new.outcome,
                old_policies=tuple(sorted(old_ids)),
                new_policies=tuple(sorted(new_ids)),
            )
        )
