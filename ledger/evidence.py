"""Inclusion proofs and offline evidence packs.

An evidence pack (JSON, ``"format": "railbook-evidence/1"``) holds everything an auditor needs and
nothing they must trust: the entries (their exact canonical bytes), an RFC 9162 inclusion proof of
each against one signed checkpoint, that checkpoint (a C2SP signed note), the ledger's public key
(signed-note verifier format), the policy-set versions, and a human summary of the attribution
chain. ``verify_evidence`` re-derives every leaf hash, checks every proof against the signed root,
checks the signature (with a separately trusted key when given), and rebuilds the summary from the
verified entries — it never trusts the pack's own summary.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import EvidenceError, ProofError
from core.event import format_time, parse_time
from ledger.checkpoint import Checkpoint
from ledger.entry import Entry, embedded_seq
from ledger.merkle import leaf_hash, verify_inclusion
from ledger.note import Verifier

if TYPE_CHECKING:
    from ledger.store import Ledger

__all__ = ["EVIDENCE_FORMAT", "EvidenceReport", "build_evidence", "prove", "summarize", "verify_evidence"]

EVIDENCE_FORMAT = "railbook-evidence/1"


def _covering_checkpoint(ledger: Ledger, seq: int) -> Checkpoint:
    cp = ledger.latest_checkpoint()
    if (cp is None or cp.tree_size <= seq) and not ledger.read_only:
        cp = ledger.checkpoint()
    if cp is None or cp.tree_size <= seq:
        raise ProofError(
            f"entry seq {seq} is not yet covered by a signed checkpoint (latest covers "
            f"{cp.tree_size if cp else 0} entries); wait for the next checkpoint or run with write access"
        )
    return cp


def prove(ledger: Ledger, event_id: str) -> dict[str, Any]:
    """The inclusion proof of ``event_id`` against the latest signed checkpoint (verified before returning)."""  # noqa: E501
    entry = ledger.get(event_id)
    if entry is None:
        raise ProofError(
            f"event {event_id!r} is not in the ledger; check the id with 'railbook violations' or the dashboard"  # noqa: E501
        )
    cp = _covering_checkpoint(ledger, entry.seq)
    proof = ledger.inclusion_proof(entry.seq, cp.tree_size)
    ok = verify_inclusion(entry.leaf_hash, entry.seq, cp.tree_size, proof, cp.root_hash)
    if not ok:
        raise ProofError(f"inclusion proof for seq {entry.seq} does not verify; run 'railbook verify'")
    return {
        "event_id": event_id,
        "seq": entry.seq,
        "leaf_index": entry.seq,
        "leaf_hash": entry.leaf_hash.hex(),
        "tree_size": cp.tree_size,
        "root_hash": cp.root_hash.hex(),
        "inclusion_proof": [p.hex() for p in proof],
        "checkpoint": cp.signed_note_text,
        "public_key": ledger.verifier().encode(),
        "verified": True,
    }


def summarize(entry: Entry) -> str:
    """One line of the attribution chain: who, for whom, what, where, why, decided how, approved by whom."""
    ev, dec = entry.event, entry.decision
    a, r, c = ev.actor, ev.resource, ev.change
    parts = [f"seq {entry.seq}", format_time(ev.occurred_at), f"{a.id} ({a.kind})"]
    if a.on_behalf_of:
        parts.append(f"on behalf of {a.on_behalf_of}")
    parts.append(f"{ev.action} on {r.id} [{r.environment}]")
    verdict = dec.outcome.upper()
    if dec.reasons:
        verdict += " " + ", ".join(f"rail {x.rail} {x.severity} {x.policy_id}" for x in dec.reasons)
    parts.append(verdict)
    for label, val in (
        ("task", c.task),
        ("ticket", c.ticket),
        ("commit", c.commit),
        ("pr", c.pull_request),
        ("prompt sha256", c.prompt_sha256),
        ("diff sha256", c.diff_sha256),
    ):
        if val:
            parts.append(f"{label}: {val}")
    if dec.approval is not None:
        ap = dec.approval
        parts.append(f"approval {ap.status}" + (f" {ap.request_id} by {ap.approver}" if ap.approver else ""))
    if ev.approval is not None:
        g = ev.approval
        parts.append(f"{g.decision} of {g.request_id} for {g.actor} {g.action} on {g.resource}")
    return " · ".join(parts)


def build_evidence(
    ledger: Ledger,
    *,
    event_id: str | None = None,
    commit: str | None = None,
    pull_request: str | None = None,
    resource: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """An evidence pack for one event, or for a change (commit / pull request / resource / time range)."""
    query = {
        k: v
        for k, v in {
            "event_id": event_id,
            "commit": commit,
            "pull_request": pull_request,
            "resource": resource,
            "since": since,
            "until": until,
        }.items()
        if v is not None
    }
    if event_id is not None:
        one = ledger.get(event_id)
        if one is None:
            raise EvidenceError(f"event {event_id!r} is not in the ledger")
        found = [one]
        if one.decision.approval is not None and one.decision.approval.request_id:
            # the approval events behind the grant this event used: the attribution chain
            rid = one.decision.approval.request_id
            extra = ledger.entries(action="approval:*", limit=10_000, ascending=True)
            found += [e for e in extra if e.event.approval and e.event.approval.request_id == rid]
    else:
        if not query:
            raise EvidenceError(
                "say what the evidence is for: an event id, --commit, --pull-request, --resource or --since/--until"  # noqa: E501
            )
        found = ledger.find(
            commit=commit, pull_request=pull_request, resource=resource, since=since, until=until
        )
    if not found:
        raise EvidenceError(f"no ledger entries match {json.dumps({k: str(v) for k, v in query.items()})}")
    found = sorted({e.seq: e for e in found}.values(), key=lambda e: e.seq)
    cp = _covering_checkpoint(ledger, found[-1].seq)
    items = []
    for e in found:
        proof = ledger.inclusion_proof(e.seq, cp.tree_size)
        items.append(
            {
                "seq": e.seq,
                "entry": e.entry_bytes.decode("utf-8"),
                "leaf_hash": e.leaf_hash.hex(),
                "inclusion_proof": [base64.b64encode(p).decode() for p in proof],
            }
        )
    return {
        "format": EVIDENCE_FORMAT,
        "created_at": format_time(datetime.now(UTC)),
        "query": {k: (format_time(v) if isinstance(v, datetime) else v) for k, v in query.items()},
        "origin": cp.origin,
        "checkpoint": {"note": cp.signed_note_text, "created_at": format_time(cp.created_at)},
        "public_key": ledger.verifier().encode(),
        "policy_versions": sorted({e.decision.policy_version for e in found}),
        "summary": [summarize(e) for e in found],
        "entries": items,
        "how_to_verify": "railbook verify-evidence THIS_FILE --key <the ledger's published verifier key>; "
        "or by hand: leaf = SHA-256(0x00 || entry UTF-8 bytes), RFC 9162 inclusion proof (base64) "
        "against the root in the C2SP signed checkpoint note, Ed25519 signature by public_key.",
    }


@dataclass
class EvidenceReport:
    """Outcome of checking a pack offline."""

    ok: bool = False
    reason: str | None = None
    """Why it failed (the first failure), in words."""
    key: str | None = None
    key_trusted: bool = False
    """True when the signature was checked with a key given separately (not the pack's own)."""
    tree_size: int | None = None
    root_hash: str | None = None
    entries_verified: int = 0
    summary: list[str] = field(default_factory=list)
    """Rebuilt from the verified entries (not copied from the pack)."""
    policy_versions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _fail(report: EvidenceReport, reason: str) -> EvidenceReport:
    report.ok = False
    report.reason = reason
    return report


def verify_evidence(
    pack: dict[str, Any] | bytes | str | Path, trusted_key: str | Path | None = None
) -> EvidenceReport:
    """Check an evidence pack with nothing but the pack (and optionally a trusted verifier key)."""
    report = EvidenceReport()
    if isinstance(pack, Path):
        try:
            pack = pack.read_bytes()
        except OSError as exc:
            raise EvidenceError(f"evidence pack {str(pack)!r} cannot be read: {exc}") from exc
    if isinstance(pack, bytes | str):
        try:
            pack = json.loads(pack)
        except ValueError as exc:
            return _fail(report, f"pack is not JSON: {exc}")
    if not isinstance(pack, dict) or pack.get("format") != EVIDENCE_FORMAT:
        return _fail(report, f"not an evidence pack: expected format {EVIDENCE_FORMAT!r}")
    try:
        pack_key = Verifier.parse(str(pack["public_key"]))
        if trusted_key is not None:
            text = (
                Path(trusted_key).read_text()
                if isinstance(trusted_key, Path)
                or (isinstance(trusted_key, str) and Path(trusted_key).is_file())
                else str(trusted_key)
            )
            key = Verifier.parse(text.strip())
            report.key_trusted = True
            if key != pack_key:
                return _fail(
                    report, f"the pack names key {pack_key.encode()}, not the trusted key {key.encode()}"
                )
        else:
            key = pack_key
        report.key = key.encode()
        note = pack["checkpoint"]["note"]
        cp = Checkpoint.from_note(str(note), parse_time(str(pack["checkpoint"]["created_at"])))
        try:
            cp.verify(key)
        except ValueError as exc:
            return _fail(report, f"checkpoint signature: {exc}")
        report.tree_size, report.root_hash = cp.tree_size, cp.root_hash.hex()
        entries = pack["entries"]
        if not isinstance(entries, list) or not entries:
            return _fail(report, "pack holds no entries")
        verified: list[Entry] = []
        for item in entries:
            seq = int(item["seq"])
            data = str(item["entry"]).encode("utf-8")
            if embedded_seq(data) != seq:
                return _fail(report, f"entry listed as seq {seq} was written as seq {embedded_seq(data)}")
            lh = leaf_hash(data)
            proof = [base64.b64decode(p, validate=True) for p in item["inclusion_proof"]]
            if not verify_inclusion(lh, seq, cp.tree_size, proof, cp.root_hash):
                return _fail(
                    report,
                    f"entry seq {seq}: its inclusion proof does not lead to the signed root "
                    f"{cp.root_hash.hex()} (the entry or the proof was altered)",
                )
            verified.append(Entry.from_row(seq, data, lh, b""))
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        return _fail(report, f"malformed pack: {type(exc).__name__}: {exc}")
    except Exception as exc:  # e.g. an entry that no longer decodes as a canonical event
        return _fail(report, f"pack could not be checked: {exc}")
    report.entries_verified = len(verified)
    report.summary = [summarize(e) for e in verified]
    report.policy_versions = sorted({e.decision.policy_version for e in verified})
    report.ok = True
    return report
