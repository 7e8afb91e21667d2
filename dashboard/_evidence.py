"""Evidence page logic: find a change, show who authorized it, hand over a pack that verifies.

The attribution chain is ``railbook.answers.attribution`` — the same answer ``railbook why``
prints — so the dashboard and the command line can never disagree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dashboard._events import event_row
from railbook.answers import attribution

__all__ = ["EvidenceQuery", "chain_steps", "evidence_answer", "find_changes"]

logger = logging.getLogger(__name__)

MAX_MATCHES = 200


@dataclass(frozen=True)
class EvidenceQuery:
    """How an auditor names a change: any one of these (a time range narrows the others)."""

    event_id: str | None = None
    commit: str | None = None
    pull_request: str | None = None
    resource: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def is_empty(self) -> bool:
        return not any((self.event_id, self.commit, self.pull_request, self.resource, self.since, self.until))


def find_changes(reader: Any, q: EvidenceQuery, *, limit: int = MAX_MATCHES) -> list[dict[str, Any]]:
    """Entries matching ``q``, as table rows (an event id wins over the other fields)."""
    if q.is_empty():
        return []
    if q.event_id:
        entry = reader.get(q.event_id.strip())
        return [event_row(entry)] if entry is not None else []
    found = reader.find(
        commit=(q.commit or "").strip() or None,
        pull_request=(q.pull_request or "").strip() or None,
        resource=(q.resource or "").strip() or None,
        since=q.since,
        until=q.until,
    )
    return [event_row(e) for e in list(found)[:limit]]


def evidence_answer(reader: Any, event_id: str) -> dict[str, Any] | None:
    """The attribution chain of one event (``None`` if the ledger has no such event)."""
    return attribution(reader, event_id)


def _missing(v: Any) -> bool:
    return v in (None, "", [])


def chain_steps(answer: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The attribution chain as ``(step, value, ok)`` lines, in the order an auditor asks."""
    ch = answer["change"]
    agent = answer["actor"]["kind"] == "agent"
    steps: list[tuple[str, str, bool]] = [
        (
            "what",
            f"{answer['action']} on {answer['resource']['id']} [{answer['resource']['environment']}]",
            True,
        ),
        ("who", f"{answer['actor']['id']} ({answer['actor']['kind']})", True),
        ("credential", answer["actor"]["credential"] or "—", True),
        (
            "on whose instruction",
            answer["on_behalf_of"] or "— missing —",
            not (agent and _missing(answer["on_behalf_of"])),
        ),
        (
            "task / prompt",
            ch["task"] or (f"prompt sha256 {ch['prompt_sha256']}" if ch["prompt_sha256"] else "— missing —"),
            not (agent and _missing(ch["task"]) and _missing(ch["prompt_sha256"])),
        ),
        ("diff sha256", ch["diff_sha256"] or "— missing —", not (agent and _missing(ch["diff_sha256"]))),
    ]
    for key in ("commit", "pull_request", "ticket"):
        if ch[key]:
            steps.append((key.replace("_", " "), str(ch[key]), True))
    ap = answer["approval"]
    if ap is None:
        steps.append(("approval", "not needed", True))
    elif ap.get("status") == "covered" and ap.get("grant"):
        g = ap["grant"]
        steps.append(
            (
                "approval",
                f"granted by {g['approver']} at {g['granted_at']} (request {ap['request_id']}, "
                f"grant event {g['event_id']})",
                True,
            )
        )
    else:
        failures = ", ".join(ap.get("failures") or []) or "no approval was requested or granted"
        steps.append(
            ("approval", f"{ap.get('status')}: {failures}", ap.get("status") in ("covered", "not-needed"))
        )
    d = answer["decision"]
    if d["mode"] == "gate":
        verdict = f"gate answered {d['gate']}"
    else:
        verdict = "VIOLATION" if d["outcome"] == "deny" else "allowed"
    steps.append(
        (
            "decision",
            f"{verdict} — "
            + (
                "; ".join(
                    f"rail {r['rail']} · {r['severity']} · {r['policy_id']}: {r['title']}"
                    for r in d["reasons"]
                )
                or "no policy forbids it"
            ),
            d["outcome"] == "allow",
        )
    )
    steps.append(("policy version", d["policy_version"], True))
    rec = answer["record"]
    where = f"ledger seq {rec['seq']}, leaf {rec['leaf_hash']}"
    inc = rec.get("inclusion")
    if isinstance(inc, dict) and "tree_size" in inc:
        where += f"; included in the signed checkpoint of size {inc['tree_size']}"
    elif isinstance(inc, dict) and "error" in inc:
        where += f"; not yet covered by a signed checkpoint ({inc['error']})"
    steps.append(("record", where, True))
    return steps
