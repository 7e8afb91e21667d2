"""Rich text views of the answers in ``railbook.answers`` (for humans; ``--json`` is for scripts)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from railbook.cli._common import console

__all__ = ["print_attribution", "print_violations"]

RAIL_NAMES = {
    1: "environment separation by identity",
    2: "no standing direct access to production",
    3: "approval gates on destructive actions",
    4: "attributable, immutable audit trail",
}


def _v(value: Any) -> str:
    return "[red]— missing —[/]" if value in (None, "", []) else str(value)


def print_attribution(a: dict[str, Any]) -> None:
    d = a["decision"]
    if d["mode"] == "gate":
        verdict = f"[bold]gate answered {d['gate']}[/] (proposed, not yet run)"
    else:
        verdict = "[bold red]VIOLATION[/]" if d["outcome"] == "deny" else "[bold green]allowed[/]"
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold", no_wrap=True)
    t.add_column()
    t.add_row("event", f"{a['event_id']}  ({a['source']}, {a['occurred_at']})")
    t.add_row("what", f"{a['action']} on {a['resource']['id']} [{a['resource']['environment']}]")
    t.add_row("who", f"{a['actor']['id']} ({a['actor']['kind']})")
    t.add_row("credential", _v(a["actor"]["credential"]))
    t.add_row("on behalf of", _v(a["on_behalf_of"]))
    ch = a["change"]
    t.add_row("task", _v(ch["task"]))
    pe = a.get("prompt_event")
    if ch["prompt_sha256"] or not pe:
        t.add_row("prompt sha256", _v(ch["prompt_sha256"]))
    else:
        t.add_row("prompt", f"{pe['prompt_sha256']} (submitted {pe['submitted_at']}, ledger seq {pe['seq']})")
    t.add_row("diff sha256", _v(ch["diff_sha256"]))
    for key in ("commit", "pull_request", "ticket"):
        if ch[key]:
            t.add_row(key.replace("_", " "), ch[key])
    ap = a["approval"]
    if ap is None:
        t.add_row("approval", "not needed")
    elif ap["status"] == "covered" and ap.get("grant"):
        g = ap["grant"]
        t.add_row(
            "approval",
            f"[green]granted[/] by {g['approver']} at {g['granted_at']} (request {ap['request_id']})",
        )
    else:
        failures = ", ".join(ap["failures"]) or "no approval was requested or granted"
        t.add_row("approval", f"[red]{ap['status']}[/]: {failures}")
    t.add_row("decision", f"{verdict}  policy set {d['policy_version'][:16]}…")
    for r in d["reasons"]:
        t.add_row(
            "",
            f"rail {r['rail']} ({RAIL_NAMES.get(r['rail'], '?')}) · {r['severity']} · "
            f"{r['policy_id']}: {r['title']}",
        )
    if a["attribution_missing"]:
        t.add_row("attribution gaps", "[red]" + ", ".join(a["attribution_missing"]) + "[/]")
    rec = a["record"]
    where = f"ledger seq {rec['seq']}, leaf {rec['leaf_hash'][:16]}…"
    inc = rec.get("inclusion")
    if isinstance(inc, dict) and "tree_size" in inc:
        where += f", included in signed checkpoint of size {inc['tree_size']}"
    elif isinstance(inc, dict) and "error" in inc:
        where += f" (not yet covered by a signed checkpoint: {inc['error']})"
    t.add_row("record", where)
    console.print(t)


def print_violations(rows: list[dict[str, Any]]) -> None:
    if not rows:
        console.print("[green]No violations.[/]")
        return
    t = Table(title=f"{len(rows)} violation(s)")
    for col in ("seq", "occurred_at", "rails", "severity", "actor", "action", "resource", "policies"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            str(r["seq"]),
            r["occurred_at"],
            ",".join(map(str, r["rails"])),
            r["severity"] or "",
            f"{r['actor']} ({r['actor_kind']})",
            r["action"],
            f"{r['resource']} [{r['environment']}]",
            "\n".join(r["policies"]),
        )
    console.print(t)
