"""``railbook dashboard`` and ``railbook bench dashboard``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from dashboard import dashboard_settings, streamlit_command, streamlit_env
from railbook.cli import main
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


@main.command()
@click.option(
    "--ledger",
    "ledger_path",
    type=click.Path(dir_okay=False),
    help="Ledger to show (overrides the global --ledger / RAILBOOK_LEDGER).",
)
@click.option("--host", default=None, help="Address to listen on (default [dashboard] host, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default [dashboard] port, 8501).")
@click.option(
    "--service-url",
    default=None,
    envvar="RAILBOOK_SERVICE_URL",
    help="The running service (railbook up) to submit approvals to; unset: offline copy, in-process.",
)
@click.option(
    "--user",
    default=None,
    envvar="RAILBOOK_DASHBOARD_USER",
    help="Local user for the embedded default (loopback only) when no OIDC or token sign-in is set.",
)
@pass_ctx
@handle_errors
def dashboard(
    ctx: CliContext,
    ledger_path: str | None,
    host: str | None,
    port: int | None,
    service_url: str | None,
    user: str | None,
) -> None:
    """Serve the Streamlit dashboard over the ledger.

    While a service (`railbook up`) writes the ledger, the dashboard reads the Parquet segments
    published at each signed checkpoint and sends approvals and acknowledgements to the service.
    Without a service it reads the ledger file (an auditor's offline copy). Stops with Ctrl-C.

    Example:

        railbook dashboard --ledger railbook-data/demo/ledger.duckdb --port 8501
    """
    if ledger_path:
        ctx.ledger_path = ledger_path
        ctx._config = None
    config = ctx.config
    settings = dashboard_settings(config)
    host = host or settings.host
    port = port if port is not None else settings.port
    if not config.ledger_path.exists() and not config.segments_dir.is_dir():
        raise click.ClickException(
            f"no ledger at {str(config.ledger_path)!r} and no segments in {str(config.segments_dir)!r}; "
            "run 'railbook demo', or pass --ledger PATH"
        )
    cmd = streamlit_command(host=host, port=port)
    env = streamlit_env(
        config_path=ctx.config_path, ledger_path=str(config.ledger_path), service_url=service_url, user=user
    )
    err_console.print(
        f"Railbook dashboard on [bold]http://{host}:{port}[/] · ledger {config.ledger_path}"
        + (f" · service {service_url}" if service_url else " · offline copy")
    )
    sys.stdout.flush()
    sys.stderr.flush()
    # Become the Streamlit server (no child left behind when this process is stopped).
    os.execve(cmd[0], cmd, env)


@bench.command("dashboard")
@click.option(
    "--entries",
    type=int,
    default=20_000,
    show_default=True,
    help="Ledger size to build (use 1000000 for the 1M-entry target).",
)
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to build (and reuse) the ledger; default bench-results/dashboard-<entries>.",
)
@click.option("--budget", type=float, default=2.0, show_default=True, help="Seconds a page may take.")
@click.option("--out", default=None, help="JSON results file (default bench-results/dashboard.json).")
@json_option
@handle_errors
def bench_dashboard(entries: int, workdir: str | None, budget: float, out: str | None, as_json: bool) -> None:
    """Time every dashboard page (queries + render, via AppTest) over published segments.

    Builds a ledger of --entries synthetic entries (reused on later runs), publishes its Parquet
    segments, then renders each page as a user opening it would, with the dashboard reading the
    segments exactly as it does beside a running service.

    Example:

        railbook bench dashboard --entries 1000000
    """
    from dashboard._bench import run_bench

    root = Path(workdir) if workdir else Path("bench-results") / f"dashboard-{entries}"
    results = run_bench(
        root,
        entries=entries,
        budget=budget,
        say=(lambda m: err_console.print(m)) if as_json else (lambda m: console.print(m)),
    )
    path = write_results("dashboard", results, out)
    if as_json:
        print_json(results)
        return
    for page, r in results["pages"].items():
        mark = "[green]ok[/]" if r["seconds"] <= budget else "[red]over budget[/]"
        console.print(f"{page:<12} {r['seconds']:7.3f} s  {mark}")
    console.print(f"results: {path}")
    if not results["all_within_budget"]:
        sys.exit(1)
