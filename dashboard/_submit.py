"""Where approvals and acknowledgements go: the running service, or in-process for an offline copy.

The dashboard never writes the ledger itself. With ``railbook up`` running, an approval is a
``POST /v1/approvals`` (approver token) and an acknowledgement a ``POST /v1/events``; the service
evaluates and appends them like any other event. Without a service (an auditor's copy, nobody
else writing), the event goes through ``railbook.wiring.open_pipeline`` in this process — the same
policy evaluation and append path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from core.errors import RailbookError, ServiceError

if TYPE_CHECKING:
    from core.config import Config
    from core.event import CanonicalEvent

__all__ = ["InProcessSubmitter", "Receipt", "ServiceSubmitter", "Submitter"]

logger = logging.getLogger(__name__)

TIMEOUT = 10.0


@dataclass(frozen=True)
class Receipt:
    """What happened to a submitted event."""

    event_id: str
    seq: int | None
    decision: str | None
    """The policy's outcome for the submitted event itself (``allow``/``deny``), when known."""
    reasons: tuple[str, ...] = ()
    """Named reasons from the policy layer (approval failures, denying policy ids)."""
    via: str = ""


class Submitter(Protocol):
    def submit_event(self, event: CanonicalEvent, *, token: str | None) -> Receipt: ...

    def submit_approval(self, event: CanonicalEvent, *, token: str | None) -> Receipt: ...


class ServiceSubmitter:
    """POSTs to the running service (``railbook up``)."""

    def __init__(self, base_url: str, *, default_token: str | None = None, client: Any = None) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self.default_token = default_token
        self._client = client or httpx.Client(timeout=TIMEOUT)

    def _post(self, path: str, body: dict[str, Any], token: str | None) -> dict[str, Any]:
        import httpx

        tok = token or self.default_token
        headers = {"authorization": f"Bearer {tok}"} if tok else {}
        url = self.base_url + path
        try:
            resp = self._client.post(url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ServiceError(
                f"the service at {self.base_url} did not answer {path} ({exc}); is 'railbook up' running?"
            ) from exc
        try:
            doc = resp.json()
        except ValueError:
            doc = {"message": resp.text[:500]}
        if resp.status_code >= 400:
            code = doc.get("error", resp.status_code) if isinstance(doc, dict) else resp.status_code
            msg = doc.get("message", "") if isinstance(doc, dict) else str(doc)
            raise ServiceError(f"the service refused {path}: {code}: {msg}")
        return doc if isinstance(doc, dict) else {"result": doc}

    def submit_approval(self, event: CanonicalEvent, *, token: str | None) -> Receipt:
        ap = event.approval
        if ap is None:
            raise ValueError(f"event {event.event_id!r} is not an approval event")
        # The service records the approval under the *token's* actor (never a name from the body),
        # so the approver is whoever the token belongs to; the event built here fixes the scope.
        body: dict[str, Any] = {"request_id": ap.request_id, "decision": ap.decision}
        if ap.digest:
            body["digest"] = ap.digest
        if ap.expires_at is not None:
            body["expires_in"] = max((ap.expires_at - event.occurred_at).total_seconds(), 1.0)
        if event.attributes.get("comment"):
            body["note"] = event.attributes["comment"]
        doc = self._post("/v1/approvals", body, token)
        approver = str(doc.get("approver", ""))
        if approver and approver != event.actor.id:
            logger.warning("service recorded approver=%s, dashboard user=%s", approver, event.actor.id)
        return Receipt(str(doc.get("event_id", event.event_id)), doc.get("seq"), None, (), "service")

    def submit_event(self, event: CanonicalEvent, *, token: str | None) -> Receipt:
        doc = self._post("/v1/events", event.to_dict(), token)
        return Receipt(event.event_id, doc.get("seq"), None, (), "service")


class InProcessSubmitter:
    """Evaluates and appends through ``railbook.wiring.open_pipeline`` (no service running).

    ``before`` runs first (the source closes its read handle: one process, one DuckDB handle).
    """

    def __init__(self, config: Config, *, before: Callable[[], None] | None = None) -> None:
        self.config = config
        self.before = before

    def _process(self, event: CanonicalEvent) -> Receipt:
        from railbook.wiring import open_pipeline

        if self.before is not None:
            self.before()
        try:
            with open_pipeline(self.config) as pipeline:
                summary = pipeline.process([event])
                pipeline.ledger.checkpoint(force=True)
        except RailbookError:
            raise
        if not summary.entries:
            raise ServiceError(f"event {event.event_id!r} was not appended (a duplicate?)")
        seq, _, decision = summary.entries[0]
        reasons = list(decision.policy_ids)
        if decision.approval is not None:
            reasons += list(decision.approval.failures)
        logger.info(
            "submitted in-process event_id=%s seq=%d outcome=%s", event.event_id, seq, decision.outcome
        )
        return Receipt(event.event_id, seq, decision.outcome, tuple(reasons), "in-process")

    def submit_approval(self, event: CanonicalEvent, *, token: str | None) -> Receipt:
        return self._process(event)

    def submit_event(self, event: CanonicalEvent, *, token: str | None) -> Receipt:
        return self._process(event)
