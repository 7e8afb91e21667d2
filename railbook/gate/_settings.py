"""The ``[gate]`` section of railbook.toml, validated strictly (``core.config`` keeps it opaque).

Environment overrides, for the hook running inside an agent's shell: ``RAILBOOK_GATE_URL`` (where
the gate is), ``RAILBOOK_AGENT_CREDENTIAL`` (the cloud identity the agent uses). The agent identity,
the human it acts for, its task and ticket come from the environment variables the Claude Code
adapter documents (``RAILBOOK_AGENT_ID``, ``RAILBOOK_ON_BEHALF_OF``, ``RAILBOOK_TASK``,
``RAILBOOK_TICKET``: ``ingest.claude_code.stamp_hook_payload``); ``agent`` / ``on_behalf_of`` here are
only their defaults. The token is read from the variable named by ``token_env`` (default
``RAILBOOK_TOKEN``), never from the file.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.config import section_settings

if TYPE_CHECKING:
    from core.config import Config

__all__ = ["GateSettings", "HookDecision", "gate_settings"]

HookDecision = Literal["allow", "deny", "ask"]

URL_ENV = "RAILBOOK_GATE_URL"
CREDENTIAL_ENV = "RAILBOOK_AGENT_CREDENTIAL"


class GateSettings(BaseModel):
    """``[gate]``: where the hook finds the gate, and what it does when it cannot."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = "http://127.0.0.1:8477"
    """Base URL of ``railbook up`` (env ``RAILBOOK_GATE_URL``; ``--url`` wins)."""
    token_env: str = "RAILBOOK_TOKEN"
    """The environment variable holding the agent's API token (role ``agent``)."""
    timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    """How long the hook waits for the gate before treating it as unreachable."""
    agent: str = "agent:claude-code"
    """The agent identity of hook requests when ``RAILBOOK_AGENT_ID`` is unset. Over HTTP, a token
    bound to an actor overrides both: the token is the identity."""
    on_behalf_of: str | None = None
    """The human the agent acts for when ``RAILBOOK_ON_BEHALF_OF`` is unset; may not approve its requests."""
    credential: str | None = None
    """The cloud identity the agent's tools use, e.g. its role ARN (env ``RAILBOOK_AGENT_CREDENTIAL``);
    lets bypass detection link CloudTrail records back to gate requests."""
    on_unreachable_destructive: HookDecision = "deny"
    """Answer when the gate is down and the action is destructive (the policy catalog, or an action
    the catalog does not know): fail closed."""
    on_unreachable_read: HookDecision = "allow"
    """Answer when the gate is down and the action is a read: fail open."""
    on_unreachable_other: HookDecision = "ask"
    """Answer when the gate is down and the action is an ordinary (non-destructive) change: put the
    user in the loop through Claude Code's own prompt."""
    ask_as: HookDecision = "deny"
    """What a gate ``ask`` becomes in Claude Code. ``deny`` (default): the agent stops and reports
    the request id, because Claude Code's own "ask" prompt would be answered by the instructing
    human, who may not approve their own agent's action (rail 3). ``ask``: show the prompt anyway."""
    allow_as: Literal["allow", "none"] = "allow"
    """What a gate ``allow`` becomes in Claude Code: ``allow`` (skip Claude Code's own prompt) or
    ``none`` (no decision: Claude Code's normal permission flow still applies)."""
    max_expiry_seconds: int = Field(default=86400, ge=1)
    """Longest ``expires_in`` an approver may give a grant."""


def gate_settings(config: Config, *, env: dict[str, str] | None = None) -> GateSettings:
    """Parse ``[gate]`` strictly and apply the environment overrides; errors name the key."""
    environ = os.environ if env is None else env
    overrides = {"url": environ.get(URL_ENV), "credential": environ.get(CREDENTIAL_ENV)}
    return section_settings(config, "gate", GateSettings, overrides=overrides)
