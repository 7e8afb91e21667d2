"""Ledger entries: the exact bytes that are hashed, the chain, and the values the read API returns.

Entry bytes (format version 1) are ``core.canonical_json`` of::

    {"decision": Decision.to_dict(), "event": CanonicalEvent.to_dict(),
     "ingested_at": "<RFC 3339 UTC, microseconds>", "seq": <int>, "v": 1}

(keys sorted, no whitespace). Embedding ``seq`` makes an entry's position part of what is hashed, so
a renumbered, reordered or inserted row is caught even where the chain was recomputed.

- ``leaf_hash = SHA-256(0x00 || entry)`` (RFC 6962),
- ``chain_hash = SHA-256(chain_hash[seq-1] || leaf_hash)``, with 32 zero bytes before seq 0.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.canonical import canonical_json_fast
from core.errors import LedgerError
from core.event import event_from_dict, format_time, parse_time, plain_attributes
from policy import Decision

if TYPE_CHECKING:
    from core.event import CanonicalEvent
    from ledger.checkpoint import Checkpoint

__all__ = [
    "ENTRY_FORMAT_VERSION",
    "GENESIS_CHAIN",
    "AppendResult",
    "DeadLetterRow",
    "Entry",
    "chain_hash",
    "embedded_seq",
    "encode_entry",
    "entry_bytes",
    "entry_template",
    "plain_attributes",
    "index_columns",
]

ENTRY_FORMAT_VERSION = 1
#: the chain value "before" seq 0
GENESIS_CHAIN = b"\x00" * 32
_VERSION = str(ENTRY_FORMAT_VERSION).encode()


def encode_entry(seq: int, ingested_at: str, event: CanonicalEvent, decision: Decision) -> bytes:
    """The entry bytes of ``event`` and ``decision`` at ``seq`` (see the module docstring)."""
    return entry_template(ingested_at) % (decision.canonical_bytes, event.canonical_bytes, seq)


def entry_template(ingested_at: str) -> bytes:
    """The entry bytes with three holes: ``template % (decision bytes, event bytes, seq)``.

    Canonical JSON of an object is its members' canonical JSON joined in key order, and the keys
    of an entry sort as decision, event, ingested_at, seq, v. So an entry is the decision's and the
    event's own canonical bytes (``Decision.canonical_bytes``, computed once per decision object;
    ``CanonicalEvent.canonical_bytes``, kept by serve's consumer process) put in place: no dict of
    the whole entry is built or encoded.
    Tested equal to ``canonical_json`` of the whole entry with hypothesis.
    """
    stamp = canonical_json_fast(ingested_at, plain=True).replace(b"%", b"%%")
    return b'{"decision":%b,"event":%b,"ingested_at":' + stamp + b',"seq":%d,"v":' + _VERSION + b"}"


def entry_bytes(
    seq: int,
    ingested_at: str,
    event_dict: dict[str, Any],
    decision_dict: dict[str, Any],
    attributes: Mapping[str, Any],
) -> bytes:
    """``core.canonical_json`` of the entry built from ``to_dict()`` outputs (the dict-based
    definition ``encode_entry`` is tested against)."""
    obj = {
        "decision": decision_dict,
        "event": event_dict,
        "ingested_at": ingested_at,
        "seq": seq,
        "v": ENTRY_FORMAT_VERSION,
    }
    return canonical_json_fast(obj, plain=plain_attributes(attributes))


def chain_hash(previous: bytes, leaf_hash: bytes) -> bytes:
    return hashlib.sha256(previous + leaf_hash).digest()


def embedded_seq(entry: bytes) -> int | None:
    """The ``seq`` written inside entry bytes, read from the tail without parsing the JSON.

    Sorted keys put the top-level ``"seq"`` after every nested object, so the last occurrence is it.
    """
    i = entry.rfind(b'"seq":')
    if i < 0:
        return None
    j = i + 6
    k = j
    while k < len(entry) and 48 <= entry[k] <= 57:
        k += 1
    return int(entry[j:k]) if k > j else None


def index_columns(event: CanonicalEvent, decision: Decision) -> dict[str, Any]:
    """The queryable columns of an entry, all derived from event and decision (verify re-derives them)."""
    a, r, c = event.actor, event.resource, event.change
    return {
        "event_id": event.event_id,
        "occurred_at": event.occurred_at,
        "source": event.source,
        "actor_id": a.id,
        "actor_kind": a.kind,
        "on_behalf_of": a.on_behalf_of,
        "credential": a.credential,
        "action": event.action,
        "resource_id": r.id,
        "resource_type": r.type,
        "environment": r.environment,
        "outcome": decision.outcome,
        "mode": decision.mode,
        "rails": list(decision.rails),
        "policies": list(decision.policy_ids),
        "severity": decision.severity,
        "policy_version": decision.policy_version,
        "commit": c.commit,
        "pull_request": c.pull_request,
        "task": c.task,
        "request_id": event.approval.request_id if event.approval else event.attributes.get("request_id"),
        "approval_used": decision.approval.request_id if decision.approval else None,
    }


@dataclass(frozen=True)
class Entry:
    """One ledger entry as stored: the event, its decision, and its hashes."""

    seq: int
    """Position in the log (0-based); also the RFC 6962 leaf index."""
    event: CanonicalEvent
    """The event, rebuilt from the entry bytes."""
    decision: Decision
    """The decision, rebuilt from the entry bytes."""
    entry_bytes: bytes
    """The canonical JSON that was hashed."""
    leaf_hash: bytes
    """``SHA-256(0x00 || entry_bytes)``."""
    chain_hash: bytes
    """``SHA-256(previous chain_hash || leaf_hash)``."""
    ingested_at: datetime
    """When the ledger appended it (UTC)."""

    @classmethod
    def from_row(cls, seq: int, entry: bytes, leaf: bytes, chain: bytes) -> Entry:
        try:
            d = json.loads(entry)
            return cls(
                seq=seq,
                event=event_from_dict(d["event"], where=f"ledger entry {seq}"),
                decision=Decision.from_dict(d["decision"]),
                entry_bytes=bytes(entry),
                leaf_hash=bytes(leaf),
                chain_hash=bytes(chain),
                ingested_at=parse_time(d["ingested_at"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise LedgerError(
                f"ledger entry {seq} cannot be decoded ({exc}); run 'railbook verify' to check the ledger"
            ) from exc

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ingested_at": format_time(self.ingested_at),
            "event": self.event.to_dict(),
            "decision": self.decision.to_dict(),
            "leaf_hash": self.leaf_hash.hex(),
            "chain_hash": self.chain_hash.hex(),
        }


@dataclass(frozen=True)
class DeadLetterRow:
    """A stored dead letter."""

    id: int
    received_at: datetime
    source: str
    reason: str
    detail: str
    where: str
    raw: bytes
    truncated: bool


@dataclass(frozen=True)
class AppendResult:
    """What one ``Ledger.append`` did."""

    appended: list[tuple[int, str]]
    """``(seq, event_id)`` of each new entry, in order."""
    duplicates: list[str]
    """Event ids skipped because they were already in the ledger or earlier in the batch."""
    dead_lettered: int
    """Dead letters stored in the same transaction."""
    checkpoint: Checkpoint | None
    """The checkpoint signed right after this append, if one was due."""
