"""Slack incoming-webhook payloads in Block Kit, and a checker for Block Kit's structural rules.

The message reads top-down the way a responder triages: what rule (header), who did what to which
resource for whom (fields), how bad and how often, and where the evidence is (button + CLI hint).

``validate_message`` enforces the rules Slack documents for the block types used here (Block Kit
reference, "Blocks" and "Composition objects"): at most 50 blocks; ``header`` text is
``plain_text`` ≤ 150 chars; ``section`` has ``text`` (≤ 3000) and/or ``fields`` (≤ 10, each ≤ 2000);
``context`` has 1–10 elements; ``actions`` has 1–25 elements; a ``button`` has ``plain_text`` ≤ 75
chars, a ``url`` ≤ 3000 and an ``action_id`` ≤ 255; ``block_id`` ≤ 255; text objects are
``plain_text`` or ``mrkdwn`` with non-empty text; ``emoji`` only on ``plain_text``.
"""

from __future__ import annotations

from typing import Any

from alerts.model import Alert

__all__ = ["slack_message", "validate_message"]

_SEVERITY_EMOJI = {
    "critical": ":rotating_light:",
    "high": ":red_circle:",
    "medium": ":large_orange_diamond:",
    "low": ":large_blue_diamond:",
    "info": ":information_source:",
}
_RAIL_NAMES = {
    1: "Environment separation by identity",
    2: "No standing direct access to production",
    3: "Approval gates on destructive actions",
    4: "Attributable, immutable audit trail",
}


def _esc(text: str) -> str:
    """Slack mrkdwn control characters (``&``, ``<``, ``>``) must be escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _field(label: str, value: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": _clip(f"*{label}*\n{_esc(value)}", 2000)}


def slack_message(alert: Alert) -> dict[str, Any]:
    """The incoming-webhook JSON body for ``alert`` (``text`` is the notification fallback)."""
    f = alert.first
    rails = ", ".join(f"{r} ({_RAIL_NAMES.get(r, 'rail')})" for r in f.rails) or "—"
    sev = f.severity or "unknown"
    emoji = _SEVERITY_EMOJI.get(sev, ":warning:")
    count = (
        f"×{alert.count} (first {f.event_id}, last {alert.last_event_id or f.event_id})"
        if alert.count > 1
        else "1"
    )
    fields = [
        _field("Rail", rails),
        _field("Severity", sev),
        _field("Actor", f"{f.actor} ({f.actor_kind})"),
        _field("On behalf of", f.on_behalf_of or "unknown"),
        _field("Action", f.action),
        _field("Resource", f"{f.resource} [{f.environment}]"),
        _field("Policy", ", ".join(f.policies) or "—"),
        _field("Occurrences", count),
    ]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": _clip(f"{'[TEST] ' if alert.test else ''}Railbook: {alert.title}", 150),
                "emoji": True,
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _clip(
                    f"{emoji} *{_esc(sev.upper())}* violation of rail {', '.join(map(str, f.rails)) or '?'} "
                    f"by `{_esc(f.actor)}` on `{_esc(f.resource)}`",
                    3000,
                ),
            },
            "fields": fields,
        },
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": _clip(
                        f"event `{_esc(f.event_id)}` · ledger seq {f.seq} · source {_esc(f.source)} · "
                        f"evidence: `railbook why {_esc(f.event_id)}` · key `{_esc(alert.idempotency_key)}`",
                        3000,
                    ),
                },
            ],
        },
    ]
    if alert.evidence_url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "View evidence", "emoji": False},
                        "url": _clip(alert.evidence_url, 3000),
                        "action_id": "railbook-evidence",
                    }
                ],
            }
        )
    text = _clip(
        f"{'[TEST] ' if alert.test else ''}Railbook {sev} violation: {alert.title} by {f.actor} "
        f"on {f.resource}" + (f" (×{alert.count})" if alert.count > 1 else ""),
        3000,
    )
    return {"text": text, "blocks": blocks}


# --- structural validation ------------------------------------------------------------------------


def _text_obj(obj: Any, where: str, *, limit: int, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict):
        return [f"{where}: text object must be an object"]
    errs: list[str] = []
    kind = obj.get("type")
    if kind not in ("plain_text", "mrkdwn") or (plain_only and kind != "plain_text"):
        errs.append(
            f"{where}.type: expected {'plain_text' if plain_only else 'plain_text or mrkdwn'}, got {kind!r}"
        )
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        errs.append(f"{where}.text: must be a non-empty string")
    elif len(text) > limit:
        errs.append(f"{where}.text: {len(text)} characters exceeds {limit}")
    if "emoji" in obj and kind != "plain_text":
        errs.append(f"{where}.emoji: only allowed on plain_text")
    extra = set(obj) - {"type", "text", "emoji", "verbatim"}
    if extra:
        errs.append(f"{where}: unknown keys {sorted(extra)}")
    return errs


def _block(block: Any, where: str) -> list[str]:
    if not isinstance(block, dict):
        return [f"{where}: block must be an object"]
    errs: list[str] = []
    bid = block.get("block_id")
    if bid is not None and (not isinstance(bid, str) or len(bid) > 255):
        errs.append(f"{where}.block_id: must be a string of at most 255 characters")
    kind = block.get("type")
    if kind == "header":
        errs += _text_obj(block.get("text"), f"{where}.text", limit=150, plain_only=True)
    elif kind == "section":
        if "text" not in block and "fields" not in block:
            errs.append(f"{where}: a section needs text or fields")
        if "text" in block:
            errs += _text_obj(block["text"], f"{where}.text", limit=3000)
        if "fields" in block:
            fields = block["fields"]
            if not isinstance(fields, list) or not 1 <= len(fields) <= 10:
                errs.append(f"{where}.fields: must hold 1-10 text objects")
            else:
                for i, fld in enumerate(fields):
                    errs += _text_obj(fld, f"{where}.fields[{i}]", limit=2000)
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
            errs.append(f"{where}.elements: must hold 1-10 elements")
        else:
            for i, el in enumerate(elements):
                errs += _text_obj(el, f"{where}.elements[{i}]", limit=3000)
    elif kind == "divider":
        pass
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
            errs.append(f"{where}.elements: must hold 1-25 elements")
        else:
            for i, el in enumerate(elements):
                w = f"{where}.elements[{i}]"
                if not isinstance(el, dict) or el.get("type") != "button":
                    errs.append(f"{w}: only buttons are used here, got {el!r:.60}")
                    continue
                errs += _text_obj(el.get("text"), f"{w}.text", limit=75, plain_only=True)
                url = el.get("url")
                if url is not None and (not isinstance(url, str) or len(url) > 3000):
                    errs.append(f"{w}.url: must be a string of at most 3000 characters")
                aid = el.get("action_id")
                if aid is not None and (not isinstance(aid, str) or len(aid) > 255):
                    errs.append(f"{w}.action_id: must be a string of at most 255 characters")
    else:
        errs.append(f"{where}.type: unsupported block type {kind!r}")
    return errs


def validate_message(message: Any) -> list[str]:
    """Block Kit rule violations in an incoming-webhook message (empty list: valid)."""
    if not isinstance(message, dict):
        return ["message must be a JSON object"]
    errs: list[str] = []
    blocks = message.get("blocks")
    if not isinstance(blocks, list) or not 1 <= len(blocks) <= 50:
        errs.append("blocks: must hold 1-50 blocks")
        blocks = []
    text = message.get("text")
    if not isinstance(text, str) or not text:
        errs.append("text: a non-empty fallback text is required for notifications")
    for i, block in enumerate(blocks):
        errs += _block(block, f"blocks[{i}]")
    return errs
