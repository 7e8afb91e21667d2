"""The gate: a proposed action in, ``allow`` / ``deny`` / ``ask`` out, every question and answer a
ledger entry (DESIGN.md, "Policy": gate mode; rail 3).

The gate does not decide anything itself: it stamps the proposal as a gate request
(``gate:<request_id>``, source ``gate``, server time), hands it to the one writer in gate mode, and
reads the policy decision back. Approval state is the policy's event-sourced ``ApprovalBook``;
an approval is an ``approval:Grant`` / ``approval:Deny`` event submitted the same way. So the
ledger alone explains every answer, under the policy version recorded beside it.

A ``Backend`` is how the gate reaches the pipeline: in-process (``PipelineBackend``, the CLI and
tests) or through the service's single writer (``WriterBackend``, inside ``railbook up``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from core.errors import GateError, ServiceError
from core.event import Actor, Approval, CanonicalEvent, Resource
from railbook.gate._answer import ApprovalReceipt, GateAnswer, NeededApproval, RequestStatus
from railbook.gate._errors import ApprovalRefusedError, GateRequestError, UnknownRequestError
from railbook.gate._settings import GateSettings, gate_settings

if TYPE_CHECKING:
    from core.config import Config
    from ledger import Entry
    from policy import ApprovalRequest, Decision
    from railbook.pipeline import BatchSummary, Pipeline

__all__ = ["Backend", "Gate", "PipelineBackend", "WriterBackend", "WriterTimeoutError", "new_request_id"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: a pending request older than this can no longer be approved (ask again)
REQUEST_TTL = timedelta(hours=1)


class WriterTimeoutError(ServiceError):
    """The service's writer did not commit a gate request in time (HTTP 503; the hook fails safe)."""


def new_request_id() -> str:
    """``req-`` and 16 hex digits (64 random bits): short enough to type, never reused."""
    return "req-" + secrets.token_hex(8)


class Backend(Protocol):
    """How the gate reaches the pipeline (the one writer of the ledger)."""

    config: Config

    def submit(
        self, events: Sequence[CanonicalEvent], mode: Literal["detect", "gate"], *, fresh: bool = False
    ) -> BatchSummary:
        """Evaluate and append ``events`` in one transaction; return what happened. ``fresh``: their
        event ids were minted for this call (no ledger lookup for duplicates needed)."""
        ...

    def read(self, fn: Callable[[Pipeline], T]) -> T:
        """Run ``fn`` against the pipeline where it is safe to read it (the writer thread)."""
        ...


class PipelineBackend:
    """In-process: this thread owns the pipeline."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.config = pipeline.config

    def submit(
        self, events: Sequence[CanonicalEvent], mode: Literal["detect", "gate"], *, fresh: bool = False
    ) -> BatchSummary:
        minted = frozenset(e.event_id for e in events) if fresh else frozenset()
        return self.pipeline.process(events, mode=mode, minted=minted)

    def read(self, fn: Callable[[Pipeline], T]) -> T:
        return fn(self.pipeline)


class WriterBackend:
    """Inside ``railbook up``: every job goes through the service's single writer thread."""

    def __init__(self, writer: Any, config: Config, *, timeout: float = 30.0) -> None:
        self.writer = writer
        self.config = config
        self.timeout = timeout

    def submit(
        self, events: Sequence[CanonicalEvent], mode: Literal["detect", "gate"], *, fresh: bool = False
    ) -> BatchSummary:
        future = self.writer.submit(list(events), mode=mode, fresh=fresh)
        try:
            result: BatchSummary = future.result(self.timeout)
        except TimeoutError:
            future.cancel()  # not started yet: never written; started: it commits
            raise self._timed_out() from None
        return result

    def _timed_out(self) -> WriterTimeoutError:
        return WriterTimeoutError(
            f"the ledger writer did not commit the request within {self.timeout} s "
            f"({self.writer.pending} jobs queued); retry later"
        )

    async def submit_async(
        self, events: Sequence[CanonicalEvent], mode: Literal["detect", "gate"], *, fresh: bool = False
    ) -> BatchSummary:
        """``submit`` awaited on the event loop: the writer thread resolves the future after the
        commit and wakes the loop directly (no worker thread blocked in between)."""
        future = self.writer.submit(list(events), mode=mode, fresh=fresh)
        try:
            result: BatchSummary = await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except TimeoutError:
            # a job the writer has not started yet is cancelled (never written); a started one commits
            raise self._timed_out() from None
        return result

    def read(self, fn: Callable[[Pipeline], T]) -> T:
        result: T = self.writer.call(fn).result(self.timeout)
        return result


@dataclass(frozen=True)
class _Looked:
    entry: Entry | None
    request: ApprovalRequest | None


def _lookup(request_id: str) -> Callable[[Pipeline], _Looked]:
    def fn(p: Pipeline) -> _Looked:
        return _Looked(p.ledger.get(f"gate:{request_id}"), p.approvals.get(request_id))

    return fn


class Gate:
    """Ask, approve, look up. Thread-safe as far as its backend is (the writer serialises)."""

    def __init__(self, backend: Backend, *, settings: GateSettings | None = None) -> None:
        self.backend = backend
        self.config = backend.config
        self.settings = settings or gate_settings(backend.config, env={})
        self._ttl = timedelta(seconds=self.config.policy.approval_ttl_seconds)

    @classmethod
    def in_process(cls, pipeline: Pipeline, *, settings: GateSettings | None = None) -> Gate:
        return cls(PipelineBackend(pipeline), settings=settings)

    @classmethod
    def over_writer(cls, writer: Any, config: Config, *, settings: GateSettings | None = None) -> Gate:
        return cls(WriterBackend(writer, config), settings=settings)

    # --- asking -----------------------------------------------------------------------------------

    def ask(self, proposed: CanonicalEvent, *, now: datetime | None = None) -> GateAnswer:
        """Decide a proposed action in gate mode and record the request and the answer."""
        rid, event = self._stamp(proposed, now)
        return self._answered(rid, event, self.backend.submit([event], "gate", fresh=True))

    async def ask_async(self, proposed: CanonicalEvent, *, now: datetime | None = None) -> GateAnswer:
        """``ask`` for an event loop (``POST /v1/gate``): awaits the writer's commit without a worker
        thread when the backend offers ``submit_async``. Same record, same answer: it returns only
        after the request and its decision are committed to the ledger."""
        rid, event = self._stamp(proposed, now)
        submit_async = getattr(self.backend, "submit_async", None)
        if submit_async is not None:
            summary: BatchSummary = await submit_async([event], "gate", fresh=True)
        else:
            from starlette.concurrency import run_in_threadpool

            summary = await run_in_threadpool(self.backend.submit, [event], "gate", fresh=True)
        return self._answered(rid, event, summary)

    def _stamp(self, proposed: CanonicalEvent, now: datetime | None) -> tuple[str, CanonicalEvent]:
        """The proposal as a gate request: a fresh request id, server time, its origin kept."""
        if proposed.approval is not None or proposed.action.startswith("approval:"):
            raise GateRequestError(
                f"proposal {proposed.event_id!r} is an approval ({proposed.action}); approvals go to "
                "POST /v1/approvals (railbook approve), not to the gate",
                status=422,
                code="not-an-action",
            )
        rid = new_request_id()
        at = now or datetime.now(UTC)
        attributes = dict(proposed.attributes)
        # the policy's ApprovalBook keys requests by attributes.request_id (policy.request_id_of)
        attributes["request_id"] = rid
        attributes["gate.origin_source"] = proposed.source
        attributes["gate.origin_event_id"] = proposed.event_id
        if proposed.occurred_at != at:
            attributes["gate.claimed_at"] = proposed.occurred_at.isoformat()
        event = replace(
            proposed,
            event_id=f"gate:{rid}",
            source="gate",
            # server time: a client must not backdate a proposal into an approval's validity
            occurred_at=at,
            attributes=attributes,
        )
        return rid, event

    def _answered(self, rid: str, event: CanonicalEvent, summary: BatchSummary) -> GateAnswer:
        seq, decision = _entry_for(summary, event.event_id)
        answer = self._answer(rid, event, decision, seq)
        logger.info(
            "gate request_id=%s decision=%s action=%s resource=%s actor=%s",
            rid, answer.decision, event.action, event.resource.id, event.actor.id,
        )  # fmt: skip
        return answer

    def _answer(self, rid: str, event: CanonicalEvent, decision: Decision, seq: int | None) -> GateAnswer:
        gate = decision.gate or ("allow" if decision.outcome == "allow" else "deny")
        needed = None
        if gate == "ask":
            needed = NeededApproval(
                actor=event.actor.id,
                action=event.action,
                resource=event.resource.id,
                digest=event.change.diff_sha256,
                environment=event.resource.environment,
                on_behalf_of=event.actor.on_behalf_of,
            )
        return GateAnswer(
            decision=gate,
            request_id=rid,
            reasons=decision.reasons,
            message=_message(gate, rid, event, decision),
            policy_version=decision.policy_version,
            event_id=event.event_id,
            seq=seq,
            needed_approval=needed,
            approval=decision.approval,
            action=event.action,
            resource=event.resource.id,
            environment=event.resource.environment,
        )

    # --- approving ---------------------------------------------------------------------------------

    def approve(
        self,
        request_id: str,
        *,
        approver: str,
        decision: Literal["grant", "deny"] = "grant",
        expires_in: float | None = None,
        digest: str | None = None,
        note: str | None = None,
        via: str = "api",
        now: datetime | None = None,
    ) -> ApprovalReceipt:
        """Grant or deny a pending request as ``approver``; refuse what the rails forbid.

        The ApprovalBook would also reject a self-approval at use time; refusing here tells the
        approver at once, and keeps grants that can never be valid out of the ledger.
        """
        at = now or datetime.now(UTC)
        looked = self.backend.read(_lookup(request_id))
        entry, req = looked.entry, looked.request
        if entry is None and req is None:
            raise UnknownRequestError(request_id)
        if entry is not None and entry.decision.gate not in ("ask", None):
            raise ApprovalRefusedError(
                f"request {request_id} was answered {entry.decision.gate!r} by the gate; only requests "
                "answered 'ask' wait for an approval",
                code="not-awaiting-approval",
                status=409,
            )
        if req is None or entry is None:
            raise ApprovalRefusedError(
                f"request {request_id} is not a gate request waiting for approval",
                code="not-awaiting-approval",
                status=409,
            )
        if req.status != "pending":
            raise ApprovalRefusedError(
                f"request {request_id} is already {req.status} (by {req.approver}); a request is answered "
                "once: ask again for a new request",
                code="already-answered",
                status=409,
            )
        if req.requested_at is not None and at - req.requested_at > REQUEST_TTL:
            raise ApprovalRefusedError(
                f"request {request_id} was made at {req.requested_at.isoformat()}, more than "
                f"{int(REQUEST_TTL.total_seconds())} s ago; ask again for a fresh request",
                code="request-expired",
                status=409,
            )
        scope_event = entry.event
        if decision == "grant":
            self._check_approver(request_id, approver, scope_event)
            if digest is not None and digest != req.digest:
                raise ApprovalRefusedError(
                    f"request {request_id} is for digest {req.digest}, you approved {digest}: the command "
                    "changed; approve the request that names the command you reviewed",
                    code="digest-mismatch",
                    status=409,
                )
        elif not self.config.is_approver(approver):
            raise ApprovalRefusedError(
                f"{approver!r} is not a configured approver ([identities] approvers)", code="not-an-approver"
            )
        expires_at = None
        if expires_in is not None:
            if not 0 < expires_in <= self.settings.max_expiry_seconds:
                raise GateRequestError(
                    f"expires_in must be in (0, {self.settings.max_expiry_seconds}] seconds, "
                    f"got {expires_in}",
                    status=422,
                    code="invalid-expiry",
                )
            expires_at = at + timedelta(seconds=expires_in)
        scope = NeededApproval(
            actor=scope_event.actor.id,
            action=scope_event.action,
            resource=scope_event.resource.id,
            digest=scope_event.change.diff_sha256,
            environment=scope_event.resource.environment,
            on_behalf_of=scope_event.actor.on_behalf_of,
        )
        attributes = {"request_id": request_id, "gate.via": via}
        if note:
            attributes["note"] = note[:2000]
        event = CanonicalEvent(
            event_id=f"approval:{request_id}",
            occurred_at=at,
            source="approval",
            actor=Actor(id=approver, kind=self.config.actor_kind(approver)),
            action="approval:Grant" if decision == "grant" else "approval:Deny",
            resource=replace(scope_event.resource, data_classes=()),
            approval=Approval(
                request_id=request_id,
                decision=decision,
                actor=scope.actor,
                action=scope.action,
                resource=scope.resource,
                digest=scope.digest,
                expires_at=expires_at,
            ),
            attributes=attributes,
        )
        summary = self.backend.submit([event], "detect")
        if not summary.entries:
            raise ApprovalRefusedError(
                f"request {request_id} was answered meanwhile by someone else",
                code="already-answered",
                status=409,
            )
        seq = summary.entries[0][0]
        logger.info(
            "approval request_id=%s decision=%s approver=%s seq=%s", request_id, decision, approver, seq
        )
        if expires_at is None and decision == "grant":
            expires_at = at + self._ttl
        return ApprovalReceipt(request_id, decision, approver, event.event_id, seq, expires_at, scope)

    def _check_approver(self, request_id: str, approver: str, scope_event: CanonicalEvent) -> None:
        actor = scope_event.actor
        if approver in (actor.id, actor.credential):
            raise ApprovalRefusedError(
                f"{approver!r} is the actor of request {request_id}; nobody approves their own action "
                "(rail 3): ask another approver",
                code="self-approval",
            )
        if actor.on_behalf_of and approver == actor.on_behalf_of:
            raise ApprovalRefusedError(
                f"{approver!r} instructed the agent {actor.id!r} that asked ({request_id}); "
                "the human an agent acts for may not approve its actions (rail 3): ask another approver",
                code="approver-is-instructing-human",
            )
        if not self.config.is_approver(approver):
            raise ApprovalRefusedError(
                f"{approver!r} is not in [identities] approvers; only a configured approver may approve",
                code="not-an-approver",
            )
        kind = self.config.actor_kind(approver)
        if kind != "human":
            raise ApprovalRefusedError(
                f"{approver!r} is classified {kind!r}, not human ([identities]); "
                "only humans approve (rail 3)",
                code="not-an-approver",
            )

    # --- looking up ------------------------------------------------------------------------------

    def status(self, request_id: str, *, now: datetime | None = None) -> RequestStatus:
        """Where ``request_id`` stands: pending, approved, denied, used, expired, allowed, refused."""
        at = now or datetime.now(UTC)
        looked = self.backend.read(_lookup(request_id))
        entry, req = looked.entry, looked.request
        if entry is None and req is None:
            raise UnknownRequestError(request_id)
        ev = entry.event if entry is not None else None
        d = entry.decision if entry is not None else None
        gate = d.gate if d is not None else None
        status: Any
        if gate == "allow":
            status = "allowed"
        elif gate == "deny":
            status = "refused"
        elif req is None or req.status == "pending":
            requested = req.requested_at if req is not None else (ev.occurred_at if ev else None)
            status = "expired" if requested is not None and at - requested > REQUEST_TTL else "pending"
        elif req.status == "granted":
            status = "expired" if req.expires_at is not None and at > req.expires_at else "approved"
        else:
            status = req.status
        approver = req.approver if req is not None else None
        if approver is None and d is not None and d.approval is not None:
            approver = d.approval.approver
        return RequestStatus(
            request_id=request_id,
            status=status,
            gate_decision=gate,
            actor=ev.actor.id if ev else (req.actor if req else None),
            action=ev.action if ev else (req.action if req else None),
            resource=ev.resource.id if ev else (req.resource if req else None),
            environment=ev.resource.environment if ev else None,
            digest=ev.change.diff_sha256 if ev else (req.digest if req else None),
            on_behalf_of=ev.actor.on_behalf_of if ev else (req.on_behalf_of if req else None),
            requested_at=ev.occurred_at if ev else (req.requested_at if req else None),
            approver=approver,
            decided_at=req.decided_at if req else None,
            expires_at=req.expires_at if req else None,
            used_by=req.used_by if req else (),
            reasons=d.reasons if d else (),
            policy_version=d.policy_version if d else None,
        )

    def pending(self) -> list[RequestStatus]:
        """Requests waiting for an approver, oldest first."""
        ids = self.backend.read(lambda p: [r.request_id for r in p.approvals.pending()])
        out = [self.status(rid) for rid in ids]
        return [s for s in out if s.status == "pending"]


def _entry_for(summary: BatchSummary, event_id: str) -> tuple[int | None, Decision]:
    for seq, event, decision in summary.entries:
        if event.event_id == event_id:
            return seq, decision
    raise GateError(
        f"gate: the ledger did not append {event_id!r} "
        f"(read {summary.read}, duplicates {summary.duplicates}); "
        "this is a bug: a fresh request id collided"
    )


def _scope(event: CanonicalEvent) -> str:
    r: Resource = event.resource
    return f"{event.action} on {r.id} ({r.environment})"


def _message(gate: str, rid: str, event: CanonicalEvent, decision: Decision) -> str:
    why = "; ".join(f"{r.title} [{r.policy_id}]" for r in decision.reasons)
    ap = decision.approval
    if gate == "allow":
        text = f"Railbook allowed {_scope(event)} (request {rid})."
        if ap is not None and ap.status == "covered":
            text += f" It used approval {ap.request_id} by {ap.approver}; that approval is now spent."
        return text
    if gate == "deny":
        fix = next((r.remediation for r in decision.reasons if r.remediation), None)
        text = f"Railbook denied {_scope(event)} (request {rid}): {why or 'no policy permits it'}."
        if fix:
            text += f" {fix}"
        return text
    text = (
        f"Railbook: {_scope(event)} needs a human approval (request {rid}): {why}. "
        f"An approver who is neither the agent nor "
        f"{event.actor.on_behalf_of or 'the human it acts for'} runs "
        f"`railbook approve {rid}`; then run exactly the same command again (a changed command needs a "
        "new approval)."
    )
    if ap is not None and ap.failures:
        text += f" Existing approvals did not cover it: {', '.join(ap.failures)}."
    return text
