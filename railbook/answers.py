"""The auditor's answers, as plain dicts (what ``--json`` prints and the text view renders).

Works over anything with the ledger's read API (``ledger.Ledger`` or ``ledger.SegmentReader``).
"""

from __future__ import annotations

from typing import Any

from core.errors import LedgerError
from ledger import Ledger, prove

__all__ = ["ATTRIBUTION_FIELDS", "attribution", "violation_row"]

#: What rail 4 asks every agent-authored change to name.
ATTRIBUTION_FIELDS = ("agent", "on_behalf_of", "task_or_prompt", "diff_sha256")


def violation_row(entry: Any) -> dict[str, Any]:
    """One violating entry as ``railbook violations --json`` prints it."""
    e, d = entry.event, entry.decision
    return {
        "event_id": e.event_id,
        "seq": entry.seq,
        "occurred_at": e.to_dict()["occurred_at"],
        "rails": list(d.rails),
        "policies": list(d.policy_ids),
        "severity": d.severity,
        "titles": [r.title for r in d.reasons],
        "actor": e.actor.id,
        "actor_kind": e.actor.kind,
        "on_behalf_of": e.actor.on_behalf_of,
        "action": e.action,
        "resource": e.resource.id,
        "environment": e.resource.environment,
        "policy_version": d.policy_version,
    }


def _grant(reader: Any, request_id: str) -> dict[str, Any] | None:
    for entry in reader.entries(action="approval:Grant", limit=10_000):
        ap = entry.event.approval
        if ap is not None and ap.request_id == request_id:
            return {
                "event_id": entry.event.event_id,
                "seq": entry.seq,
                "approver": entry.event.actor.id,
                "granted_at": entry.event.to_dict()["occurred_at"],
                "scope": {
                    "actor": ap.actor,
                    "action": ap.action,
                    "resource": ap.resource,
                    "digest": ap.digest,
                },
                "expires_at": entry.event.to_dict()["approval"]["expires_at"],
            }
    return None


def _prompt_event(reader: Any, event: Any) -> dict[str, Any] | None:
    """The user prompt an agent action answered, when the runtime links them (Claude Code ``prompt_id``)."""
    prompt_id = event.attributes.get("prompt_id")
    if not prompt_id or not event.actor.session:
        return None
    entry = reader.get(f"{event.source}:{event.actor.session}:prompt:{prompt_id}")
    if entry is None:
        return None
    return {
        "event_id": entry.event.event_id,
        "seq": entry.seq,
        "prompt_sha256": entry.event.change.prompt_sha256,
        "submitted_at": entry.event.to_dict()["occurred_at"],
    }


def attribution(reader: Any, event_id: str) -> dict[str, Any] | None:
    """Who did it, on whose instruction, under which task, with which approval; the decision; the record."""
    entry = reader.get(event_id)
    if entry is None:
        return None
    e, d = entry.event, entry.decision
    c = e.change
    prompt = _prompt_event(reader, e) if not c.prompt_sha256 else None
    missing = []
    if e.actor.kind == "agent":
        if not e.actor.on_behalf_of:
            missing.append("on_behalf_of")
        if not (c.task or c.prompt_sha256 or prompt):
            missing.append("task_or_prompt")
        if not c.diff_sha256:
            missing.append("diff_sha256")
    approval: dict[str, Any] | None = None
    if d.approval is not None:
        approval = d.approval.to_dict()
        if d.approval.request_id:
            approval["grant"] = _grant(reader, d.approval.request_id)
    record: dict[str, Any] = {
        "seq": entry.seq,
        "leaf_hash": entry.leaf_hash.hex(),
        "chain_hash": entry.chain_hash.hex(),
    }
    if isinstance(reader, Ledger):
        try:
            record["inclusion"] = prove(reader, event_id)
        except LedgerError as exc:
            record["inclusion"] = {"error": str(exc)}
    ed = e.to_dict()
    actor = {k: v for k, v in ed["actor"].items() if k != "on_behalf_of"}
    return {
        "event_id": e.event_id,
        "occurred_at": ed["occurred_at"],
        "source": e.source,
        "actor": actor,
        "on_behalf_of": e.actor.on_behalf_of,
        "action": e.action,
        "resource": ed["resource"],
        "change": ed["change"],
        "prompt_event": prompt,
        "attribution_missing": missing,
        "decision": d.to_dict(),
        "approval": approval,
        "record": record,
    }
