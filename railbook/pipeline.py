"""The one path every record takes: canonical events → policy → ledger (DESIGN.md, data flow).

``railbook ingest``, ``railbook serve`` (Kafka), the HTTP intake and ``railbook demo`` all feed
the same ``Pipeline.process``, so a decision never depends on how an event arrived.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.deadletter import DeadLetter
from core.event import CanonicalEvent
from policy import ApprovalBook, Decision, PolicyEngine

if TYPE_CHECKING:
    from core.config import Config
    from ledger import Checkpoint, Ledger

__all__ = ["BatchSummary", "Pipeline"]

logger = logging.getLogger(__name__)


@dataclass
class BatchSummary:
    """What happened to a batch (or, added up, to a whole run)."""

    read: int = 0
    """Records read: events plus dead letters."""
    appended: int = 0
    duplicates: int = 0
    """Events whose event_id was already in the ledger or earlier in the batch (skipped, not re-appended)."""
    dead_lettered: int = 0
    violations: int = 0
    entries: list[tuple[int, CanonicalEvent, Decision]] = field(default_factory=list)
    """(seq, event, decision) of every appended entry, in order."""
    checkpoint: Checkpoint | None = None
    """The newest checkpoint signed during the batch, if any."""

    def add(self, other: BatchSummary, *, keep_entries: bool = True) -> None:
        self.read += other.read
        self.appended += other.appended
        self.duplicates += other.duplicates
        self.dead_lettered += other.dead_lettered
        self.violations += other.violations
        if keep_entries:
            self.entries.extend(other.entries)
        if other.checkpoint is not None:
            self.checkpoint = other.checkpoint

    def line(self) -> str:
        return (
            f"read {self.read} · appended {self.appended} · duplicates {self.duplicates} · "
            f"dead-lettered {self.dead_lettered} · violations {self.violations}"
        )


class Pipeline:
    """Evaluate and append batches; approval state is rebuilt from the ledger (event-sourced)."""

    def __init__(self, config: Config, ledger: Ledger, engine: PolicyEngine) -> None:
        self.config = config
        self.ledger = ledger
        self.engine = engine
        self.approvals = self._rebuild_approvals()

    def _rebuild_approvals(self) -> ApprovalBook:
        return ApprovalBook.rebuild(self.config, ((e.event, e.decision) for e in self.ledger.iter_records()))

    def process(
        self,
        items: Iterable[CanonicalEvent | DeadLetter],
        *,
        offsets: Mapping[str, Mapping[tuple[str, int], int]] | None = None,
        mode: str = "detect",
    ) -> BatchSummary:
        """Evaluate the batch's new events in order and append them, its dead letters and ``offsets``
        in one ledger transaction. Duplicates are filtered *before* evaluation, so a re-delivered
        event can never consume an approval twice."""
        summary = BatchSummary()
        fresh: list[CanonicalEvent] = []
        dead: list[DeadLetter] = []
        seen: set[str] = set()
        for item in items:
            summary.read += 1
            if isinstance(item, DeadLetter):
                dead.append(item)
            elif item.event_id in seen:
                summary.duplicates += 1
            else:
                seen.add(item.event_id)
                fresh.append(item)
        if fresh:
            already = self.ledger.existing(e.event_id for e in fresh)
            if already:
                summary.duplicates += sum(1 for e in fresh if e.event_id in already)
                fresh = [e for e in fresh if e.event_id not in already]
        decisions: Sequence[Decision] = (
            self.engine.evaluate(fresh, approvals=self.approvals, mode=mode)  # type: ignore[arg-type]
            if fresh
            else []
        )
        try:
            result = self.ledger.append(
                list(zip(fresh, decisions, strict=True)), dead_letters=dead, offsets=offsets
            )
        except BaseException:
            # The approval book already saw this batch; the ledger did not. Re-derive it from the
            # ledger so an approval is never marked used by an event that was not recorded.
            self.approvals = self._rebuild_approvals()
            raise
        by_id = {e.event_id: (e, d) for e, d in zip(fresh, decisions, strict=True)}
        for seq, event_id in result.appended:
            event, decision = by_id[event_id]
            summary.entries.append((seq, event, decision))
            if decision.is_violation:
                summary.violations += 1
        summary.appended = len(result.appended)
        summary.duplicates += len(result.duplicates)
        summary.dead_lettered = result.dead_lettered
        summary.checkpoint = result.checkpoint
        logger.debug(
            "batch read=%d appended=%d dead=%d", summary.read, summary.appended, summary.dead_lettered
        )
        return summary
