"""``railbook bench ingest``: normalise_bytes records/s per source vs json.loads of the same bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from core.errors import IngestError
from railbook.cli._bench import bench, write_results
from railbook.cli._common import (
    CliContext,
    console,
    err_console,
    handle_errors,
    json_option,
    pass_ctx,
    print_json,
)


@bench.command("ingest")
@click.option("--records", default=2000, show_default=True, help="Generated records per source.")
@click.option(
    "--source",
    "sources",
    multiple=True,
    help="Source to measure (repeatable): cloudtrail, claude-code, k8s-audit; default all. "
    "With --file: the --source of that file (any ingest source, or auto).",
)
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Measure this file (as `railbook ingest` would read it) instead of a generated mix.",
)
@click.option("--repeat", default=3, show_default=True, help="Runs per measurement; the best one counts.")
@click.option("--seconds", default=0.5, show_default=True, help="Minimum time per measurement.")
@click.option("--seed", default=7, show_default=True, help="Seed of the generated mix.")
@click.option(
    "--out", type=click.Path(dir_okay=False), help="JSON results file (default bench-results/ingest.json)."
)
@json_option
@pass_ctx
@handle_errors
def bench_ingest(
    ctx: CliContext,
    records: int,
    sources: tuple[str, ...],
    path: Path | None,
    repeat: int,
    seconds: float,
    seed: int,
    out: str | None,
    as_json: bool,
) -> None:
    """Records/s of normalise_bytes per source, against json.loads of the same bytes.

    Both rates are measured in the same run on the same bytes (a CloudTrail log file, or JSON
    lines for the other sources); the ratio is what compares across machines. Every generated
    record must normalise (the dead-letter count is reported and should be 0).

    Example:

        railbook bench ingest --records 5000 --source cloudtrail --out bench-results/ingest.json
    """
    from ingest import SOURCES
    from ingest._bench import BENCH_SOURCES, measure, run_benchmark

    if path is not None:
        if len(sources) > 1:
            raise click.BadParameter("give at most one --source with --file", param_hint="--source")
        source = sources[0] if sources else "auto"
        if source != "auto" and source not in SOURCES:
            raise click.BadParameter(
                f"{source!r} is not an ingest source; expected one of {', '.join(SOURCES)} or auto",
                param_hint="--source",
            )
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise IngestError(f"bench ingest: cannot read {path}: {exc.strerror}; check the path") from exc
        with err_console.status(f"measuring {path.name}…"):
            one = measure(data, source, ctx.config, repeat=repeat, min_seconds=seconds)
        results: dict[str, Any] = {"file": str(path), "sources": {source: one}}
    else:
        unknown = [s for s in sources if s not in BENCH_SOURCES]
        if unknown:
            raise click.BadParameter(
                f"no generated mix for {', '.join(unknown)}; expected {', '.join(BENCH_SOURCES)} "
                "(or measure a file of it with --file)",
                param_hint="--source",
            )
        with err_console.status("measuring ingest records/s…") as status:
            results = run_benchmark(
                ctx.config,
                records=records,
                sources=sources or BENCH_SOURCES,
                repeat=repeat,
                min_seconds=seconds,
                seed=seed,
                progress=lambda s: status.update(f"measuring {s}…"),
            )
    written = write_results("ingest", results, out)
    if as_json:
        print_json(results)
        return
    table = Table("source", "records", "normalise/s", "json.loads/s", "ratio", "µs/record", "dead", box=None)
    for name, r in results["sources"].items():
        table.add_row(
            name,
            f"{r['records']:,}",
            f"{r['normalise_per_s']:,}",
            f"{r['json_loads_per_s']:,}",
            f"{r['ratio']}",
            f"{r['us_per_record']}",
            f"{r['dead_letters']}",
        )
    console.print(table)
    console.print(f"written to {written}")
