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

import orjson

from core.canonical import canonical_json
from core.errors import LedgerError
from core.event import event_from_dict, format_time, parse_time
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
    "plain_attributes",
    "index_columns",
]

ENTRY_FORMAT_VERSION = 1
#: the chain value "before" seq 0
GENESIS_CHAIN = b"\x00" * 32


def encode_entry(seq: int, ingested_at: str, event: CanonicalEvent, decision: Decision) -> bytes:
    """The entry bytes of ``event`` and ``decision`` at ``seq`` (see the module docstring)."""
    return entry_bytes(seq, ingested_at, event.to_dict(), decision.to_dict(), event.attributes)


_SORT_KEYS = orjson.OPT_SORT_KEYS


def entry_bytes(
    seq: int,
    ingested_at: str,
    event_dict: dict[str, Any],
    decision_dict: dict[str, Any],
    attributes: Mapping[str, Any],
) -> bytes:
    """``core.canonical_json`` of the entry built from ready-made ``to_dict()`` outputs — fast.

    orjson with sorted keys writes the same bytes as ``canonical_json`` for every value the entry
    model allows (str, int, bool, None, lists, dicts with str keys; tested against it with
    hypothesis). The reference encoder decides whenever that may not hold: keys outside ASCII
    (JCS sorts astral keys by UTF-16 units), attribute values that are not strings (the one
    free-form part of an event, where a float would be written differently), and anything
    orjson refuses (integers beyond 64 bits, lone surrogates, non-string keys).
    """
    obj = {
        "decision": decision_dict,
        "event": event_dict,
        "ingested_at": ingested_at,
        "seq": seq,
        "v": ENTRY_FORMAT_VERSION,
    }
    if not plain_attributes(attributes):
        return canonical_json(obj)
    try:
        return orjson.dumps(obj, option=_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError: let the reference encoder accept or reject it
        return canonical_json(obj)


def plain_attributes(attributes: Mapping[str, Any]) -> bool:
    """Whether orjson may encode an event with these attributes (ASCII string keys, string values).

    Every other part of an event is typed; attributes are the free-form part (see ``entry_bytes``).
    """
    for k, v in attributes.items():
        if type(v) is not str or type(k) is not str or not k.isascii():
            return False
    return True


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
