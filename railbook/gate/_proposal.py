"""Turning what a client sends into the proposed action the gate decides on.

Two shapes: a canonical event (``core.event.event_from_dict``, strict) or a Claude Code PreToolUse
payload, which the Claude Code adapter normalises with the same command classifier it uses for
events after the fact (``ingest.claude_code``): a command is recognised identically before and
after it runs, and its digest (``change.diff_sha256``) is the SHA-256 of the exact command text.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from core.errors import NormaliseError
from core.event import CanonicalEvent, event_from_dict
from railbook.gate._errors import GateRequestError

if TYPE_CHECKING:
    from core.config import Config
    from railbook.gate._settings import GateSettings

__all__ = ["CREDENTIAL_FIELD", "proposal_from_event", "proposal_from_hook", "stamp_defaults"]

logger = logging.getLogger(__name__)

#: payload field (added by ``railbook gate``) naming the cloud identity the agent's tools use
CREDENTIAL_FIELD = "railbook_credential"


def stamp_defaults(payload: dict[str, Any], settings: GateSettings) -> dict[str, Any]:
    """Fill the identity fields the environment did not set from ``[gate]`` (never overriding)."""
    out = dict(payload)
    out.setdefault("railbook_agent_id", settings.agent)
    if settings.on_behalf_of:
        out.setdefault("railbook_on_behalf_of", settings.on_behalf_of)
    if settings.credential:
        out.setdefault(CREDENTIAL_FIELD, settings.credential)
    return out


def _normalise_claude(payload: dict[str, Any], config: Config, where: str) -> list[CanonicalEvent]:
    from ingest import normalise_record

    return normalise_record(payload, source="claude-code", where=where, config=config)


def proposal_from_hook(
    payload: Any, config: Config, *, actor: str | None = None, where: str = "gate request"
) -> CanonicalEvent:
    """The proposed action in a Claude Code PreToolUse payload.

    ``actor`` (the API token's actor) overrides the payload's ``railbook_agent_id``: over HTTP the
    token is the identity, whatever the payload claims.
    """
    if not isinstance(payload, dict):
        raise GateRequestError(
            f"{where}: expected a JSON object, got {type(payload).__name__}",
            status=422,
            code="invalid-request",
        )
    event_name = payload.get("hook_event_name")
    if event_name != "PreToolUse":
        raise GateRequestError(
            f"{where}: hook_event_name is {event_name!r}; the gate decides 'PreToolUse' payloads only "
            "(install `railbook gate` as a PreToolUse hook)",
            status=422,
            code="not-pre-tool-use",
        )
    data = dict(payload)
    credential = data.pop(CREDENTIAL_FIELD, None)
    if actor:
        data["railbook_agent_id"] = actor
    try:
        events = _normalise_claude(data, config, where)
    except NormaliseError as exc:
        raise GateRequestError(f"{where}: {exc}", status=422, code="invalid-payload") from exc
    if len(events) != 1:
        raise GateRequestError(
            f"{where}: the payload is not one tool call", status=422, code="invalid-payload"
        )
    event = events[0]
    if isinstance(credential, str) and credential:
        event = replace(event, actor=replace(event.actor, credential=credential[:2048]))
    return event


def proposal_from_event(
    data: Any, config: Config, *, actor: str | None = None, where: str = "gate request"
) -> CanonicalEvent:
    """A proposed action given as a canonical event; ``actor`` (the token's) must be its actor."""
    try:
        event = event_from_dict(data, where=where)
    except NormaliseError as exc:
        raise GateRequestError(str(exc), status=422, code="invalid-event") from exc
    if actor and actor not in (event.actor.id, event.actor.credential):
        raise GateRequestError(
            f"{where}: the API token speaks for {actor!r} but the event's actor is {event.actor.id!r}; "
            "an agent may only ask for its own actions (use its own token)",
            status=403,
            code="actor-mismatch",
        )
    # configuration wins over what a producer claims (DESIGN.md): the kind comes from the id
    kind = config.actor_kind(event.actor.id)
    if kind != "unknown" and kind != event.actor.kind:
        event = replace(
            event,
            actor=replace(event.actor, kind=kind),
            attributes={**event.attributes, "claimed_kind": event.actor.kind},
        )
    return event
