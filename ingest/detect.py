"""Recognise a record's source by its shape (``--source auto``); saved webhook payloads have no headers."""

from __future__ import annotations

from typing import Any

__all__ = ["detect_source", "is_github_payload"]

_GITHUB_KEYS = ("repository", "sender")


def is_github_payload(record: dict[str, Any]) -> bool:
    """A GitHub webhook body (or Railbook's ``{"headers": …, "payload": …}`` envelope of one)."""
    if isinstance(record.get("headers"), dict) and isinstance(record.get("payload"), dict):
        return any(str(k).lower() == "x-github-event" for k in record["headers"])
    return isinstance(record.get("repository"), dict) and (
        isinstance(record.get("sender"), dict) or "pusher" in record or "hook_id" in record
    )


def detect_source(record: Any) -> str | None:
    """``cloudtrail``, ``github``, ``k8s-audit``, ``claude-code``, ``mcp``, ``event`` or ``None``."""
    if not isinstance(record, dict):
        return None
    if isinstance(record.get("Records"), list):
        return "cloudtrail"
    if (
        "eventSource" in record
        and "eventName" in record
        and ("eventVersion" in record or "eventID" in record)
    ):
        return "cloudtrail"
    if isinstance(record.get("detail"), dict) and "detail-type" in record:
        return "cloudtrail"
    api = record.get("apiVersion")
    if (isinstance(api, str) and api.startswith("audit.k8s.io/")) or (
        record.get("kind") == "Event" and "auditID" in record
    ):
        return "k8s-audit"
    if (
        "hook_event_name" in record
        or "hookSpecificOutput" in record
        or isinstance(record.get("continue"), bool)
    ):
        return "claude-code"
    if record.get("jsonrpc") == "2.0":
        return "mcp"
    if "event_id" in record and "action" in record and "actor" in record:
        return "event"
    if is_github_payload(record):
        return "github"
    return None
