"""``--source mcp``: Model Context Protocol ``tools/call`` messages (JSON-RPC 2.0, spec 2025-06-18).

* request ``{"method": "tools/call", "params": {"name": …, "arguments": {…}}}`` → ``mcp:CallTool`` on
  ``mcp://<server>/<tool>`` (type ``mcp-tool``), ``change.diff_sha256`` = SHA-256 of the canonical
  arguments;
* result ``{"result": {"content": […], "isError": …}}`` → ``mcp:ToolResult`` (``attributes["is_error"]``);
* error ``{"error": {"code": …, "message": …}}`` → ``mcp:ToolError`` (``attributes["error_code"]``).

Other methods (``tools/list``, notifications) are dead-lettered as ``unsupported``, never dropped.
JSON-RPC carries no identity, session or time: a forwarder adds top-level ``railbook_agent_id``
(default ``agent:mcp-client``), ``railbook_on_behalf_of``, ``railbook_session`` (the
``Mcp-Session-Id``), ``railbook_server`` and ``railbook_received_at``. ``event_id`` =
``mcp:<session>:<id>[:result]`` with a session, else ``mcp:<sha256 of the message, 32 hex>``.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import Field

from core.canonical import canonical_json
from core.config import Config
from core.errors import NormaliseError
from core.event import UNKNOWN, Actor, CanonicalEvent, Change, Resource, sha256_hex
from ingest._adapter import BaseAdapter
from ingest._common import (
    Wire,
    actor_kind,
    attrs,
    check_id,
    clip,
    fail,
    now_utc,
    parse_ts,
    payload_hash,
    validate,
)

__all__ = ["DEFAULT_MCP_AGENT", "McpAdapter"]

logger = logging.getLogger(__name__)

SOURCE = "mcp"
DEFAULT_MCP_AGENT = "agent:mcp-client"


class _Params(Wire):
    name: str = Field(min_length=1, max_length=512)
    arguments: dict[str, Any] | None = None


class _Error(Wire):
    code: int
    message: str = Field(max_length=65536)


class _Message(Wire):
    jsonrpc: str = Field(pattern=r"^2\.0$")
    id: int | str | None = None
    method: str | None = Field(default=None, max_length=256)
    params: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: _Error | None = None
    railbook_agent_id: str | None = Field(default=None, min_length=1, max_length=512)
    railbook_on_behalf_of: str | None = Field(default=None, min_length=1, max_length=512)
    railbook_session: str | None = Field(default=None, min_length=1, max_length=512)
    railbook_server: str | None = Field(default=None, min_length=1, max_length=512)
    railbook_received_at: str | None = Field(default=None, max_length=64)


class McpAdapter(BaseAdapter):
    name = SOURCE

    def normalise(self, record: Any, *, where: str, config: Config) -> list[CanonicalEvent]:
        msg = validate(_Message, record, source=SOURCE, where=where)
        if isinstance(msg.id, str) and len(msg.id) > 256:
            raise fail(
                SOURCE,
                where,
                "id",
                "at most 256 characters",
                f"{len(msg.id)} characters",
                reason="oversized-field",
            )
        if msg.railbook_received_at:
            occurred = parse_ts(
                msg.railbook_received_at, source=SOURCE, where=where, field="railbook_received_at"
            )
            time_source = None
        else:
            occurred, time_source = now_utc(), "ingest"
        server = msg.railbook_server or UNKNOWN
        attributes = attrs(jsonrpc_id=msg.id, mcp__server=msg.railbook_server, time_source=time_source)
        change = Change()
        if msg.method is not None:
            if msg.method != "tools/call":
                raise NormaliseError(
                    f"{SOURCE}: {where}: method {msg.method!r} is not recorded; only 'tools/call' "
                    "requests and their responses are",
                    reason="unsupported",
                )
            if msg.params is None:
                raise fail(SOURCE, where, "params", "an object with 'name'", None, reason="missing-field")
            params = validate(_Params, msg.params, source=SOURCE, where=f"{where} params")
            action = "mcp:CallTool"
            tool = params.name
            attributes["mcp.tool"] = clip(tool, 512)
            change = Change(diff_sha256=sha256_hex(canonical_json(params.arguments or {})))
            suffix = ""
        elif msg.error is not None:
            action, tool, suffix = "mcp:ToolError", UNKNOWN, ":result"
            attributes.update(attrs(error_code=msg.error.code, error_message=msg.error.message))
        elif msg.result is not None:
            action, tool, suffix = "mcp:ToolResult", UNKNOWN, ":result"
            is_error = msg.result.get("isError")
            attributes["is_error"] = "true" if is_error is True else "false"
            if is_error is True:
                attributes["error_code"] = "tool-error"
        else:
            raise NormaliseError(
                f"{SOURCE}: {where}: JSON-RPC message has none of 'method', 'result', 'error'", reason="shape"
            )
        if msg.id is None and msg.method is not None:
            raise NormaliseError(
                f"{SOURCE}: {where}: a notification (no 'id') is not a tools/call request",
                reason="unsupported",
            )
        if msg.railbook_session and msg.id is not None:
            event_id = f"{SOURCE}:{msg.railbook_session}:{msg.id}{suffix}"
        else:
            event_id = f"{SOURCE}:{payload_hash(record)}"
        agent = msg.railbook_agent_id or DEFAULT_MCP_AGENT
        return [
            CanonicalEvent(
                event_id=check_id(event_id, source=SOURCE, where=where, field="id"),
                occurred_at=occurred,
                source=SOURCE,
                actor=Actor(
                    id=agent,
                    kind=actor_kind(config, agent, None, attributes),
                    on_behalf_of=msg.railbook_on_behalf_of,
                    session=msg.railbook_session,
                ),
                action=action,
                resource=Resource(id=clip(f"mcp://{server}/{tool}", 2048), type="mcp-tool"),
                change=change,
                attributes=attributes,
            )
        ]
