"""``railbook ingest``, ``railbook why``, ``railbook violations``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from core.deadletter import DeadLetter
from core.event import CanonicalEvent
from ingest import SOURCES, normalise_bytes
from railbook.answers import attribution, violation_row
from railbook.cli import main
from railbook.cli._common import (
    TIME,
    CliContext,
    err_console,
    handle_errors,
    json_option,
    pass_ctx,
    print_json,
    read_input,
)
from railbook.pipeline import BatchSummary
from railbook.wiring import open_pipeline, open_reader

BATCH = 5000
#: dead letters shown one by one before only counting
SHOW_DEAD = 20


def _batches(
    items: Iterator[CanonicalEvent | DeadLetter], size: int
) -> Iterator[list[CanonicalEvent | DeadLetter]]:
    batch: list[CanonicalEvent | DeadLetter] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option(
    "--source",
    type=click.Choice(["auto", *SOURCES]),
    default="auto",
    show_default=True,
    help="How to read the input; auto recognises each record by its shape.",
)
@click.option(
    "--batch-size", default=BATCH, show_default=True, help="Events evaluated and appended per transaction."
)
@json_option
@pass_ctx
@handle_errors
def ingest(ctx: CliContext, files: tuple[str, ...], source: str, batch_size: int, as_json: bool) -> None:
    """Normalise, evaluate and append records from FILES (or - for stdin).

    Inputs may be JSON documents, JSON lines or gzip. Records that cannot be read are
    dead-lettered in the ledger with their reason and raw bytes; the rest of the file is
    still processed. Exits non-zero only when nothing at all could be read.

    Example:

        railbook ingest --source cloudtrail trail.json.gz

        cat hook.json | railbook ingest --source claude-code -
    """
    config = ctx.config
    total = BatchSummary()
    shown = 0
    with (
        open_pipeline(config) as pipeline,
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed} records"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
            disable=as_json or not err_console.is_terminal,
        ) as progress,
    ):
        for name in files:
            data = read_input(name)
            origin = "stdin" if name == "-" else name
            task = progress.add_task(origin, total=None)
            items = normalise_bytes(
                data, source=None if source == "auto" else source, origin=origin, config=config
            )
            for batch in _batches(items, batch_size):
                for item in batch:
                    if isinstance(item, DeadLetter) and shown < SHOW_DEAD:
                        shown += 1
                        err_console.print(
                            f"[yellow]dead-lettered[/] {item.where}: {item.reason}: {item.detail}"
                        )
                summary = pipeline.process(batch)
                total.add(summary, keep_entries=False)
                progress.advance(task, summary.read)
    if total.dead_lettered > shown:
        err_console.print(
            f"[yellow]… {total.dead_lettered - shown} more dead letters[/] (see the dead_letters table)"
        )
    if as_json:
        print_json(
            {
                "read": total.read,
                "appended": total.appended,
                "duplicates": total.duplicates,
                "dead_lettered": total.dead_lettered,
                "violations": total.violations,
            }
        )
    else:
        click.echo(total.line())
    if total.read == total.dead_lettered:
        # nothing could be read at all (every record was bad, or the input was empty)
        sys.exit(1)


@main.command()
@click.argument("event_id")
@json_option
@pass_ctx
@handle_errors
def why(ctx: CliContext, event_id: str, as_json: bool) -> None:
    """Who did EVENT_ID, for whom, under which task and approval, and what Railbook decided.

    Answers the auditor's question: who authorized that change, and where is the record?

    Example:

        railbook why claude-code:sess-7f3a:toolu_01 --json
    """
    with open_reader(ctx.config, notice=err_console.print) as reader:
        answer = attribution(reader, event_id)
    if answer is None:
        raise click.ClickException(f"no ledger entry with event_id {event_id!r} (try `railbook violations`)")
    if as_json:
        print_json(answer)
    else:
        from railbook.render import print_attribution

        print_attribution(answer)


@main.command()
@click.option("--rail", type=click.IntRange(1, 4), help="Only violations of this rail.")
@click.option("--since", type=TIME, help="Only events that occurred at or after this time (RFC 3339).")
@click.option(
    "--limit",
    default=1000,
    show_default=True,
    type=click.IntRange(1),
    help="At most this many, newest first.",
)
@json_option
@pass_ctx
@handle_errors
def violations(ctx: CliContext, rail: int | None, since: datetime | None, limit: int, as_json: bool) -> None:
    """List ledger entries whose decision is a violation.

    Example:

        railbook violations --rail 3 --since 2026-01-01T00:00:00Z --json
    """
    with open_reader(ctx.config, notice=err_console.print) as reader:
        rows = [violation_row(e) for e in reader.violations(rail=rail, since=since, limit=limit)]
    if as_json:
        print_json(rows)
        return
    from railbook.render import print_violations

    print_violations(rows)
