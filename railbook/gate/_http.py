"""The gate's HTTP surface: a FastAPI ``APIRouter`` the service mounts (``railbook up``).

- ``POST /v1/gate`` (role ``agent``): ``{"event": <canonical event>}`` or ``{"hook": <Claude Code
  PreToolUse payload>}`` → the ``GateAnswer``. A token bound to an actor *is* the agent identity.
- ``POST /v1/approvals`` (role ``approver``): grant or deny a request; the approver is the token's
  actor, never a body field.
- ``GET /v1/requests/{request_id}`` (``agent`` or ``approver``): where a request stands;
  ``GET /v1/requests``: the requests waiting for an approver.

The app must carry a ``Gate`` in ``app.state.gate`` (``install_gate``) and a token table
(``railbook.service.auth.install_auth``).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.errors import ServiceError
from railbook.gate._errors import GateRequestError
from railbook.gate._gate import Gate
from railbook.gate._proposal import proposal_from_event, proposal_from_hook
from railbook.service.auth import Principal, require
from railbook.service.problems import ApiError

__all__ = ["install_gate", "router", "standalone_app"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["gate"])

_REQUEST_ID = r"^req-[0-9a-f]{16}$"


def install_gate(app: Any, gate: Gate) -> None:
    """Attach ``gate`` to a FastAPI app; the routes read ``app.state.gate``."""
    app.state.gate = gate


def _gate(request: Request) -> Gate:
    gate: Gate | None = getattr(request.app.state, "gate", None)
    if gate is None:
        raise ApiError(503, "gate-not-configured", "this service has no gate installed (install_gate)")
    return gate


def _api(exc: Exception) -> ApiError:
    if isinstance(exc, GateRequestError):
        return ApiError(exc.status, exc.code, str(exc))
    return ApiError(503, "unavailable", f"the ledger writer cannot take the request now: {exc}")


class GateRequestIn(BaseModel):
    """A proposed action: exactly one of ``event`` or ``hook``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "hook": {
                        "session_id": "abc123",
                        "hook_event_name": "PreToolUse",
                        "tool_name": "Bash",
                        "tool_input": {"command": "psql -h staging-db.internal -d app -c 'DROP TABLE users'"},
                        "tool_use_id": "toolu_01ABC123",
                        "railbook_on_behalf_of": "bob@example.com",
                        "railbook_task": "JIRA-42 clean up the users table",
                    }
                }
            ]
        },
    )

    event: dict[str, Any] | None = Field(
        default=None, description="The proposed action as a canonical event."
    )
    hook: dict[str, Any] | None = Field(
        default=None, description="A Claude Code PreToolUse hook payload (as the hook receives it on stdin)."
    )

    @model_validator(mode="after")
    def _one(self) -> GateRequestIn:
        if (self.event is None) == (self.hook is None):
            raise ValueError(
                "give exactly one of 'event' (a canonical event) or 'hook' (a PreToolUse payload)"
            )
        return self


class ApprovalIn(BaseModel):
    """An approver's answer to a gate request."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(pattern=_REQUEST_ID, description="The request id the gate answered 'ask' with.")
    decision: Literal["grant", "deny"] = "grant"
    expires_in: float | None = Field(
        default=None,
        gt=0,
        description="Seconds the grant stays valid (default: [policy] approval_ttl_seconds).",
    )
    digest: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="The command digest you reviewed; refused (409) when the request names another one.",
    )
    note: str | None = Field(default=None, max_length=2000, description="Why; kept in the ledger.")


@router.post(
    "/v1/gate",
    summary="Ask whether a proposed action may run",
    response_model=dict[str, Any],
    response_description="decision allow|deny|ask, request_id, reasons, needed_approval, message",
)
async def post_gate(
    body: GateRequestIn,
    request: Request,
    principal: Annotated[Principal, Depends(require("agent"))],
) -> Response:
    """Decide a proposed action in gate mode and record the request and the answer in the ledger."""
    # async on purpose (the latency target, docs/design/gate.md): the handler awaits the writer's
    # commit on the event loop instead of blocking a worker thread, and the answer (JSON-native)
    # is rendered once, without FastAPI's response re-validation and re-encoding.
    gate = _gate(request)
    try:
        if body.hook is not None:
            proposal = proposal_from_hook(body.hook, gate.config, actor=principal.actor)
        else:
            proposal = proposal_from_event(body.event, gate.config, actor=principal.actor)
        answer = await gate.ask_async(proposal)
    except (GateRequestError, ServiceError) as exc:
        raise _api(exc) from exc
    return JSONResponse(answer.to_dict())


@router.post(
    "/v1/approvals",
    summary="Grant or deny a gate request (approvers only)",
    response_description="the recorded approval: request_id, decision, approver, event_id, expires_at, scope",
)
def post_approval(
    body: ApprovalIn,
    request: Request,
    principal: Annotated[Principal, Depends(require("approver"))],
) -> dict[str, Any]:
    """Record an ``approval:Grant`` / ``approval:Deny`` event for the request, as the token's actor.

    Refused with 403 when the approver is the agent, the human it acts for, or not a configured
    human approver; 409 when the request is not waiting (already answered, expired, not an ask)
    or the digest you reviewed is not the request's.
    """
    gate = _gate(request)
    if not principal.actor:
        raise ApiError(
            403,
            "no-approver-identity",
            f"token {principal.name!r} is not bound to a person "
            '([server] tokens actor = "alice@example.com"); '
            "approvals are recorded under the token's actor, never a name from the request body",
        )
    try:
        receipt = gate.approve(
            body.request_id,
            approver=principal.actor,
            decision=body.decision,
            expires_in=body.expires_in,
            digest=body.digest,
            note=body.note,
            via=f"api:{principal.name}",
        )
    except (GateRequestError, ServiceError) as exc:
        raise _api(exc) from exc
    return receipt.to_dict()


@router.get("/v1/requests/{request_id}", summary="Where a gate request stands")
def get_request(
    request: Request,
    request_id: Annotated[str, Path(pattern=_REQUEST_ID)],
    principal: Annotated[Principal, Depends(require("agent", "approver"))],
) -> dict[str, Any]:
    """Status pending / approved / denied / used / expired (or allowed / refused when the gate answered
    without needing an approval), with its scope, approver, expiry and the events that used it."""
    try:
        return _gate(request).status(request_id).to_dict()
    except (GateRequestError, ServiceError) as exc:
        raise _api(exc) from exc


@router.get("/v1/requests", summary="Requests waiting for an approver")
def list_requests(
    request: Request,
    principal: Annotated[Principal, Depends(require("agent", "approver"))],
) -> dict[str, Any]:
    """The gate requests answered 'ask' that nobody has granted or denied yet, oldest first."""
    try:
        return {"requests": [s.to_dict() for s in _gate(request).pending()]}
    except (GateRequestError, ServiceError) as exc:
        raise _api(exc) from exc


def standalone_app(gate: Gate, table: Any) -> Any:
    """A FastAPI app serving only the gate routes (tests, ``railbook bench gate``); ``railbook up``
    mounts ``router`` in the full service instead."""
    from fastapi import FastAPI

    from railbook.service.auth import install_auth
    from railbook.service.problems import install_error_handlers

    app = FastAPI(title="Railbook gate", version="1")
    install_auth(app, table)
    install_error_handlers(app)
    install_gate(app, gate)
    app.include_router(router)
    return app
