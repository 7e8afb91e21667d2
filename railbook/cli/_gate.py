"""``railbook gate`` (the Claude Code PreToolUse hook), ``railbook approve``, ``railbook bench gate``."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Literal

import click

from core.errors import LedgerLockedError, RailbookError
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
from railbook.gate import (
    Gate,
    GateAnswer,
    GateClient,
    GateSettings,
    GateUnreachableError,
    gate_settings,
    proposal_from_hook,
    run_hook,
    stamp_defaults,
)


def _token(settings: GateSettings) -> str | None:
    return os.environ.get(settings.token_env) or None


@main.command("gate")
@click.option("--url", help="The gate's base URL (default [gate] url, env RAILBOOK_GATE_URL).")
@click.option(
    "--in-process",
    is_flag=True,
    help="Decide here, against the local ledger, instead of asking a running `railbook up`.",
)
@click.option("--timeout", type=float, help="Seconds to wait for the gate (default [gate] timeout_seconds).")
@pass_ctx
def gate_cmd(ctx: CliContext, url: str | None, in_process: bool, timeout: float | None) -> None:
    """Claude Code PreToolUse hook: read the hook payload on stdin, ask the gate, print the decision.

    Prints the documented hook output ({"hookSpecificOutput": {"permissionDecision": allow|deny|ask,
    "permissionDecisionReason": ...}}) and exits 0; exits 2 (which blocks the tool call) when it
    cannot make sense of its input. When the gate is unreachable it fails closed for destructive
    actions and open for reads ([gate] on_unreachable_*), and says so in the reason. The agent
    identity, the human it acts for and the task come from RAILBOOK_AGENT_ID,
    RAILBOOK_ON_BEHALF_OF and RAILBOOK_TASK; the API token from RAILBOOK_TOKEN.

    Example:

        echo '{"session_id":"s1","hook_event_name":"PreToolUse","tool_name":"Bash",
               "tool_input":{"command":"psql -h staging-db.internal -c \\"DROP TABLE users\\""},
               "tool_use_id":"toolu_1"}' | railbook gate --url http://127.0.0.1:8477
    """
    from ingest import stamp_hook_payload

    try:
        config = ctx.config
        settings = gate_settings(config)
    except RailbookError as exc:
        sys.stderr.write(f"railbook gate: {exc.diagnostics()}; blocking the tool call\n")
        sys.exit(2)
    if timeout is not None:
        settings = settings.model_copy(update={"timeout_seconds": timeout})
    where = "the local ledger (--in-process)" if in_process else (url or settings.url)

    def prepare(payload: dict[str, Any]) -> dict[str, Any]:
        return stamp_defaults(stamp_hook_payload(payload), settings)

    def ask_http(payload: dict[str, Any]) -> GateAnswer:
        with GateClient(url or settings.url, _token(settings), timeout=settings.timeout_seconds) as client:
            return client.ask_hook(prepare(payload))

    def ask_local(payload: dict[str, Any]) -> GateAnswer:
        from railbook.wiring import open_pipeline

        proposal = proposal_from_hook(prepare(payload), config)
        try:
            with open_pipeline(config) as pipeline:
                return Gate.in_process(pipeline, settings=settings).ask(proposal)
        except LedgerLockedError as exc:
            raise GateUnreachableError(
                f"the ledger {config.ledger_path} is held by a running service; ask it with --url instead"
            ) from exc

    result = run_hook(
        sys.stdin.read(),
        ask=ask_local if in_process else ask_http,
        settings=settings,
        config=config,
        where=where,
    )
    if result.output is not None:
        sys.stdout.write(json.dumps(result.output) + "\n")
    if result.stderr:
        sys.stderr.write(result.stderr + "\n")
    sys.stdout.flush()
    sys.exit(result.exit_code)


@main.command("approve")
@click.argument("request_id", required=False)
@click.option("--deny", is_flag=True, help="Deny the request instead of granting it.")
@click.option(
    "--as",
    "approver",
    help="Approve as this person (in-process only; over HTTP the approver is the token's actor).",
)
@click.option("--url", help="The gate's base URL (default [gate] url, env RAILBOOK_GATE_URL).")
@click.option("--in-process", is_flag=True, help="Record the approval in the local ledger (needs --as).")
@click.option(
    "--expires-in", type=float, help="Seconds the grant stays valid (default [policy] approval_ttl_seconds)."
)
@click.option("--digest", help="The command digest you reviewed; refused if the request names another one.")
@click.option("--note", help="Why you approve (kept in the ledger).")
@click.option("--status", "show_status", is_flag=True, help="Only show where the request stands.")
@click.option("--pending", is_flag=True, help="List the requests waiting for an approver.")
@json_option
@pass_ctx
@handle_errors
def approve_cmd(
    ctx: CliContext,
    request_id: str | None,
    deny: bool,
    approver: str | None,
    url: str | None,
    in_process: bool,
    expires_in: float | None,
    digest: str | None,
    note: str | None,
    show_status: bool,
    pending: bool,
    as_json: bool,
) -> None:
    """Grant (or --deny) a gate request, as a human approver.

    Over HTTP (default) the approver is the actor bound to your API token (RAILBOOK_TOKEN, role
    approver). Refused: approving your own action, an action of an agent you instructed, a request
    already answered, used or expired, and a digest that is not the request's.

    Example:

        RAILBOOK_TOKEN=$ALICE_TOKEN railbook approve req-3f9a2b1c4d5e6f70
        railbook approve --pending
        railbook approve req-3f9a2b1c4d5e6f70 --in-process --as alice@example.com
    """
    if not pending and not request_id:
        raise click.UsageError("give a REQUEST_ID (or --pending to list the waiting requests)")
    if approver and url:
        raise click.UsageError("--as works in-process only: over HTTP the approver is your token's actor")
    config = ctx.config
    settings = gate_settings(config)
    local = in_process or approver is not None
    decision: Literal["grant", "deny"] = "deny" if deny else "grant"
    if local:
        from railbook.wiring import open_pipeline

        with open_pipeline(config) as pipeline:
            gate = Gate.in_process(pipeline, settings=settings)
            if pending:
                _print_pending([s.to_dict() for s in gate.pending()], as_json)
                return
            assert request_id is not None
            if show_status:
                _print_status(gate.status(request_id).to_dict(), as_json)
                return
            if not approver:
                raise click.UsageError("in-process approvals need --as APPROVER (who you are)")
            receipt = gate.approve(
                request_id, approver=approver, decision=decision, expires_in=expires_in, digest=digest,
                note=note, via="cli",
            )  # fmt: skip
    else:
        token = _token(settings)
        if not token:
            raise click.UsageError(
                f"set {settings.token_env} to your approver API token (or use --in-process --as)"
            )
        with GateClient(url or settings.url, token, timeout=settings.timeout_seconds) as client:
            if pending:
                _print_pending([s.to_dict() for s in client.pending()], as_json)
                return
            assert request_id is not None
            if show_status:
                _print_status(client.status(request_id).to_dict(), as_json)
                return
            receipt = client.approve(
                request_id, decision=decision, expires_in=expires_in, digest=digest, note=note
            )
    doc = receipt.to_dict()
    if as_json:
        print_json(doc)
        return
    verb = "granted" if decision == "grant" else "denied"
    s = receipt.scope
    console.print(
        f"[bold]{verb}[/bold] {receipt.request_id} as {receipt.approver} (ledger entry {receipt.seq})"
    )
    console.print(f"  scope: {s.actor} · {s.action} · {s.resource} ({s.environment})")
    if s.digest:
        console.print(f"  digest: {s.digest}")
    if receipt.expires_at and decision == "grant":
        console.print(f"  expires: {doc['expires_at']} · covers one run of exactly that command")


def _print_status(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(doc)
        return
    console.print(f"[bold]{doc['request_id']}[/bold]: {doc['status']} (gate answered {doc['gate_decision']})")
    for key in ("actor", "on_behalf_of", "action", "resource", "environment", "digest", "requested_at",
                "approver", "decided_at", "expires_at"):  # fmt: skip
        if doc.get(key):
            console.print(f"  {key}: {doc[key]}")
    for r in doc.get("reasons", []):
        console.print(f"  reason: {r['title']} [{r['policy_id']}]")
    if doc.get("used_by"):
        console.print(f"  used by: {', '.join(doc['used_by'])}")


def _print_pending(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json({"requests": rows})
        return
    if not rows:
        err_console.print("no requests waiting for an approver")
        return
    for r in rows:
        console.print(
            f"{r['request_id']}  {r['requested_at']}  {r['actor']} (for {r['on_behalf_of']})  "
            f"{r['action']} on {r['resource']} ({r['environment']})"
        )


@bench.command("gate")
@click.option(
    "--requests", "n", type=int, default=300, show_default=True, help="Gate requests per transport."
)
@click.option("--no-http", is_flag=True, help="Skip the HTTP measurement (in-process only).")
@click.option("--out", help="JSON results file (default bench-results/gate.json).")
@json_option
@handle_errors
def bench_gate(n: int, no_http: bool, out: str | None, as_json: bool) -> None:
    """Gate latency, p50/p99, in-process and over HTTP on loopback, including the ledger write.

    A bare cedarpy decision with pre-parsed handles, in the same run, is the reference. Runs on a
    fresh ledger in a temporary directory. Target: p99 < 10 ms over HTTP.

    Example:

        railbook bench gate --requests 1000 --out bench-results/gate.json
    """
    from railbook.gate._bench import run_gate_bench

    with err_console.status("benchmarking the gate…"):
        results = run_gate_bench(n, http=not no_http)
    path = write_results("gate", results, out)
    if as_json:
        print_json(results)
        return
    for name, row in results["latency_ms"].items():
        console.print(
            f"{name:<28} p50 {row['p50']:7.3f} ms   p99 {row['p99']:7.3f} ms   mean {row['mean']:7.3f} ms"
            f"   (n={row['n']})"
        )
    for key, value in results.get("ratios", {}).items():
        console.print(f"{key:<28} {value:.1f}x")
    target = results.get("target_met")
    if target is not None:
        console.print(f"HTTP p99 < 10 ms: {'yes' if target else 'NO'}")
    err_console.print(f"wrote {path}")
