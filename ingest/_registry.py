"""The one place adapters are registered: ``--source`` name → adapter instance."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.errors import NormaliseError
from ingest.claude_code import ClaudeCodeAdapter
from ingest.cloudtrail import CloudTrailAdapter
from ingest.event_source import EventAdapter
from ingest.github import GitHubAdapter
from ingest.k8s_audit import K8sAuditAdapter
from ingest.mcp import McpAdapter

if TYPE_CHECKING:
    from ingest._adapter import Adapter

__all__ = ["ADAPTERS", "SOURCES", "adapter_for"]

ADAPTERS: dict[str, Adapter] = {
    a.name: a
    for a in (
        EventAdapter(),
        CloudTrailAdapter(),
        GitHubAdapter(),
        K8sAuditAdapter(),
        ClaudeCodeAdapter(),
        McpAdapter(),
    )
}

#: the ``--source`` names, in documentation order
SOURCES: tuple[str, ...] = tuple(ADAPTERS)


def adapter_for(source: str) -> Adapter:
    try:
        return ADAPTERS[source]
    except KeyError:
        raise NormaliseError(
            f"unknown source {source!r}; expected one of {', '.join(SOURCES)} (or 'auto')",
            reason="unknown-source",
        ) from None
