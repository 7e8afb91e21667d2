"""Approvals with separation of duties, derived from events (never stored as mutable truth).

An ``ApprovalBook`` is a fold over the ledger's history: approval events (``approval:Grant`` /
``approval:Deny``) add grants and denials; decisions that consumed a grant mark it used; gate
decisions that answered ``ask`` open a pending request. ``ApprovalBook.rebuild`` replays that
history; the engine updates the same book as it evaluates, so evaluation order is the only order.

A grant covers an action event when **all** of these hold; each one that fails is a distinct,
named reason in ``ApprovalCheck.failures``:

================================  =====================================================
``denied``                        the request was denied (an ``approval:Deny`` for it)
``self-approval``                 the approver is the actor
``approver-is-instructing-human`` the approver is the human the agent acts for
``not-an-approver``               the approver is not a configured human approver
``actor-mismatch``                the grant names another actor
``action-mismatch``               the grant names another action
``resource-mismatch``             the grant names another resource
``digest-mismatch``               the grant names a digest and the event's diff hash differs
``granted-after-action``          the grant was made after the action
``expired``                       ``expires_at`` (else grant time + approval TTL) has passed
``already-used``                  an earlier event consumed it
================================  =====================================================

Use: a grant is consumed only by an answer that lets the action through.

- Detect mode (the action already ran): an event the grant covers consumes it, **even when the
  decision is a deny for another rail** (missing attribution, agent in prod): the approval was
  for that run, and leaving it unspent would let a second run ride on it.
- Gate mode (the action is proposed): only a gate ``allow`` consumes it. A request the gate
  refuses for another rail (``deny``) or sends for approval (``ask``) leaves the grant for the
  corrected request; its decision still reports the grant (status ``covered``) so the answer
  says the approval is fine and something else is not. The one execution that follows an
  ``allow`` may still use the grant: the gate said yes to exactly one run.

Re-evaluating the same event id is idempotent; ``rebuild`` applies the same rule to history.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from policy._bypass import GateLinks
from policy._decision import ApprovalCheck

if TYPE_CHECKING:
    from core.config import Config
    from core.event import CanonicalEvent
    from policy._decision import Decision

__all__ = ["ApprovalBook", "ApprovalRequest"]

logger = logging.getLogger(__name__)

Mode = Literal["detect", "gate"]


@dataclass(frozen=True)
class ApprovalRequest:
    """The state of one approval request, as the gate and the approvals UI show it."""

    request_id: str
    status: Literal["pending", "granted", "denied", "used", "expired"]
    actor: str | None = None
    """Whose action is (to be) approved."""
    action: str | None = None
    resource: str | None = None
    digest: str | None = None
    """The diff / command digest the request carried (a grant then covers only that digest)."""
    requested_at: datetime | None = None
    request_event_id: str | None = None
    """The gate event that asked (``None`` when a grant arrived without a request)."""
    on_behalf_of: str | None = None
    approver: str | None = None
    decided_at: datetime | None = None
    expires_at: datetime | None = None
    used_by: tuple[str, ...] = ()
    """Event ids that consumed the grant."""


@dataclass
class _Grant:
    """A grant or denial as recorded from an approval event (internal, derived state)."""

    event_id: str
    request_id: str
    approver: str
    decision: Literal["grant", "deny"]
    actor: str
    action: str
    resource: str
    digest: str | None
    granted_at: datetime
    expires_at: datetime
    uses: list[tuple[str, Mode]] = field(default_factory=list)


@dataclass
class _Request:
    request_id: str
    event_id: str
    actor: str
    action: str
    resource: str
    digest: str | None
    on_behalf_of: str | None
    requested_at: datetime


@dataclass(frozen=True)
class Found:
    """Result of looking for a grant: the covering grant, or why the candidates failed."""

    grant: _Grant | None
    candidates: int
    """Grants about this event that were checked: all of them, unless one covers it (then those
    up to it). Zero: none names it (``missing``)."""
    failures: tuple[str, ...]

    def to_check(self) -> ApprovalCheck:
        if self.grant is not None:
            return ApprovalCheck("covered", self.grant.request_id, self.grant.approver)
        if self.candidates == 0:
            return ApprovalCheck("missing")
        return ApprovalCheck("invalid", failures=self.failures)

    @property
    def status(self) -> str:
        """The ``context.approval.status`` value: none / valid / invalid."""
        if self.grant is not None:
            return "valid"
        return "invalid" if self.candidates else "none"


_NONE = Found(None, 0, ())


class _Scope(list[_Grant]):
    """The grants of one scope-index entry (a resource, or an actor and action)."""

    prune_at: datetime | None = None
    """The earliest ``expires_at + _RETAIN`` among them: a prune before then would drop nothing."""

    def add(self, g: _Grant) -> None:
        self.append(g)
        at = g.expires_at + _RETAIN
        if self.prune_at is None or at < self.prune_at:
            self.prune_at = at

    def prune(self, now: datetime) -> None:
        """Drop grants long expired (not from the request index): a busy resource must not make
        every check scan its whole history. A no-op, without a scan, until one is due."""
        if self.prune_at is None or self.prune_at >= now:
            return
        self[:] = [g for g in self if g.expires_at + _RETAIN >= now]
        self.prune_at = min((g.expires_at + _RETAIN for g in self), default=None)


# scope indexes keep grants this long past expiry, so "expired" can still be named
_RETAIN = timedelta(days=1)
_PRUNE_AT = 32


class ApprovalBook:
    """Event-sourced approval state: grants, denials, their uses and pending gate requests."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._ttl = timedelta(seconds=config.policy.approval_ttl_seconds)
        self._grants: dict[str, _Grant] = {}  # by approval event id
        self._by_request: dict[str, list[_Grant]] = {}
        self._by_resource: dict[str, _Scope] = {}
        self._by_actor_action: dict[tuple[str, str], _Scope] = {}
        self._denied: set[str] = set()  # request ids with a denial
        self._requests: dict[str, _Request] = {}
        self._approver_cache: dict[str, bool] = {}
        self.gates = GateLinks(config)
        """Gate requests, for linking executions to them and spotting bypasses (``policy._bypass``)."""

    # --- building ---------------------------------------------------------------------------------

    @classmethod
    def rebuild(cls, config: Config, records: Iterable[tuple[CanonicalEvent, Decision]]) -> ApprovalBook:
        """Fold the ledger's history (in ledger order) into a book."""
        book = cls(config)
        for event, decision in records:
            book.observe(event, decision)
        return book

    def observe(self, event: CanonicalEvent, decision: Decision) -> None:
        """Take in one ledger record: an approval event, a consumed grant, or a gate ``ask``.

        Idempotent: the engine already records what it evaluates, so observing the same record
        again changes nothing.
        """
        if event.approval is not None:
            self.record_approval(event)
        ap = decision.approval
        spends = decision.mode == "detect" or decision.gate == "allow"
        if spends and ap is not None and ap.status == "covered" and ap.request_id:
            g = self._spent_by(event, decision.mode, ap.request_id)
            if g is not None:
                self.use(g, event.event_id, decision.mode)
        if decision.mode == "gate" and decision.gate == "ask":
            self.record_request(event)
        if decision.mode == "gate":
            self.gates.record(event, decision)

    def _spent_by(self, event: CanonicalEvent, mode: Mode, request_id: str) -> _Grant | None:
        """The grant of ``request_id`` that the engine used for ``event``: the one ``find`` picks
        now (the book is in the state the engine saw; a request can hold several grants), else
        the one a linked gate request passed on (``linked_grant``), else the first that names
        the event's actor and resource (history from before this rule)."""
        found = self.find(event, mode)
        if found.grant is not None and found.grant.request_id == request_id:
            return found.grant
        if mode == "detect":
            linked = self.linked_grant(request_id)
            if linked is not None:
                return linked
        for g in self._by_request.get(request_id, ()):
            if g.decision == "grant" and g.actor == event.actor.id and g.resource == event.resource.id:
                return g
        return None

    def record_approval(self, event: CanonicalEvent) -> None:
        """Record the grant or denial an approval event carries."""
        ap = event.approval
        if ap is None or event.event_id in self._grants:
            return
        granted_at = event.occurred_at
        g = _Grant(
            event_id=event.event_id,
            request_id=ap.request_id,
            approver=event.actor.id,
            decision=ap.decision,
            actor=ap.actor,
            action=ap.action,
            resource=ap.resource,
            digest=ap.digest,
            granted_at=granted_at,
            expires_at=ap.expires_at if ap.expires_at is not None else granted_at + self._ttl,
        )
        self._grants[g.event_id] = g
        self._by_request.setdefault(g.request_id, []).append(g)
        self._by_resource.setdefault(g.resource, _Scope()).add(g)
        self._by_actor_action.setdefault((g.actor, g.action), _Scope()).add(g)
        if g.decision == "deny":
            self._denied.add(g.request_id)
        logger.debug(
            "approval recorded request_id=%s decision=%s approver=%s", g.request_id, g.decision, g.approver
        )

    def record_request(self, event: CanonicalEvent) -> None:
        """Open a pending request for a gate-mode event that was answered ``ask``."""
        rid = request_id_of(event)
        if rid in self._requests:
            return
        self._requests[rid] = _Request(
            request_id=rid,
            event_id=event.event_id,
            actor=event.actor.id,
            action=event.action,
            resource=event.resource.id,
            digest=event.change.diff_sha256,
            on_behalf_of=event.actor.on_behalf_of,
            requested_at=event.occurred_at,
        )

    def linked_grant(self, request_id: str) -> _Grant | None:
        """The grant of ``request_id`` that a gate decision used and no execution has used yet."""
        for g in self._by_request.get(request_id, ()):
            if g.decision == "grant" and not any(m == "detect" for _, m in g.uses):
                return g
        return None

    def use(self, grant: _Grant, event_id: str, mode: Mode) -> None:
        """Mark ``grant`` consumed by ``event_id`` (idempotent)."""
        if any(eid == event_id for eid, _ in grant.uses):
            return
        grant.uses.append((event_id, mode))

    # --- checking -------------------------------------------------------------------------------------

    def _is_approver(self, who: str) -> bool:
        hit = self._approver_cache.get(who)
        if hit is None:
            hit = self._config.is_approver(who) and self._config.actor_kind(who) == "human"
            self._approver_cache[who] = hit
        return hit

    @staticmethod
    def _used_up(g: _Grant, event_id: str, mode: Mode) -> bool:
        if not g.uses:
            return False
        others = [m for eid, m in g.uses if eid != event_id]
        if mode == "gate":
            return bool(others)
        # an execution may follow the one gate decision that consumed it
        return any(m == "detect" for m in others)

    def find(self, event: CanonicalEvent, mode: Mode = "detect") -> Found:
        """Look for a grant covering ``event`` (does not consume it).

        One pass over the candidates, in order (the request's grants, then the resource's, then
        the actor's for this action), checking each as it is found: the first that covers the
        event is returned (``Found.candidates`` then counts those seen up to it), else every
        candidate's reasons. A busy scope holds hundreds of grants (``railbook bench kafka``:
        ~80 candidates per lookup by 200k events), so the pass is kept inline."""
        rid = event.attributes.get("request_id") if event.attributes else None
        actor, action, resource = event.actor.id, event.action, event.resource.id
        by_resource = self._by_resource.get(resource)
        by_actor_action = self._by_actor_action.get((actor, action))
        if by_resource is None and by_actor_action is None and not rid:
            return _NONE  # nothing names this resource, this actor's action or a request
        for scope in (by_resource, by_actor_action):
            if scope is not None and len(scope) > _PRUNE_AT:
                scope.prune(event.occurred_at)
        sources = (
            self._by_request.get(rid, ()) if rid else (),
            by_resource or (),
            by_actor_action or (),
        )
        seen: set[str] = set()
        count = 0
        # each condition a candidate fails is a named reason (module docstring)
        failures: set[str] = set()
        add = failures.add
        obo = event.actor.on_behalf_of
        diff = event.change.diff_sha256
        at = event.occurred_at
        denied = self._denied
        approvers = self._approver_cache
        for group in sources:
            for g in group:
                if g.event_id in seen:
                    continue
                seen.add(g.event_id)
                # a candidate is named by the request id, or shares two of actor/action/resource:
                # a grant for someone else's other action on the same table is not "invalid", it is
                # simply not about this event
                same_actor = g.actor == actor
                same_action = g.action == action
                same_resource = g.resource == resource
                if not ((rid and g.request_id == rid) or same_actor + same_action + same_resource >= 2):
                    continue
                count += 1
                if g.decision != "grant":
                    add("denied")
                    continue
                bad = False
                if g.request_id in denied:
                    add("denied")
                    bad = True
                approver = g.approver
                if approver == actor:
                    add("self-approval")
                    bad = True
                if obo and approver == obo:
                    add("approver-is-instructing-human")
                    bad = True
                ok = approvers.get(approver)
                if ok is None:
                    ok = self._is_approver(approver)
                if not ok:
                    add("not-an-approver")
                    bad = True
                if not same_actor:
                    add("actor-mismatch")
                    bad = True
                if not same_action:
                    add("action-mismatch")
                    bad = True
                if not same_resource:
                    add("resource-mismatch")
                    bad = True
                if g.digest is not None and g.digest != diff:
                    add("digest-mismatch")
                    bad = True
                if g.granted_at > at:
                    add("granted-after-action")
                    bad = True
                elif at > g.expires_at:
                    add("expired")
                    bad = True
                if g.uses and self._used_up(g, event.event_id, mode):
                    add("already-used")
                    bad = True
                if not bad:  # a covering grant: the other candidates' reasons do not matter
                    return Found(g, count, ())
        if not count:
            return _NONE
        return Found(None, count, tuple(sorted(failures)))

    # --- reading --------------------------------------------------------------------------------------

    def _state(self, rid: str) -> ApprovalRequest | None:
        req = self._requests.get(rid)
        grants = self._by_request.get(rid, [])
        if req is None and not grants:
            return None
        last = grants[-1] if grants else None
        status: Literal["pending", "granted", "denied", "used", "expired"] = "pending"
        if last is not None:
            if any(g.decision == "deny" for g in grants):
                status = "denied"
            elif any(g.uses for g in grants):
                status = "used"
            else:
                status = "granted"
        return ApprovalRequest(
            request_id=rid,
            status=status,
            actor=req.actor if req else (last.actor if last else None),
            action=req.action if req else (last.action if last else None),
            resource=req.resource if req else (last.resource if last else None),
            digest=req.digest if req else (last.digest if last else None),
            requested_at=req.requested_at if req else None,
            request_event_id=req.event_id if req else None,
            on_behalf_of=req.on_behalf_of if req else None,
            approver=last.approver if last else None,
            decided_at=last.granted_at if last else None,
            expires_at=last.expires_at if last and last.decision == "grant" else None,
            used_by=tuple(eid for g in grants for eid, _ in g.uses),
        )

    def get(self, request_id: str) -> ApprovalRequest | None:
        """The state of ``request_id`` (``None`` if nothing names it)."""
        return self._state(request_id)

    def pending(self) -> list[ApprovalRequest]:
        """Gate requests answered ``ask`` that no approver has granted or denied yet, oldest first."""
        out = [s for rid in self._requests if (s := self._state(rid)) is not None and s.status == "pending"]
        return sorted(out, key=lambda s: (s.requested_at or datetime.min, s.request_id))

    def requests(self) -> list[ApprovalRequest]:
        """Every request and grant the book knows, in the order first seen."""
        ids = list(dict.fromkeys([*self._requests, *self._by_request]))
        return [s for rid in ids if (s := self._state(rid)) is not None]


def request_id_of(event: CanonicalEvent) -> str:
    """The approval request an event names (``attributes.request_id``), else its own event id."""
    return (event.attributes.get("request_id") if event.attributes else None) or event.event_id
