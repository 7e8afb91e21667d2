"""Gate links and bypass detection (rail 3; added by the gate, issue 7).

Every gate-mode decision is a *gate request*. When an executed action arrives later from an
audit source (CloudTrail, Kubernetes audit, GitHub) under an agent's identity or credentials:

- it is **linked** to the latest matching gate request (same action and resource, an identity in
  common — actor id, credential, or the role behind an assumed-role session) made within
  ``[policy] bypass_window_seconds`` before it. When that request was allowed with a grant, the
  execution is covered by the same grant (the gate said yes to exactly one run, and the audit
  record cannot carry the command digest; a request the gate refused passes no grant on), and
  it inherits the request's attribution facts
  (the human, the task, the digest) that an audit record cannot carry either;
- with **no** matching request, a destructive action outside dev is a gate bypass: the agent acted
  outside its hook (a subagent, a tool the hook does not cover, a shell it opened itself). The
  fact enters Cedar as ``context.event.gate_bypass``; ``rail3-gate-bypass`` forbids it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.config import Config
    from core.event import Actor, CanonicalEvent
    from policy._decision import Decision

__all__ = ["BYPASS_SOURCES", "GateLinks", "GateRequestRecord", "attribution_of", "identities"]

#: sources that report actions after they ran, outside any agent hook
BYPASS_SOURCES = frozenset({"cloudtrail", "k8s-audit", "github"})

_ASSUMED = re.compile(r"arn:(aws[\w-]*):sts::(\d{12}):assumed-role/([^/]+)/.+\Z")


def attribution_of(event: CanonicalEvent) -> tuple[bool, ...]:
    """The rail-4 attribution flags, in the engine's order (on_behalf_of, task, prompt, diff, commit,
    pull_request, ticket)."""
    c = event.change
    return (
        bool(event.actor.on_behalf_of),
        bool(c.task),
        bool(c.prompt_sha256),
        bool(c.diff_sha256),
        bool(c.commit),
        bool(c.pull_request),
        bool(c.ticket),
    )


def identities(actor: Actor) -> frozenset[str]:
    """The ids an actor is known by: id, credential, and for an assumed-role session its role."""
    out: set[str] = set()
    for value in (actor.id, actor.credential):
        if not value:
            continue
        out.add(value)
        m = _ASSUMED.match(value)
        if m:
            part, account, role = m.groups()
            out.add(f"arn:{part}:sts::{account}:assumed-role/{role}")
            out.add(f"arn:{part}:iam::{account}:role/{role}")
    return frozenset(out)


@dataclass
class GateRequestRecord:
    """One gate request as the policy remembers it (derived state)."""

    event_id: str
    request_id: str
    ids: frozenset[str]
    action: str
    resource: str
    at: datetime
    answer: str
    """allow / deny / ask"""
    grant_request: str | None
    """The request id of the grant that allowed it, if one did."""
    attribution: tuple[bool, ...]
    linked: list[str] = field(default_factory=list)


class GateLinks:
    """Gate requests by (action, resource), for linking executions and spotting bypasses."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._window = timedelta(seconds=config.policy.bypass_window_seconds)
        self._by_key: dict[tuple[str, str], list[GateRequestRecord]] = {}
        self._seen: set[str] = set()

    def record(self, event: CanonicalEvent, decision: Decision) -> None:
        """Remember a gate-mode decision (idempotent per event id)."""
        if event.event_id in self._seen:
            return
        self._seen.add(event.event_id)
        ap = decision.approval
        rec = GateRequestRecord(
            event_id=event.event_id,
            request_id=(event.attributes.get("request_id") if event.attributes else None) or event.event_id,
            ids=identities(event.actor),
            action=event.action,
            resource=event.resource.id,
            at=event.occurred_at,
            answer=decision.gate or decision.outcome,
            # only an allowed request spent its grant; a refused one passes nothing to the execution
            grant_request=(
                ap.request_id
                if ap is not None and ap.status == "covered" and decision.gate == "allow"
                else None
            ),
            attribution=attribution_of(event),
        )
        self._by_key.setdefault((rec.action, rec.resource), []).append(rec)

    def watches(self, event: CanonicalEvent) -> bool:
        """Whether ``event`` is an audit-source record under an agent's identity or credentials."""
        if event.source not in BYPASS_SOURCES:
            return False
        if event.actor.kind == "agent":
            return True
        cred = event.actor.credential
        return bool(cred) and self._config.actor_kind(cred) == "agent"

    def find(self, event: CanonicalEvent) -> GateRequestRecord | None:
        """The latest gate request matching ``event`` within the window before it."""
        ids = identities(event.actor)
        best: GateRequestRecord | None = None
        for rec in self._by_key.get((event.action, event.resource.id), ()):
            if rec.at > event.occurred_at or event.occurred_at - rec.at > self._window:
                continue
            if rec.ids & ids and (best is None or rec.at > best.at):
                best = rec
        return best
