"""Violations page logic: violations by rail, severity and agent; acknowledgements as events.

An acknowledgement is a canonical event (action ``railbook:Acknowledge``, source ``dashboard``,
actor the signed-in person) naming the violating event in ``attributes.acknowledges`` with the
comment in ``attributes.comment``. It goes to the service like any other event: the dashboard
never writes the ledger (DESIGN.md). A violation is *open* until such an event names it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.event import Actor, CanonicalEvent, Resource, format_time
from dashboard._aggregates import _sql_for
from dashboard._events import event_row

if TYPE_CHECKING:
    from core.config import Config

__all__ = [
    "ACK_ACTION",
    "Acknowledgement",
    "ViolationFilter",
    "acknowledgement_event",
    "acknowledgements",
    "fetch_violations",
]

logger = logging.getLogger(__name__)

ACK_ACTION = "railbook:Acknowledge"
#: acknowledgements are few; this bounds the one query that reads them all
MAX_ACKS = 100_000
MAX_COMMENT = 4000


@dataclass(frozen=True)
class ViolationFilter:
    rail: int | None = None
    severity: str | None = None
    actor: str | None = None
    since: datetime | None = None
    open_only: bool = False


@dataclass(frozen=True)
class Acknowledgement:
    event_id: str
    """The acknowledgement event's own id."""
    violation: str
    """The violating event it names."""
    by: str
    at: datetime
    comment: str


def acknowledgements(reader: Any) -> dict[str, list[Acknowledgement]]:
    """Acknowledgements in the ledger, by the violating event id they name."""
    out: dict[str, list[Acknowledgement]] = {}
    for entry in reader.entries(action=ACK_ACTION, limit=MAX_ACKS):
        e = entry.event
        target = e.attributes.get("acknowledges")
        if not target:
            continue
        out.setdefault(target, []).append(
            Acknowledgement(e.event_id, target, e.actor.id, e.occurred_at, e.attributes.get("comment", ""))
        )
    return out


def fetch_violations(
    reader: Any, flt: ViolationFilter, *, page: int = 0, page_size: int = 50
) -> tuple[list[dict[str, Any]], list[Any], bool]:
    """One page of violations (newest first as the reader orders them) and whether more exist.

    Rail, actor and time go to the reader; severity and "open only" are checked here, reading on
    until the page is full (bounded to a few reader pages, so a render stays fast).
    """
    acks = acknowledgements(reader)
    sql = _sql_for(reader)
    if sql is not None:
        got = sql.violation_entries(
            reader,
            rail=flt.rail,
            severity=flt.severity or None,
            actor=flt.actor or None,
            since=flt.since,
            exclude=sorted(acks) if flt.open_only else (),
            limit=page_size + 1,
            offset=page * page_size,
        )
        page_entries = list(got[:page_size])
        return [_row(e, acks) for e in page_entries], page_entries, len(got) > page_size
    want = page_size
    skip = page * page_size
    rows: list[dict[str, Any]] = []
    kept: list[Any] = []
    offset = 0
    chunk = max(page_size * 4, 200)
    more = False
    for _ in range(50):
        got = list(
            reader.entries(
                outcome="deny",
                mode="detect",
                rail=flt.rail,
                actor=flt.actor or None,
                since=flt.since,
                limit=chunk,
                offset=offset,
            )
        )
        offset += len(got)
        for entry in got:
            d = entry.decision
            if flt.severity and d.severity != flt.severity:
                continue
            if flt.open_only and entry.event.event_id in acks:
                continue
            if skip:
                skip -= 1
                continue
            if len(rows) == want:
                more = True
                break
            rows.append(_row(entry, acks))
            kept.append(entry)
        if more or len(got) < chunk:
            break
    return rows, kept, more


def _row(entry: Any, acks: dict[str, list[Acknowledgement]]) -> dict[str, Any]:
    d = entry.decision
    row = event_row(entry)
    row["policies"] = ", ".join(d.policy_ids)
    row["titles"] = "; ".join(r.title for r in d.reasons)
    row["on_behalf_of"] = entry.event.actor.on_behalf_of or ""
    row["acknowledged"] = ", ".join(a.by for a in acks.get(entry.event.event_id, []))
    return row


def acknowledgement_event(
    config: Config, user: str, violation: Any, comment: str, *, now: datetime | None = None
) -> CanonicalEvent:
    """The event that records ``user`` acknowledging the violating entry ``violation``."""
    comment = comment.strip()
    if not comment:
        raise ValueError("an acknowledgement needs a comment (what was done, or why it is accepted)")
    if len(comment) > MAX_COMMENT:
        raise ValueError(f"comment is {len(comment)} characters; the limit is {MAX_COMMENT}")
    if not violation.decision.is_violation:
        raise ValueError(f"event {violation.event.event_id!r} is not a violation; nothing to acknowledge")
    at = now or datetime.now(UTC)
    target = violation.event.event_id
    return CanonicalEvent(
        event_id=f"dashboard:ack:{uuid.uuid4()}",
        occurred_at=at,
        source="dashboard",
        actor=Actor(id=user, kind=config.actor_kind(user)),
        action=ACK_ACTION,
        # The ledger entry is the resource; it lives in no deployment environment.
        resource=Resource(id=f"ledger:{target}", type="ledger-entry"),
        attributes={
            "acknowledges": target,
            "acknowledged_seq": str(violation.seq),
            "comment": comment,
            "acknowledged_at": format_time(at),
        },
    )
