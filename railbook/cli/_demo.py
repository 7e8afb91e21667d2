"""``railbook demo``: the incident of DESIGN.md, end to end, on the embedded default."""

from __future__ import annotations

from pathlib import Path

import click
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table

from ledger import Ledger
from railbook.answers import attribution
from railbook.cli import main
from railbook.cli._common import console, handle_errors
from railbook.demo import INCIDENT_EVENT_ID, run_demo
from railbook.render import RAIL_NAMES, print_attribution


@main.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("railbook-data/demo"),
    show_default=True,
    help="Where the demo's ledger, key, checkpoints and segments go (reset on every run).",
)
@handle_errors
def demo(directory: Path) -> None:
    """Replay the production ALTER TABLE incident and answer the auditor's question.

    An agent fixing a flaky migration runs ALTER TABLE against the production database
    with no approval; a pipeline deploy and a staging change are fine; then the same
    migration goes through properly: approved by a human, applied by the pipeline. Every
    record goes through the same adapters, Cedar policies and ledger as `railbook ingest`.

    Example:

        railbook demo --dir /tmp/railbook-demo
    """
    try:
        result = run_demo(directory)
    except FileExistsError as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(Rule("[bold]Railbook demo: the wrong connection string"))
    for name, blurb, summary in result.steps:
        console.print(f"\n[bold]{name}[/]  {blurb}")
        t = Table(show_lines=False, pad_edge=False)
        for col in ("seq", "time (UTC)", "actor", "action", "resource", "decision"):
            t.add_column(col, overflow="fold")
        for seq, event, decision in summary.entries:
            verdict = (
                "[bold red]VIOLATION[/] rails " + ",".join(map(str, decision.rails))
                if decision.is_violation
                else "[green]allowed[/]"
                + (" (approval used)" if decision.approval and decision.approval.status == "covered" else "")
            )
            t.add_row(
                str(seq),
                event.occurred_at.strftime("%m-%d %H:%M:%S"),
                f"{event.actor.id} ({event.actor.kind})",
                event.action,
                f"{event.resource.id} [{event.resource.environment}]",
                verdict,
            )
        console.print(t)
        if summary.dead_lettered or summary.duplicates:
            console.print(f"  {summary.line()}")

    violations = [(s, e, d) for _, _, summ in result.steps for s, e, d in summ.entries if d.is_violation]
    console.print(Rule("[bold]Violations"))
    for seq, event, decision in violations:
        console.print(f"[red]seq {seq}[/] {event.event_id}: {decision.severity}")
        for r in decision.reasons:
            console.print(f"   rail {r.rail} ({RAIL_NAMES[r.rail]}): [bold]{r.policy_id}[/] — {r.title}")
            if r.remediation:
                console.print(f"      fix: {r.remediation}")

    console.print(Rule("[bold]The auditor asks: who authorized that ALTER TABLE, and where is the record?"))
    with Ledger.open(result.config, read_only=True) as ledger:
        answer = attribution(ledger, INCIDENT_EVENT_ID)
    assert answer is not None
    print_attribution(answer)

    console.print(Rule("[bold]Integrity"))
    report = result.verify
    assert report is not None
    cp = report.latest_checkpoint
    if report.ok:
        console.print(
            f"[bold green]verified[/]: {report.entries_checked} entries, {report.checkpoints_checked} signed "
            f"checkpoint(s); every leaf, the hash chain, every root and signature re-derived"
        )
    else:
        first = report.first
        console.print(
            f"[bold red]VERIFICATION FAILED[/]: {first.kind if first else '?'} at seq "
            f"{first.seq if first else '?'}: {first.detail if first else ''}"
        )
    if cp is not None:
        console.print(Panel(cp.signed_note_text.rstrip(), title="latest signed checkpoint", expand=False))
    cfg = result.config_path
    console.print(
        "\nNext (with the virtualenv active: . .venv/bin/activate):\n"
        f"  railbook --config {cfg} why {INCIDENT_EVENT_ID}\n"
        f"  railbook --config {cfg} violations --json\n"
        f"  railbook --config {cfg} evidence {INCIDENT_EVENT_ID} --out incident-evidence.json\n"
        f"  railbook verify-evidence incident-evidence.json\n"
        f"  railbook --config {cfg} dashboard"
    )
    if not report.ok:
        raise SystemExit(1)
