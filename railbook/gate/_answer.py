"""What the gate answers: frozen values with a JSON shape (the HTTP body and ``--json`` output)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from core.event import format_time, parse_time
from policy import ApprovalCheck, Reason

__all__ = ["ApprovalReceipt", "GateAnswer", "NeededApproval", "RequestStatus"]

GateDecision = Literal["allow", "deny", "ask"]
Status = Literal["pending", "approved", "denied", "used", "expired", "allowed", "refused"]


def _t(value: datetime | None) -> str | None:
    return format_time(value) if value is not None else None


def _pt(value: Any) -> datetime | None:
    return parse_time(value) if isinstance(value, str) and value else None


@dataclass(frozen=True)
class NeededApproval:
    """The scope a grant must name for the gate to allow the action (DESIGN.md, "approval")."""

    actor: str
    """Whose action: the agent's actor id."""
    action: str
    """The namespaced verb, e.g. ``sql:DropTable``."""
    resource: str
    """The resource id, e.g. ``db://staging-db.internal/app``."""
    digest: str | None
    """SHA-256 (hex) of the exact command, plan or diff; a changed command needs a new approval."""
    environment: str = "unknown"
    """The resource's environment, for the approver's eyes."""
    on_behalf_of: str | None = None
    """The human the agent acts for: the one person besides the agent who may not approve."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "action": self.action,
            "resource": self.resource,
            "digest": self.digest,
            "environment": self.environment,
            "on_behalf_of": self.on_behalf_of,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NeededApproval:
        return cls(
            d["actor"],
            d["action"],
            d["resource"],
            d.get("digest"),
            d.get("environment", "unknown"),
            d.get("on_behalf_of"),
        )


@dataclass(frozen=True)
class GateAnswer:
    """The gate's answer to one proposed action; also a ledger entry (``event_id``, ``seq``)."""

    decision: GateDecision
    """allow: go ahead; deny: a rail forbids it outright; ask: a valid human approval would allow it."""
    request_id: str
    """This request's id: what an approver names in ``railbook approve REQUEST_ID``."""
    reasons: tuple[Reason, ...]
    """The forbidding policies (deny and ask), with rail, severity and title."""
    message: str
    """One paragraph for the agent and its user: what was decided, why, what to do next."""
    policy_version: str
    """SHA-256 of the policy pack that decided."""
    event_id: str
    """The ledger entry holding the request and this answer (``gate:<request_id>``)."""
    seq: int | None = None
    """The entry's position in the ledger."""
    needed_approval: NeededApproval | None = None
    """For ``ask``: the scope a grant must name."""
    approval: ApprovalCheck | None = None
    """What the approval machinery found (the grant used for an allow; why candidates failed)."""
    action: str = ""
    """The proposed action as classified."""
    resource: str = ""
    """The proposed resource as classified."""
    environment: str = "unknown"
    """The resource's environment."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "request_id": self.request_id,
            "reasons": [
                {
                    "policy_id": r.policy_id,
                    "title": r.title,
                    "rail": r.rail,
                    "severity": r.severity,
                    "remediation": r.remediation,
                }
                for r in self.reasons
            ],
            "message": self.message,
            "policy_version": self.policy_version,
            "event_id": self.event_id,
            "seq": self.seq,
            "needed_approval": self.needed_approval.to_dict() if self.needed_approval else None,
            "approval": self.approval.to_dict() if self.approval else None,
            "action": self.action,
            "resource": self.resource,
            "environment": self.environment,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GateAnswer:
        na = d.get("needed_approval")
        ap = d.get("approval")
        return cls(
            decision=d["decision"],
            request_id=d["request_id"],
            reasons=tuple(Reason.from_dict(r) for r in d.get("reasons", ())),
            message=d.get("message", ""),
            policy_version=d.get("policy_version", ""),
            event_id=d.get("event_id", ""),
            seq=d.get("seq"),
            needed_approval=NeededApproval.from_dict(na) if na else None,
            approval=ApprovalCheck.from_dict(ap) if ap else None,
            action=d.get("action", ""),
            resource=d.get("resource", ""),
            environment=d.get("environment", "unknown"),
        )


@dataclass(frozen=True)
class RequestStatus:
    """Where a gate request stands (``GET /v1/requests/{id}``, ``railbook approve --status``)."""

    request_id: str
    status: Status
    """pending (waiting for an approver), approved (granted, not used yet), denied, used (a grant
    consumed by the one action it allowed), expired (the grant or the wait lapsed), allowed (the gate
    said yes without needing an approval), refused (the gate said no outright)."""
    gate_decision: GateDecision | None
    """What the gate answered when asked."""
    actor: str | None = None
    action: str | None = None
    resource: str | None = None
    environment: str | None = None
    digest: str | None = None
    on_behalf_of: str | None = None
    requested_at: datetime | None = None
    approver: str | None = None
    decided_at: datetime | None = None
    expires_at: datetime | None = None
    used_by: tuple[str, ...] = ()
    """Event ids that consumed the grant (the gate re-ask, then the executed action)."""
    reasons: tuple[Reason, ...] = ()
    policy_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "status": self.status,
            "gate_decision": self.gate_decision,
            "actor": self.actor,
            "action": self.action,
            "resource": self.resource,
            "environment": self.environment,
            "digest": self.digest,
            "on_behalf_of": self.on_behalf_of,
            "requested_at": _t(self.requested_at),
            "approver": self.approver,
            "decided_at": _t(self.decided_at),
            "expires_at": _t(self.expires_at),
            "used_by": list(self.used_by),
            "reasons": [r.to_dict() for r in self.reasons],
            "policy_version": self.policy_version,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RequestStatus:
        return cls(
            request_id=d["request_id"],
            status=d["status"],
            gate_decision=d.get("gate_decision"),
            actor=d.get("actor"),
            action=d.get("action"),
            resource=d.get("resource"),
            environment=d.get("environment"),
            digest=d.get("digest"),
            on_behalf_of=d.get("on_behalf_of"),
            requested_at=_pt(d.get("requested_at")),
            approver=d.get("approver"),
            decided_at=_pt(d.get("decided_at")),
            expires_at=_pt(d.get("expires_at")),
            used_by=tuple(d.get("used_by", ())),
            reasons=tuple(Reason.from_dict(r) for r in d.get("reasons", ())),
            policy_version=d.get("policy_version"),
        )


@dataclass(frozen=True)
class ApprovalReceipt:
    """An approval the gate accepted and recorded (``POST /v1/approvals``)."""

    request_id: str
    decision: Literal["grant", "deny"]
    approver: str
    event_id: str
    """The ``approval:Grant`` / ``approval:Deny`` ledger entry."""
    seq: int | None
    expires_at: datetime | None
    scope: NeededApproval

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "decision": self.decision,
            "approver": self.approver,
            "event_id": self.event_id,
            "seq": self.seq,
            "expires_at": _t(self.expires_at),
            "scope": self.scope.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ApprovalReceipt:
        return cls(
            request_id=d["request_id"],
            decision=d["decision"],
            approver=d["approver"],
            event_id=d["event_id"],
            seq=d.get("seq"),
            expires_at=_pt(d.get("expires_at")),
            scope=NeededApproval.from_dict(d["scope"]),
        )
