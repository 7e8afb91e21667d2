"""``--source claude-code``: Claude Code hook input payloads (PreToolUse, PostToolUse, UserPromptSubmit, …).

Format: https://code.claude.com/docs/en/hooks (samples in ``tests/assets/agent-hooks/``). Claude Code
sends no agent identity, no human and no timestamp, so the hook that forwards the payload adds them
as top-level fields (``stamp_hook_payload`` does it from the hook's environment):

================================  =========================  ==========================================
payload field                     hook environment variable  becomes
================================  =========================  ==========================================
``railbook_agent_id``             ``RAILBOOK_AGENT_ID``      ``actor.id`` (default ``agent:claude-code``)
``railbook_on_behalf_of``         ``RAILBOOK_ON_BEHALF_OF``  ``actor.on_behalf_of``
``railbook_task``                 ``RAILBOOK_TASK``          ``change.task``
``railbook_ticket``               ``RAILBOOK_TICKET``        ``change.ticket``
``railbook_environment``          ``RAILBOOK_ENVIRONMENT``   a *claim*; recorded, configuration wins
``railbook_received_at``          (the hook's clock)         ``occurred_at`` (else ``timestamp``, else now)
================================  =========================  ==========================================

``actor.session`` is ``session_id``; ``actor.kind`` comes from ``config.actor_kind(actor.id)``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import Field

from core.canonical import canonical_json
from core.config import Config
from core.errors import NormaliseError
from core.event import UNKNOWN, Actor, CanonicalEvent, Change, Resource, format_time, sha256_hex
from ingest._adapter import BaseAdapter
from ingest._common import (
    Wire,
    actor_kind,
    attrs,
    check_id,
    clip,
    environment,
    fail,
    now_utc,
    parse_ts,
    payload_hash,
    validate,
)
from ingest.commands import classify_command, redact_command

__all__ = ["DEFAULT_AGENT_ID", "ClaudeCodeAdapter", "stamp_hook_payload"]

logger = logging.getLogger(__name__)

SOURCE = "claude-code"
DEFAULT_AGENT_ID = "agent:claude-code"

_ENV_FIELDS = {
    "RAILBOOK_AGENT_ID": "railbook_agent_id",
    "RAILBOOK_ON_BEHALF_OF": "railbook_on_behalf_of",
    "RAILBOOK_TASK": "railbook_task",
    "RAILBOOK_TICKET": "railbook_ticket",
    "RAILBOOK_ENVIRONMENT": "railbook_environment",
}


def stamp_hook_payload(
    payload: dict[str, Any], environ: Mapping[str, str] | None = None, *, now: datetime | None = None
) -> dict[str, Any]:
    """A copy of a hook payload with Railbook's identity fields added from the hook's environment.

    Fields the payload already has are kept. Used by ``railbook gate`` and by hook forwarders.
    """
    env = os.environ if environ is None else environ
    out = dict(payload)
    for var, key in _ENV_FIELDS.items():
        if env.get(var) and key not in out:
            out[key] = env[var]
    out.setdefault("railbook_received_at", format_time(now or now_utc()))
    return out


_Short = Field(default=None, max_length=2048)


class _Hook(Wire):
    session_id: str = Field(min_length=1, max_length=512)
    hook_event_name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z]+$")
    tool_name: str | None = Field(default=None, min_length=1, max_length=256)
    tool_input: dict[str, Any] | None = None
    tool_response: Any = None
    tool_use_id: str | None = Field(default=None, min_length=1, max_length=512)
    prompt: str | None = None
    prompt_id: str | None = Field(default=None, max_length=256)
    cwd: str | None = Field(default=None, max_length=4096)
    permission_mode: str | None = Field(default=None, max_length=64)
    agent_id: str | None = Field(default=None, max_length=256)
    agent_type: str | None = Field(default=None, max_length=256)
    model: str | None = Field(default=None, max_length=256)
    timestamp: str | None = Field(default=None, max_length=64)
    duration_ms: int | None = None
    railbook_agent_id: str | None = Field(default=None, min_length=1, max_length=512)
    railbook_on_behalf_of: str | None = Field(default=None, min_length=1, max_length=512)
    railbook_task: str | None = Field(default=None, max_length=65536)
    railbook_ticket: str | None = Field(default=None, max_length=256)
    railbook_environment: str | None = Field(default=None, max_length=64)
    railbook_received_at: str | None = Field(default=None, max_length=64)


_TOOL_EVENTS = ("PreToolUse", "PostToolUse", "PostToolUseFailure", "PermissionRequest")


class ClaudeCodeAdapter(BaseAdapter):
    name = SOURCE

    def normalise(self, record: Any, *, where: str, config: Config) -> list[CanonicalEvent]:
        if (
            isinstance(record, dict)
            and "hook_event_name" not in record
            and ("hookSpecificOutput" in record or "continue" in record or "decision" in record)
        ):
            raise NormaliseError(
                f"{SOURCE}: {where}: this is a hook's output (a decision), not an input payload; "
                "send the JSON the hook receives on stdin",
                reason="hook-output",
            )
        hook = validate(_Hook, record, source=SOURCE, where=where)
        if hook.railbook_received_at:
            occurred = parse_ts(
                hook.railbook_received_at, source=SOURCE, where=where, field="railbook_received_at"
            )
            time_source = None
        elif hook.timestamp:
            occurred = parse_ts(hook.timestamp, source=SOURCE, where=where, field="timestamp")
            time_source = None
        else:
            occurred = now_utc()
            time_source = "ingest"
        agent = hook.railbook_agent_id or DEFAULT_AGENT_ID
        attributes = attrs(
            hook_event=hook.hook_event_name,
            tool_name=hook.tool_name,
            tool_use_id=hook.tool_use_id,
            prompt_id=hook.prompt_id,
            cwd=hook.cwd,
            permission_mode=hook.permission_mode,
            model=hook.model,
            claude__agent_id=hook.agent_id,
            claude__agent_type=hook.agent_type,
            duration_ms=hook.duration_ms,
            time_source=time_source,
        )
        kind = actor_kind(config, agent, None, attributes)
        actor = Actor(id=agent, kind=kind, on_behalf_of=hook.railbook_on_behalf_of, session=hook.session_id)
        change: dict[str, Any] = {"task": hook.railbook_task, "ticket": hook.railbook_ticket}
        session_res = Resource(id=f"claude-code://{hook.session_id}", type="agent-session")

        if hook.hook_event_name in _TOOL_EVENTS:
            if hook.tool_name is None or hook.tool_input is None:
                missing = "tool_name" if hook.tool_name is None else "tool_input"
                raise fail(
                    SOURCE, where, missing, f"present on {hook.hook_event_name}", None, reason="missing-field"
                )
            action, resource, extra = _tool_call(hook.tool_name, hook.tool_input, where, config)
            if "diff_sha256" in extra:
                change["diff_sha256"] = extra.pop("diff_sha256")
            attributes.update(extra)
            if hook.hook_event_name == "PreToolUse":
                suffix = ""
            elif hook.hook_event_name == "PermissionRequest":
                suffix = ":permission"
            else:
                suffix = ":result"
            call_id = hook.tool_use_id or payload_hash(
                {"session": hook.session_id, "tool": hook.tool_name, "input": hook.tool_input}
            )
            event_id = f"{SOURCE}:{hook.session_id}:{call_id}{suffix}"
        elif hook.hook_event_name == "UserPromptSubmit":
            if hook.prompt is None:
                raise fail(
                    SOURCE, where, "prompt", "a string on UserPromptSubmit", None, reason="missing-field"
                )
            action, resource = "agent:Prompt", session_res
            change["prompt_sha256"] = sha256_hex(hook.prompt.encode("utf-8", "surrogatepass"))
            event_id = f"{SOURCE}:{hook.session_id}:prompt:{hook.prompt_id or change['prompt_sha256'][:32]}"
        else:
            action, resource = f"agent:{hook.hook_event_name}", session_res
            event_id = f"{SOURCE}:{hook.session_id}:{hook.hook_event_name}:{payload_hash(record)}"

        env = environment(resource.environment, hook.railbook_environment, attributes)
        resource = Resource(resource.id, resource.type, env, resource.account, resource.data_classes)
        return [
            CanonicalEvent(
                event_id=check_id(event_id, source=SOURCE, where=where, field="session_id/tool_use_id"),
                occurred_at=occurred,
                source=SOURCE,
                actor=actor,
                action=action,
                resource=resource,
                change=Change(**change),
                attributes=attributes,
            )
        ]

    def scrub(self, record: Any) -> Any:
        """The prompt text is never stored: ``raw`` keeps its SHA-256 and length only.

        Bash commands get ``redact_command`` on top of the generic redaction (``mysql -pSECRET``).
        """
        if not isinstance(record, dict):
            return record
        out = dict(record)
        if isinstance(out.get("prompt"), str):
            text = out["prompt"]
            out["prompt"] = (
                f"[REDACTED:prompt sha256={sha256_hex(text.encode('utf-8', 'surrogatepass'))} "
                f"chars={len(text)}]"
            )
        ti = out.get("tool_input")
        if isinstance(ti, dict) and isinstance(ti.get("command"), str):
            out["tool_input"] = {**ti, "command": redact_command(ti["command"])[0]}
        return out


def _tool_call(
    tool: str, tool_input: dict[str, Any], where: str, config: Config
) -> tuple[str, Resource, dict[str, str]]:
    """Action, resource and extra attributes (``diff_sha256`` popped by the caller) for one tool call."""
    if tool == "Bash":
        command = tool_input.get("command")
        if not isinstance(command, str):
            raise fail(SOURCE, where, "tool_input.command", "a string", command)
        facts = classify_command(command, config)
        extra = dict(facts.attributes)
        extra["diff_sha256"] = facts.digest
        extra["command.sha256"] = facts.digest
        if facts.program:
            extra["command.program"] = facts.program
        desc = tool_input.get("description")
        if isinstance(desc, str):
            extra["tool.description"] = clip(desc, 512)
        return facts.action, facts.resource, extra
    if tool in ("Write", "Edit", "MultiEdit", "NotebookEdit", "Read"):
        path = tool_input.get("file_path", tool_input.get("notebook_path"))
        if not isinstance(path, str) or not path:
            raise fail(SOURCE, where, "tool_input.file_path", "a non-empty string", path)
        resource = Resource(id=clip(f"file://{path}", 2048), type="file")
        if tool == "Read":
            return "file:Read", resource, {}
        if tool == "Write":
            content = tool_input.get("content")
            if not isinstance(content, str):
                raise fail(SOURCE, where, "tool_input.content", "a string", content)
            digest = sha256_hex(content.encode("utf-8", "surrogatepass"))
        else:
            # No unified diff in the payload: the hash covers the exact edit requested.
            digest = sha256_hex(canonical_json(tool_input))
        return "file:Write", resource, {"diff_sha256": digest, "file.tool": tool}
    if tool.startswith("mcp__"):
        _, _, rest = tool.partition("mcp__")
        server, _, name = rest.partition("__")
        return (
            "mcp:CallTool",
            Resource(id=clip(f"mcp://{server}/{name}", 2048), type="mcp-tool"),
            {
                "mcp.server": server,
                "mcp.tool": name,
            },
        )
    if tool in ("WebFetch", "WebSearch"):
        target = tool_input.get("url") if tool == "WebFetch" else tool_input.get("query")
        rid = clip(str(target), 2000) if isinstance(target, str) and target else UNKNOWN
        return (
            ("web:Fetch" if tool == "WebFetch" else "web:Search"),
            Resource(id=f"web:{rid}", type="web"),
            {},
        )
    return f"tool:{tool}", Resource(id=clip(f"tool://{tool}", 2048), type="agent-tool"), {}
