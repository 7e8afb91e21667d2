"""The one path every record takes: canonical events → policy → ledger (DESIGN.md, data flow).

``railbook ingest``, ``railbook serve`` (Kafka), the HTTP intake and ``railbook demo`` all feed
the same ``Pipeline.process``, so a decision never depends on how an event arrived.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.deadletter import DeadLetter
from core.event import CanonicalEvent
from policy import ApprovalBook, Decision, PolicyEngine

if TYPE_CHECKING:
    from core.config import Config
    from ledger import Checkpoint, ExistingLookup, Ledger

__all__ = ["BatchSummary", "Evaluated", "Pipeline"]

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


@dataclass(frozen=True)
class Evaluated:
    """A batch after ``Pipeline.evaluate``: decided, not yet appended."""

    read: int
    duplicates: int
    records: tuple[tuple[CanonicalEvent, Decision], ...]
    """(event, decision) of every new event, in order."""
    dead: tuple[DeadLetter, ...]

    @property
    def event_ids(self) -> frozenset[str]:
        return frozenset(e.event_id for e, _ in self.records)


class Pipeline:
    """Evaluate and append batches; approval state is rebuilt from the ledger (event-sourced)."""

    def __init__(self, config: Config, ledger: Ledger, engine: PolicyEngine) -> None:
        self.config = config
        self.ledger = ledger
        self.engine = engine
        self.approvals = self._rebuild_approvals()

    def _rebuild_approvals(self) -> ApprovalBook:
        return ApprovalBook.rebuild(self.config, ((e.event, e.decision) for e in self.ledger.iter_records()))

    def reader(self) -> ExistingLookup:
        """An ``existing`` for ``evaluate`` on a thread other than the one appending (see ``commit``)."""
        return self.ledger.existing_lookup()

    def rebuild_approvals(self) -> None:
        """Re-derive the approval book from the ledger (after an append failed: the book saw a batch
        the ledger did not record)."""
        self.approvals = self._rebuild_approvals()

    def evaluate(
        self,
        items: Iterable[CanonicalEvent | DeadLetter],
        *,
        mode: str = "detect",
        in_flight: AbstractSet[str] = frozenset(),
        existing: Callable[[Iterable[str]], AbstractSet[str]] | None = None,
        known: Sequence[Decision | None] | None = None,
    ) -> Evaluated:
        """Stage one of ``process``: drop duplicates (within the batch, in ``in_flight`` — event ids
        of an evaluated batch not yet known to be committed — and, for the events whose decision
        touches approval state (``PolicyEngine.touches_approvals``), in the ledger, looked up with
        ``existing``, default ``ledger.existing``), then decide the rest in order. Updates the
        approval book: call ``commit`` with the result, or ``rebuild_approvals`` if it is dropped.
        A duplicate of any other event is left to ``commit``: the ledger skips and counts it.

        ``known``: one entry per item, a decision made ahead by ``PolicyEngine.prejudge`` (serve's
        consumer process) or ``None``; the engine checks and reuses those (detect mode)."""
        read = duplicates = 0
        fresh: list[CanonicalEvent] = []
        fresh_known: list[Decision | None] = []
        dead: list[DeadLetter] = []
        seen: set[str] = set()
        pairs: Iterable[tuple[CanonicalEvent | DeadLetter, Decision | None]] = (
            zip(items, known, strict=True) if known is not None else ((item, None) for item in items)
        )
        for item, pre in pairs:
            read += 1
            if isinstance(item, DeadLetter):
                dead.append(item)
            elif item.event_id in seen or item.event_id in in_flight:
                duplicates += 1
            else:
                seen.add(item.event_id)
                fresh.append(item)
                fresh_known.append(pre)
        if fresh:
            # Only an event whose decision reads or changes the approval book must be known new
            # before it is decided: a re-delivered destructive action must not spend a grant, nor
            # a stored id bring in a grant, that the ledger then refuses to record. Any other
            # duplicate is decided and then refused by the ledger's UNIQUE event id (``commit``
            # counts it). That spares most events the lookup, whose cost grows with the ledger.
            # in_flight is checked before the ledger: an id committed in between is in one or the other
            touches = self.engine.touches_approvals
            ask = [e.event_id for e in fresh if touches(e, mode)]  # type: ignore[arg-type]
            already = (existing or self.ledger.existing)(ask) if ask else set()
            if already:
                duplicates += sum(1 for e in fresh if e.event_id in already)
                kept = [k for k, e in enumerate(fresh) if e.event_id not in already]
                fresh = [fresh[k] for k in kept]
                fresh_known = [fresh_known[k] for k in kept]
        decisions: Sequence[Decision] = (
            self.engine.evaluate(
                fresh,
                approvals=self.approvals,
                mode=mode,  # type: ignore[arg-type]
                known=fresh_known if known is not None else None,
            )
            if fresh
            else []
        )
        return Evaluated(read, duplicates, tuple(zip(fresh, decisions, strict=True)), tuple(dead))

    def commit(
        self,
        batch: Evaluated,
        *,
        offsets: Mapping[str, Mapping[tuple[str, int], int]] | None = None,
    ) -> BatchSummary:
        """Stage two of ``process``: append an evaluated batch, its dead letters and ``offsets`` in one
        ledger transaction. Touches only the ledger (safe on a writer thread while the next batch is
        evaluated); on failure the caller must ``rebuild_approvals`` before evaluating again."""
        summary = BatchSummary(read=batch.read, duplicates=batch.duplicates)
        result = self.ledger.append(list(batch.records), dead_letters=batch.dead, offsets=offsets)
        if len(result.appended) == len(batch.records):
            pairs: Iterable[tuple[CanonicalEvent, Decision]] = batch.records
        else:  # the ledger skipped some (a concurrent writer?): match by id
            by_id = {e.event_id: (e, d) for e, d in batch.records}
            pairs = [by_id[event_id] for _seq, event_id in result.appended]
        for (seq, _event_id), (event, decision) in zip(result.appended, pairs, strict=True):
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

    def process(
        self,
        items: Iterable[CanonicalEvent | DeadLetter],
        *,
        offsets: Mapping[str, Mapping[tuple[str, int], int]] | None = None,
        mode: str = "detect",
        minted: AbstractSet[str] = frozenset(),
    ) -> BatchSummary:
        """Evaluate the batch's new events in order and append them, its dead letters and ``offsets``
        in one ledger transaction. Duplicates are filtered *before* evaluation, so a re-delivered
        event can never consume an approval twice.

        ``minted``: event ids the caller created for this call (a gate request's
        ``gate:req-<64 random bits>``). They cannot have been delivered before, so their ledger
        lookup — an index probe that can only answer "no", ~0.4 ms on the gate's latency path — is
        skipped. The ledger's UNIQUE index still refuses a stored id; should that ever happen, the
        approval book (which saw the event during evaluation) is rebuilt from the ledger, as after
        a failed append."""
        existing: Callable[[Iterable[str]], AbstractSet[str]] | None = None
        if minted:
            stored = self.ledger.existing

            def existing(ids: Iterable[str]) -> AbstractSet[str]:
                rest = [i for i in ids if i not in minted]
                return stored(rest) if rest else frozenset()

        batch = self.evaluate(items, mode=mode, existing=existing)
        try:
            summary = self.commit(batch, offsets=offsets)
        except BaseException:
            # The approval book already saw this batch; the ledger did not. Re-derive it from the
            # ledger so an approval is never marked used by an event that was not recorded.
            self.rebuild_approvals()
            raise
        if minted and summary.appended != len(batch.records):
            logger.warning("a minted event id was already stored; rebuilding the approval book")
            self.rebuild_approvals()
        return summary
