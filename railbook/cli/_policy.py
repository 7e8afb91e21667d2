"""``railbook policy validate|test|replay`` and ``railbook bench policy``."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from core.errors import PolicyError, PolicyTestError
from core.event import CanonicalEvent, event_from_dict
from policy import Decision, PolicyEngine, ReplayReport, replay, run_policy_tests
from railbook.cli import main
from railbook.cli._bench import bench, write_results
from railbook.cli._common import (
    TIME,
    CliContext,
    console,
    err_console,
    handle_errors,
    json_option,
    pass_ctx,
    print_json,
)

_DIR = click.Path(exists=True, file_okay=False, path_type=Path)


def _engine(ctx: CliContext, pack: Path | None) -> PolicyEngine:
    return PolicyEngine.load(ctx.config, pack_dir=pack)


@main.group()
def policy() -> None:
    """Validate, test and backtest Cedar policy packs.

    A pack is a directory of *.cedar policies, *.cedarschema files and an optional
    catalog.json. Without a directory, the pack of [policy] dir (railbook.toml) or the
    default pack shipped with Railbook is used.

    Example:

        railbook policy validate my-pack/
    """


@policy.command("validate")
@click.argument("directory", required=False, type=_DIR)
@json_option
@pass_ctx
@handle_errors
def validate_cmd(ctx: CliContext, directory: Path | None, as_json: bool) -> None:
    """Parse a pack and validate every policy against its Cedar schema.

    Exits non-zero, naming file, line and problem, when a policy does not parse, does not
    validate, or a forbid lacks its @id/@rail/@severity/@title annotations.

    Example:

        railbook policy validate policy/pack
    """
    engine = _engine(ctx, directory)
    pack = engine.pack
    by_rail = Counter(f"rail {i.annotations['rail']}" for i in pack.policies.values() if i.effect == "forbid")
    doc = {
        "ok": True,
        "directory": str(pack.directory),
        "version": pack.version,
        "files": list(pack.files),
        "policies": len(pack.policies),
        "forbids_by_rail": dict(sorted(by_rail.items())),
        "actions": len(pack.actions),
        "destructive_actions": sum(1 for g in pack.actions.values() if "Destructive" in g),
    }
    if as_json:
        print_json(doc)
        return
    console.print(f"[green]valid[/green] {pack.directory}  version {pack.version[:16]}")
    table = Table("id", "effect", "rail", "severity", "where", box=None)
    for info in pack.policies.values():
        a = info.annotations
        table.add_row(
            info.policy_id, info.effect, a.get("rail", ""), a.get("severity", ""), f"{info.file}:{info.line}"
        )
    console.print(table)
    console.print(f"{doc['actions']} catalog actions, {doc['destructive_actions']} destructive")


@policy.command("test")
@click.argument("tests", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--policies", "pack", type=_DIR, help="Pack to test (default: [policy] dir, else the built-in pack)."
)
@json_option
@pass_ctx
@handle_errors
def test_cmd(ctx: CliContext, tests: Path, pack: Path | None, as_json: bool) -> None:
    """Run policy unit tests (YAML or JSON: event in, expected decision and policy ids out).

    Exits 1 when any test fails and prints what differed for each failure.

    Example:

        railbook policy test policy/pack/tests --policies policy/pack
    """
    engine = _engine(ctx, pack)
    report = run_policy_tests(engine, tests)
    if as_json:
        print_json(report.to_dict())
    else:
        for failure in report.failures:
            err_console.print(failure.render(), markup=False)
        colour = "green" if report.ok else "red"
        console.print(
            f"[{colour}]{report.passed} passed, {len(report.failures)} failed[/{colour}] "
            f"in {len(report.files)} file(s); pack version {report.policy_version[:16]}"
        )
    if not report.ok:
        raise SystemExit(1)


def _pair(item: Any) -> tuple[CanonicalEvent, Decision]:
    if isinstance(item, tuple) and len(item) == 2:
        return item[0], item[1]
    event, decision = getattr(item, "event", None), getattr(item, "decision", None)
    if isinstance(event, CanonicalEvent) and isinstance(decision, Decision):
        return event, decision
    raise PolicyError(f"ledger record {item!r} has no (event, decision); the ledger API changed")


def _ledger_records(ctx: CliContext) -> Iterator[tuple[CanonicalEvent, Decision]]:
    try:
        from ledger import Ledger
    except ImportError as exc:
        raise PolicyError(
            f"cannot read the ledger ({exc}); use --records FILE with a JSON-lines export instead"
        ) from exc
    led = Ledger.open(ctx.config, read_only=True)
    try:
        for item in led.iter_records():
            yield _pair(item)
    finally:
        close = getattr(led, "close", None)
        if close is not None:
            close()


def _file_records(path: Path) -> Iterator[tuple[CanonicalEvent, Decision]]:
    with path.open(encoding="utf-8") as fh:
        for no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
                yield (
                    event_from_dict(doc["event"], where=f"{path}:{no}"),
                    Decision.from_dict(doc["decision"]),
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise PolicyTestError(
                    f"{path}:{no}: expected a JSON object with 'event' and 'decision' ({exc})"
                ) from exc


def _print_report(report: ReplayReport) -> None:
    console.print(
        f"re-evaluated [bold]{report.total}[/bold] decisions under {report.new_version[:16]} "
        f"(recorded under {', '.join(v[:12] for v in report.old_versions) or '-'}; "
        f"{report.skipped} before --since)"
    )
    table = Table("change", "count", box=None)
    table.add_row("[red]newly flagged[/red]", str(report.newly_flagged))
    table.add_row("[green]no longer flagged[/green]", str(report.no_longer_flagged))
    table.add_row("reasons changed", str(report.reasons_changed))
    table.add_row("unchanged", str(report.unchanged))
    console.print(table)
    for kind, items in report.examples.items():
        for c in items[:10]:
            console.print(
                f"  {kind.replace('_', ' ')}: {c.event_id} {c.actor} {c.action} {c.resource} "
                f"{c.old_outcome}{list(c.old_policies)} -> {c.new_outcome}{list(c.new_policies)}",
                markup=False,
            )
    if report.policies_added or report.policies_removed:
        console.print(
            f"policies newly firing: {report.policies_added}; no longer firing: {report.policies_removed}"
        )


@policy.command("replay")
@click.option("--policies", "pack", type=_DIR, required=True, help="The proposed pack to backtest.")
@click.option("--since", type=TIME, help="Re-evaluate only events at or after this time (RFC 3339).")
@click.option(
    "--records",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read (event, decision) records from a JSON-lines file instead of the ledger.",
)
@json_option
@pass_ctx
@handle_errors
def replay_cmd(
    ctx: CliContext, pack: Path, since: datetime | None, records: Path | None, as_json: bool
) -> None:
    """Backtest a proposed pack over the ledger's history; the ledger is not modified.

    Re-evaluates every recorded event in ledger order (approvals re-derived) and reports the
    decisions that would change: newly flagged, no longer flagged, different reasons.

    Example:

        railbook policy replay --policies my-pack/ --since 2026-01-01T00:00:00Z
    """
    engine = _engine(ctx, pack)
    source = _file_records(records) if records else _ledger_records(ctx)
    if as_json:
        report = replay(engine, source, since=since)
        print_json(report.to_dict())
        return
    with err_console.status("re-evaluating the ledger's history…"):
        report = replay(engine, source, since=since)
    _print_report(report)


@bench.command("policy")
@click.option("--events", default=4000, show_default=True, help="Events per mix.")
@click.option("--batch", default=1000, show_default=True, help="Events per evaluate() call.")
@click.option("--seconds", default=1.0, show_default=True, help="Minimum time per measurement.")
@click.option(
    "--out", type=click.Path(dir_okay=False), help="JSON results file (default bench-results/policy.json)."
)
@json_option
@pass_ctx
@handle_errors
def bench_policy(
    ctx: CliContext, events: int, batch: int, seconds: float, out: str | None, as_json: bool
) -> None:
    """Decisions per second: default pack vs a one-permit pack, single vs batched, with dedup.

    Example:

        railbook bench policy --events 20000 --out bench-results/policy.json
    """
    from policy._bench import run_benchmark

    with err_console.status("measuring policy decisions/s…"):
        results = run_benchmark(ctx.config, events=events, batch=batch, min_seconds=seconds)
    path = write_results("policy", results, out)
    if as_json:
        print_json(results)
        return
    table = Table("pack", "single/s", "batched distinct/s", "batched realistic/s", box=None)
    for name in ("default", "trivial"):
        r = results[name]
        table.add_row(
            name,
            f"{r['single_per_s']:,}",
            f"{r['batched_distinct_per_s']:,}",
            f"{r['batched_realistic_per_s']:,}",
        )
    console.print(table)
    console.print(f"ratios: {results['ratios']}")
    console.print(f"written to {path}")
