"""The decision the policy engine returns for one event (DESIGN.md, "Policy")."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from core.canonical import canonical_json_fast

__all__ = ["SEVERITIES", "ApprovalCheck", "Decision", "Reason"]

#: lowest to highest
SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class Reason:
    """One determining policy of a Deny, with its annotations."""

    policy_id: str
    """The policy's ``@id`` annotation (e.g. ``rail1-agent-in-prod``)."""
    rail: int
    """Which of the four rails (1-4) it enforces (``@rail``)."""
    severity: str
    """``@severity``: one of ``SEVERITIES``."""
    title: str
    """``@title``: one line for humans."""
    remediation: str | None = None
    """``@remediation``: what to do about it."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy_id": self.policy_id,
            "rail": self.rail,
            "severity": self.severity,
            "title": self.title,
            "remediation": self.remediation,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Reason:
        return cls(d["policy_id"], int(d["rail"]), d["severity"], d["title"], d.get("remediation"))


@dataclass(frozen=True)
class ApprovalCheck:
    """What the approval machinery found for an event that needed one."""

    status: Literal["not-needed", "covered", "missing", "invalid"]
    """not-needed (not destructive here), covered (a valid grant was used), missing (no grant names
    this action), invalid (grants exist but each fails a condition: see ``failures``)."""
    request_id: str | None = None
    """The approval request whose grant covers this event (status ``covered``). It is consumed by
    a detect-mode event and by a gate ``allow``; a gate ``deny``/``ask`` leaves it unspent."""
    approver: str | None = None
    """Who granted it (status ``covered``)."""
    failures: tuple[str, ...] = ()
    """Named reasons candidate grants were rejected: ``self-approval``, ``approver-is-instructing-human``,
    ``not-an-approver``, ``action-mismatch``, ``resource-mismatch``, ``actor-mismatch``,
    ``digest-mismatch``, ``expired``, ``already-used``, ``granted-after-action``, ``denied``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "request_id": self.request_id,
            "approver": self.approver,
            "failures": list(self.failures),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ApprovalCheck:
        return cls(d["status"], d.get("request_id"), d.get("approver"), tuple(d.get("failures", ())))


@dataclass(frozen=True)
class Decision:
    """Allow or deny, why, and under which policy-set version."""

    outcome: Literal["allow", "deny"]
    """A ``deny`` is a violation (detect mode) or a refusal (gate mode)."""
    reasons: tuple[Reason, ...]
    """The determining ``forbid`` policies of a deny (empty for an allow)."""
    policy_version: str
    """SHA-256 (hex) over schema + policies + catalog: a past decision can be re-evaluated."""
    approval: ApprovalCheck | None = None
    """Approval facts for destructive actions; ``None`` when not destructive."""
    mode: Literal["detect", "gate"] = "detect"
    """detect: it already happened; gate: it is proposed."""
    gate: Literal["allow", "deny", "ask"] | None = None
    """Gate mode only: ``ask`` = a valid approval would allow it."""
    notes: tuple[str, ...] = ()
    """Facts worth keeping: ``unknown-action``, ``claimed-kind:human``, … (sorted, de-duplicated)."""

    # Derived values are computed once per object: the engine hands the same Decision to every
    # event with the same answer, and the ledger reads these for each entry it writes.

    @cached_property
    def rails(self) -> tuple[int, ...]:
        """The rails violated, ascending."""
        return tuple(sorted({r.rail for r in self.reasons}))

    @cached_property
    def severity(self) -> str | None:
        """The highest severity among the reasons (``None`` for an allow)."""
        if not self.reasons:
            return None
        return max((r.severity for r in self.reasons), key=_severity_rank)

    @cached_property
    def policy_ids(self) -> tuple[str, ...]:
        return tuple(r.policy_id for r in self.reasons)

    @cached_property
    def canonical_bytes(self) -> bytes:
        """``core.canonical.canonical_json(self.to_dict())``: the ``decision`` member of a ledger entry.
        Every key is fixed ASCII and every scalar a string, small integer or None (``plain``)."""
        return canonical_json_fast(self.to_dict(), plain=True)

    @property
    def is_violation(self) -> bool:
        """A detect-mode deny: a rail was broken. A gate-mode deny is an action stopped before it ran."""
        return self.outcome == "deny" and self.mode == "detect"

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reasons": [r.to_dict() for r in self.reasons],
            "rails": list(self.rails),
            "severity": self.severity,
            "policy_version": self.policy_version,
            "approval": self.approval.to_dict() if self.approval else None,
            "mode": self.mode,
            "gate": self.gate,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Decision:
        return cls(
            outcome=d["outcome"],
            reasons=tuple(Reason.from_dict(r) for r in d.get("reasons", ())),
            policy_version=d["policy_version"],
            approval=ApprovalCheck.from_dict(d["approval"]) if d.get("approval") else None,
            mode=d.get("mode", "detect"),
            gate=d.get("gate"),
            notes=tuple(d.get("notes", ())),
        )


def _severity_rank(s: str) -> int:
    return SEVERITIES.index(s) if s in SEVERITIES else len(SEVERITIES)
