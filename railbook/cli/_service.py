"""``railbook up`` (the embedded service) and ``railbook alerts`` (outbox listing, test sends)."""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from core.errors import LedgerLockedError, RailbookError
from railbook.cli import main
from railbook.cli._common import (
    CliContext,
    console,
    err_console,
    handle_errors,
    json_option,
    pass_ctx,
    print_json,
)

TOKEN_ENV = "RAILBOOK_TOKEN"


def _read_secret(value: str) -> str:
    return sys.stdin.readline().strip() if value == "-" else value


@main.command()
@click.option("--host", help="Address to listen on (default [server] host, 127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(0, 65535), help="Port (default [server] port, 8477; 0 = any free port)."
)
@click.option("--no-dashboard", is_flag=True, help="Do not start the Streamlit dashboard beside the service.")
@click.option("--dashboard-port", default=8501, show_default=True, help="Port for the dashboard.")
@click.option(
    "--no-alerts", is_flag=True, help="Do not run the alert delivery worker (alerts wait in the outbox)."
)
@click.option(
    "--log-format",
    type=click.Choice(["json", "text"]),
    help="Log lines as JSON objects (default, for a SIEM) or text (default [server] log_format).",
)
@click.option(
    "--print-token-hash",
    metavar="TOKEN",
    help="Print the SHA-256 of TOKEN for [server] tokens and exit ('-' reads it from stdin).",
)
@click.option("--new-token", is_flag=True, help="Mint a random API token, print it and its hash, and exit.")
@pass_ctx
@handle_errors
def up(
    ctx: CliContext,
    host: str | None,
    port: int | None,
    no_dashboard: bool,
    dashboard_port: int,
    no_alerts: bool,
    log_format: str | None,
    print_token_hash: str | None,
    new_token: bool,
) -> None:
    """Run Railbook as one process: HTTP intake, the gate, checkpoints, alerts and the dashboard.

    Endpoints: POST /v1/events, /v1/webhooks/github, /v1/sources/cloudtrail,
    /v1/sources/k8s-audit, the gate (/v1/gate, /v1/approvals, /v1/requests/{id}),
    GET /healthz, /readyz, /metrics, /v1/alerts. Every endpoint but GitHub's (signed) and
    the health/metrics ones needs 'Authorization: Bearer <token>'. With no [server] tokens
    configured, an admin token is minted once into service.token (0600) beside the ledger.

    Example:

        railbook up --port 8477

        railbook up --new-token
    """
    from railbook.service import hash_token
    from railbook.service import new_token as mint

    if print_token_hash is not None:
        click.echo(hash_token(_read_secret(print_token_hash)))
        return
    if new_token:
        token = mint()
        click.echo(f"token:  {token}")
        click.echo(f"sha256: {hash_token(token)}")
        click.echo("add to railbook.toml:")
        click.echo(
            f'  [[server.tokens]]\n  name = "ci"\n  sha256 = "{hash_token(token)}"\n  roles = ["ingest"]'
        )
        return
    from railbook.service.logs import configure_json_logging
    from railbook.service.runner import Service
    from railbook.service.settings import server_settings

    config = ctx.config
    settings = server_settings(config)
    if (log_format or settings.log_format) == "json":
        level_name = os.environ.get("RAILBOOK_LOGLEVEL", "INFO").upper()
        configure_json_logging(getattr(logging, level_name, logging.INFO))
    dashboard = not no_dashboard
    service = Service(
        config,
        host=host,
        port=port,
        dashboard=dashboard,
        dashboard_port=dashboard_port,
        alerts=not no_alerts,
        settings=settings,
    )
    server = service.prepare(freeze_heap=True)
    err_console.print(f"[bold]railbook up[/] serving on {service.url}  (ledger {config.ledger_path})")
    if service.token_created:
        err_console.print(
            f"minted an admin API token (shown once; kept in {service.token_path}, mode 0600):\n"
            f"  {service.token}"
        )
    elif service.token_path is not None:
        err_console.print(f"admin API token: in {service.token_path}")
    if service.dashboard_note:
        err_console.print(service.dashboard_note)
    if not service.app.state.gate_mounted:
        err_console.print("[yellow]gate endpoints not mounted[/] (railbook.gate unavailable)")
    try:
        server.run(sockets=[service._sock])
    finally:
        service.shutdown()


# --- railbook alerts ---------------------------------------------------------------------------------


def _service_token(config: Any) -> str | None:
    env = os.environ.get(TOKEN_ENV)
    if env:
        return env
    from railbook.service.settings import server_settings

    settings = server_settings(config)
    path = Path(settings.token_file) if settings.token_file else config.ledger_path.parent / "service.token"
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _from_service(
    config: Any, url: str | None, limit: int, status: str | None
) -> tuple[list[dict[str, Any]], Any]:
    import httpx

    from railbook.service.settings import server_settings

    settings = server_settings(config)
    base = url or f"http://{settings.host}:{settings.port}"
    token = _service_token(config)
    try:
        resp = httpx.get(
            f"{base}/v1/alerts",
            params={"limit": limit},
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        raise click.ClickException(
            f"the ledger is held by a running service, and {base} did not answer ({exc}); pass --service URL"
        ) from exc
    if resp.status_code != 200:
        raise click.ClickException(
            f"{base}/v1/alerts answered {resp.status_code}: {resp.text[:300]} "
            f"(set {TOKEN_ENV} to an admin token)"
        )
    doc = resp.json()
    rows = [r for r in doc["alerts"] if status is None or r.get("status") == status]
    return rows, doc.get("sinks", {})


@main.group(invoke_without_command=True)
@click.option("--limit", default=50, show_default=True, help="How many of the newest alerts to list.")
@click.option(
    "--status",
    type=click.Choice(["pending", "failed", "sent", "dropped"]),
    help="Only alerts in this delivery state (failed = the last attempt failed; it will be retried).",
)
@click.option("--service", "service_url", help="URL of a running `railbook up` (when it holds the ledger).")
@json_option
@click.pass_context
@handle_errors
def alerts(
    click_ctx: click.Context, limit: int, status: str | None, service_url: str | None, as_json: bool
) -> None:
    """List alerts in the outbox with their delivery state: sent, pending, or failed (with the error).

    Reads the ledger directly, or asks the running service when `railbook up` holds the ledger
    (with the admin token from service.token or RAILBOOK_TOKEN).

    Example:

        railbook alerts --status failed

        railbook alerts test slack
    """
    if click_ctx.invoked_subcommand is not None:
        return
    ctx = click_ctx.find_object(CliContext) or click_ctx.ensure_object(CliContext)
    config = ctx.config
    from ledger import Ledger
    from railbook.service.alert_view import recent_alerts

    sinks: Any = {}
    try:
        with Ledger.open(config, read_only=True) as ledger:
            rows = recent_alerts(ledger, limit, status=status)
    except LedgerLockedError:
        rows, sinks = _from_service(config, service_url, limit, status)
    if as_json:
        print_json({"alerts": rows, "sinks": sinks})
        return
    if not rows:
        console.print("no alerts" + (f" with status {status}" if status else ""))
        return
    from rich.table import Table

    table = Table(title="alerts (newest first)")
    for col in ("id", "created", "event", "severity", "rails", "status", "sinks", "tries", "last error"):
        table.add_column(col, overflow="fold")
    colours = {"sent": "green", "failed": "red", "pending": "yellow"}
    for r in rows:
        st = str(r.get("status"))
        table.add_row(
            str(r.get("alert_id")),
            str(r.get("created_at")),
            str(r.get("event_id")),
            str(r.get("severity")),
            ",".join(map(str, r.get("rails") or [])),
            f"[{colours.get(st, 'white')}]{st}[/]",
            str(r.get("sink") or ""),
            str(r.get("attempts")),
            str(r.get("last_error") or "")[:120],
        )
    console.print(table)
    for name, state in (sinks or {}).items():
        if state.get("attempts"):
            err_console.print(
                f"[red]sink {name}[/]: {state['attempts']} failed attempts, "
                f"retry in {state['retry_in']:.0f}s: "
                f"{state.get('last_error')}"
            )


@alerts.command("test")
@click.argument("sink")
@json_option
@pass_ctx
@handle_errors
def alerts_test(ctx: CliContext, sink: str, as_json: bool) -> None:
    """Send a test alert to SINK (a [[alerts.sinks]] name, or 'log') and report what happened.

    The alert is marked test=true and carries a fresh idempotency key; nothing is written
    to the ledger.

    Example:

        railbook alerts test secops
    """
    import uuid

    from alerts import Alert, OutboxAlert, alerts_settings, build_sink

    settings = alerts_settings(ctx.config)
    specs = {s.name: s for s in settings.effective_sinks()}
    if sink not in specs:
        raise click.ClickException(
            f"no alert sink named {sink!r}; configured: {', '.join(specs) or '(none)'} "
            "(add one under [[alerts.sinks]] in railbook.toml)"
        )
    now = datetime.now(UTC)
    alert = Alert(
        idempotency_key=f"test-{uuid.uuid4()}",
        first=OutboxAlert(
            alert_id=0,
            seq=0,
            created_at=now,
            event_id="test:railbook-alerts-test",
            rails=(1,),
            severity="info",
            policies=("railbook-test",),
            titles=("Test alert from `railbook alerts test`",),
            actor="agent:railbook-test",
            actor_kind="agent",
            on_behalf_of="you@example.com",
            action="test:Send",
            resource="railbook://alerts/test",
            environment="dev",
            source="railbook",
            occurred_at=now,
        ),
        test=True,
    )
    target = build_sink(specs[sink])
    try:
        target.send(alert)
    except RailbookError as exc:
        if as_json:
            print_json(
                {"sink": sink, "ok": False, "error": str(exc), "idempotency_key": alert.idempotency_key}
            )
            sys.exit(1)
        raise
    finally:
        target.close()
    if as_json:
        print_json({"sink": sink, "ok": True, "idempotency_key": alert.idempotency_key})
    else:
        console.print(
            f"[green]sent[/] test alert to {sink} ({specs[sink].type}), key {alert.idempotency_key}"
        )
