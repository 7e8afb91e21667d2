"""Approvals page logic: pending gate requests, who may answer them, and the approval event.

A *request* is a gate-mode entry the policy answered ``ask`` (a valid approval would allow it);
its id is ``attributes.request_id`` (else the event id). It is *pending* until an approval event
(``approval:Grant`` / ``approval:Deny``) names it. Approving is submitting such an event; the
dashboard refuses up front, with the same named reasons the policy layer uses, what the policy
would reject anyway: ``not-signed-in``, ``not-an-approver``, ``self-approval`` and
``approver-is-instructing-human``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from core.event import Actor, Approval, CanonicalEvent, Resource

if TYPE_CHECKING:
    from core.config import Config

__all__ = [
    "ApprovalRequest",
    "approval_event",
    "approval_history",
    "pending_requests",
    "refusal",
]

logger = logging.getLogger(__name__)

GRANT = "approval:Grant"
DENY = "approval:Deny"
#: requests and answers are few compared with events; these bound the queries that read them
MAX_REQUESTS = 5_000
MAX_ANSWERS = 50_000

REFUSALS = {
    "not-signed-in": "sign in first: only an authenticated approver can answer a request",
    "not-an-approver": "you are not in the approver group ([identities] approvers)",
    "self-approval": "you made this request; someone else must approve it",
    "approver-is-instructing-human": "the agent acts on your instruction; someone else must approve it",
}


@dataclass(frozen=True)
class ApprovalRequest:
    """A gate request: what the agent would do, for whom, where."""

    request_id: str
    event_id: str
    seq: int
    requested_at: datetime
    actor: str
    on_behalf_of: str | None
    action: str
    resource: str
    resource_type: str
    environment: str
    digest: str | None
    """SHA-256 of the exact command, plan or diff, when the request names one."""
    task: str | None
    command: str | None
    """The command or plan text, when the source sent it (``attributes.command``)."""
    reasons: tuple[str, ...]
    """Why it needs approval (the determining policies' titles)."""

    def what(self) -> str:
        return f"{self.actor} wants {self.action} on {self.resource} [{self.environment}]"


def _request(entry: Any) -> ApprovalRequest:
    e, d = entry.event, entry.decision
    return ApprovalRequest(
        request_id=e.attributes.get("request_id") or e.event_id.removeprefix("gate:"),
        event_id=e.event_id,
        seq=entry.seq,
        requested_at=e.occurred_at,
        actor=e.actor.id,
        on_behalf_of=e.actor.on_behalf_of,
        action=e.action,
        resource=e.resource.id,
        resource_type=e.resource.type,
        environment=e.resource.environment,
        digest=e.attributes.get("digest") or e.change.diff_sha256,
        task=e.change.task,
        command=e.attributes.get("command"),
        reasons=tuple(r.title for r in d.reasons),
    )


def _answers(reader: Any) -> list[Any]:
    out = list(reader.entries(action=GRANT, limit=MAX_ANSWERS))
    out += list(reader.entries(action=DENY, limit=MAX_ANSWERS))
    out.sort(key=lambda e: e.seq, reverse=True)
    return out


def pending_requests(reader: Any) -> list[ApprovalRequest]:
    """Gate requests answered ``ask`` that no approval event names yet, newest first."""
    answered = {e.event.approval.request_id for e in _answers(reader) if e.event.approval is not None}
    out: dict[str, ApprovalRequest] = {}
    for entry in reader.entries(source="gate", limit=MAX_REQUESTS):
        d = entry.decision
        if d.mode != "gate" or d.gate != "ask":
            continue
        req = _request(entry)
        if req.request_id not in answered:
            out.setdefault(req.request_id, req)
    return sorted(out.values(), key=lambda r: r.seq, reverse=True)


def approval_history(reader: Any, *, limit: int = 200) -> list[dict[str, Any]]:
    """Approval events (grants and denials), newest first, as table rows."""
    rows = []
    for entry in _answers(reader)[:limit]:
        e = entry.event
        ap = e.approval
        rows.append(
            {
                "seq": entry.seq,
                "at": e.to_dict()["occurred_at"],
                "decision": ap.decision if ap else e.action.split(":")[-1].lower(),
                "approver": e.actor.id,
                "request_id": ap.request_id if ap else "",
                "for": ap.actor if ap else "",
                "action": ap.action if ap else "",
                "resource": ap.resource if ap else "",
                "comment": e.attributes.get("comment", ""),
                "event_id": e.event_id,
            }
        )
    return rows


def refusal(config: Config, user: str | None, request: ApprovalRequest) -> str | None:
    """The named reason ``user`` may not answer ``request``, or ``None`` if they may."""
    if not user:
        return "not-signed-in"
    if not config.is_approver(user):
        return "not-an-approver"
    if user == request.actor:
        return "self-approval"
    if request.on_behalf_of and user == request.on_behalf_of:
        return "approver-is-instructing-human"
    return None


def approval_event(
    config: Config,
    user: str | None,
    request: ApprovalRequest,
    decision: Literal["grant", "deny"],
    *,
    comment: str = "",
    ttl: timedelta | None = None,
    now: datetime | None = None,
) -> CanonicalEvent:
    """The approval event ``user`` submits to answer ``request`` (scoped to its actor, action, resource
    and digest). Raises ``PermissionError`` naming the refusal when ``user`` may not answer it."""
    reason = refusal(config, user, request)
    if reason is not None or user is None:
        reason = reason or "not-signed-in"
        raise PermissionError(f"{reason}: {REFUSALS[reason]}")
    at = now or datetime.now(UTC)
    expires = (
        at + (ttl or timedelta(seconds=config.policy.approval_ttl_seconds)) if decision == "grant" else None
    )
    attrs = {"via": "dashboard"}
    if comment.strip():
        attrs["comment"] = comment.strip()[:4000]
    return CanonicalEvent(
        event_id=f"approval:{request.request_id}:{uuid.uuid4().hex[:12]}",
        occurred_at=at,
        source="approval",
        actor=Actor(id=user, kind=config.actor_kind(user)),
        action=GRANT if decision == "grant" else DENY,
        resource=Resource(id=request.resource, type=request.resource_type, environment=request.environment),
        approval=Approval(
            request_id=request.request_id,
            decision=decision,
            actor=request.actor,
            action=request.action,
            resource=request.resource,
            digest=request.digest,
            expires_at=expires,
        ),
        attributes=attrs,
    )
