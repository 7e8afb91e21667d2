"""The Claude Code PreToolUse hook: payload on stdin → the documented hook output on stdout.

Documented contract (https://code.claude.com/docs/en/hooks; summary and verbatim samples in
``shared/fixtures/agent-hooks/``): exit 0 with ``{"hookSpecificOutput": {"hookEventName":
"PreToolUse", "permissionDecision": "allow"|"deny"|"ask", "permissionDecisionReason": …}}``; the
reason is shown to Claude for ``deny`` and to the user for ``allow``/``ask``. Exit 2 blocks the
call with stderr as the reason; **any other exit code does not block** — so nothing here may end
in exit 1: a hook that cannot decide fails closed with exit 2.

When the gate cannot be reached, the action is classified locally with the same adapter and the
policy pack's catalog: reads fail open, destructive actions fail closed, everything else asks the
user (all three configurable in ``[gate]``), and the reason says so.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from core.errors import RailbookError
from railbook.gate._errors import GateRequestError, GateUnreachableError
from railbook.gate._proposal import proposal_from_hook

if TYPE_CHECKING:
    from core.config import Config
    from core.event import CanonicalEvent
    from railbook.gate._answer import GateAnswer
    from railbook.gate._settings import GateSettings

__all__ = ["HookResult", "hook_output", "offline_class", "run_hook"]

logger = logging.getLogger(__name__)

#: Claude Code caps hook output strings at 10,000 characters
MAX_REASON = 9000
BLOCK_EXIT = 2


@dataclass(frozen=True)
class HookResult:
    """What the hook process writes and how it exits."""

    output: dict[str, Any] | None
    """The JSON document for stdout (``None``: print nothing)."""
    exit_code: int
    """0, or 2 to block when no decision could be made."""
    stderr: str = ""
    """For exit 2: the reason Claude sees."""
    answer: GateAnswer | None = None
    """The gate's answer, when it gave one."""


def hook_output(decision: Literal["allow", "deny", "ask"], reason: str) -> dict[str, Any]:
    """The documented PreToolUse output object."""
    return {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": decision,
            "permissionDecisionReason": reason[:MAX_REASON],
        }
    }


def offline_class(event: CanonicalEvent, config: Config) -> Literal["read", "destructive", "other"]:
    """read / destructive / other, by the policy pack's catalog; ``destructive`` if it cannot load."""
    try:
        from policy import PolicyEngine

        resolved = PolicyEngine.load(config).catalog.resolve(
            event.action, event.attributes, event.resource.environment
        )
    except Exception as exc:  # noqa: BLE001 - fail closed: whatever broke, it is not a known read
        logger.warning(
            "gate hook: cannot load the policy catalog (%s); treating the action as destructive", exc
        )
        return "destructive"
    if resolved.destructive:
        return "destructive"
    if "Read" in resolved.groups:
        return "read"
    return "other"


def _from_answer(answer: GateAnswer, settings: GateSettings) -> HookResult:
    if answer.decision == "allow":
        if settings.allow_as == "none":
            return HookResult(None, 0, answer=answer)
        return HookResult(hook_output("allow", answer.message), 0, answer=answer)
    if answer.decision == "deny":
        return HookResult(hook_output("deny", answer.message), 0, answer=answer)
    if settings.ask_as == "deny":
        reason = (
            answer.message + " Stop here: tell the user the request id and wait; do not try another way "
            "around this (actions outside the hook are detected as gate bypasses)."
        )
        return HookResult(hook_output("deny", reason), 0, answer=answer)
    return HookResult(hook_output(settings.ask_as, answer.message), 0, answer=answer)


def _unreachable(
    payload: dict[str, Any], error: Exception, settings: GateSettings, config: Config, where: str
) -> HookResult:
    try:
        event = proposal_from_hook(payload, config)
        klass = offline_class(event, config)
        what = f"{event.action} on {event.resource.id} ({event.resource.environment})"
    except RailbookError as exc:
        logger.warning("gate hook: cannot classify the payload offline (%s)", exc)
        klass, what = "destructive", "this tool call"
    decision = {
        "read": settings.on_unreachable_read,
        "destructive": settings.on_unreachable_destructive,
        "other": settings.on_unreachable_other,
    }[klass]
    kind = {"read": "a read", "destructive": "destructive", "other": "a change"}[klass]
    policy = {"allow": "fails open", "deny": "fails closed", "ask": "asks you"}[decision]
    reason = (
        f"Railbook gate unreachable at {where} ({error}). {what} is {kind}, so the hook {policy} "
        f"([gate] on_unreachable_{'other' if klass == 'other' else klass} = {decision!r}). "
        "Start the gate (`railbook up`) or fix [gate] url / RAILBOOK_GATE_URL."
    )
    logger.warning("gate unreachable where=%s class=%s decision=%s", where, klass, decision)
    return HookResult(hook_output(decision, reason), 0)


def run_hook(
    stdin_text: str,
    *,
    ask: Callable[[dict[str, Any]], GateAnswer],
    settings: GateSettings,
    config: Config,
    where: str,
) -> HookResult:
    """Decide one hook invocation. ``ask`` sends the (stamped) payload to the gate and returns its
    answer, raising ``GateUnreachableError`` when it cannot reach it. Never raises."""
    try:
        payload = json.loads(stdin_text)
    except ValueError as exc:
        return HookResult(
            None, BLOCK_EXIT, f"railbook gate: stdin is not JSON ({exc}); blocking the tool call"
        )
    if not isinstance(payload, dict):
        return HookResult(
            None, BLOCK_EXIT, "railbook gate: stdin is not a JSON object; blocking the tool call"
        )
    if payload.get("hook_event_name") != "PreToolUse":
        # installed on another event by mistake: say nothing, decide nothing
        logger.info("gate hook: ignoring hook_event_name=%r", payload.get("hook_event_name"))
        return HookResult(None, 0)
    try:
        answer = ask(payload)
    except GateUnreachableError as exc:
        return _unreachable(payload, exc, settings, config, where)
    except GateRequestError as exc:
        msg = f"Railbook gate refused the request ({exc.code}): {exc}"
        return HookResult(hook_output("deny", msg), 0)
    except Exception as exc:  # noqa: BLE001 - a hook that crashes must block, not exit 1 (which allows)
        logger.exception("gate hook failed")
        return HookResult(None, BLOCK_EXIT, f"railbook gate failed ({type(exc).__name__}: {exc}); blocking")
    return _from_answer(answer, settings)
