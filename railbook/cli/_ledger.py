"""``railbook verify``, ``prove``, ``evidence``, ``verify-evidence``, ``keygen`` and ``bench ledger``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from core.errors import RailbookError
from core.event import parse_time
from ledger import Ledger, build_evidence, keygen, verify_evidence, verify_ledger
from ledger import prove as prove_event
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
    "--against",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An earlier copy of the checkpoints file, held elsewhere: catches a rewritten database.",
)
@click.option(
    "--segments",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Also verify the published Parquet segments in DIR against the signed checkpoints.",
)
@click.option(
    "--key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Trusted verifier (public) key; default: the ledger's signing.key.pub.",
)
@json_option
@pass_ctx
@handle_errors
def verify(
    ctx: CliContext, against: Path | None, segments: Path | None, key: Path | None, as_json: bool
) -> None:
    """Re-derive every leaf, chain hash, tree node, checkpoint root and signature of the ledger.

    Exits 0 only when everything holds; otherwise names the first bad sequence number and what
    is wrong (modified, deleted, inserted, reordered, duplicate-event, bad-signature,
    root-mismatch, inconsistent-checkpoints). The ledger must not be open in another process.

    Example:

        railbook verify --against /mnt/auditor/checkpoints.log --segments railbook-data/segments
    """
    with Progress(
        TextColumn("verifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=as_json,
    ) as bar:
        task = bar.add_task("entries", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        report = verify_ledger(ctx.config, against=against, segments=segments, progress=progress, key=key)
    if as_json:
        print_json(report.to_dict())
    else:
        cp = report.latest_checkpoint
        console.print(
            f"entries: {report.tree_size}  checkpoints: {report.checkpoints_checked}"
            f"  external: {report.external_checkpoints_checked}  segments: {report.segments_checked}"
            f"  ({report.seconds:.2f}s)"
        )
        if cp is not None:
            console.print(f"latest checkpoint: tree_size {cp.tree_size} root {cp.root_hash.hex()}")
        if report.unsigned_entries:
            console.print(
                f"[yellow]{report.unsigned_entries} newest entries are not yet covered by a checkpoint[/]"
            )
        if report.ok:
            console.print("[green]OK[/]: every entry, node, checkpoint and signature holds")
    if not report.ok:
        first = report.first
        assert first is not None
        where = f"seq {first.seq}" if first.seq is not None else "checkpoints"
        err_console.print(f"[red]FAILED[/] first problem at {where}: {first.kind}: {first.detail}")
        for p in report.problems[1:10]:
            err_console.print(f"  also: {p.kind} at {p.seq}: {p.detail}")
        sys.exit(1)


@main.command("prove")
@click.argument("event_id")
@pass_ctx
@handle_errors
def prove_cmd(ctx: CliContext, event_id: str) -> None:
    """Print the inclusion proof of EVENT_ID against the latest signed checkpoint, as JSON.

    Example:

        railbook prove cloudtrail:3b1c…
    """
    with Ledger.open(ctx.config, point_reads=True) as led:  # proofs: ledger.configure_connection
        print_json(prove_event(led, event_id))


def _when(value: str | None, flag: str) -> Any:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(
            f"{value!r} is not a time such as 2026-03-01T00:00:00Z ({exc})", param_hint=flag
        ) from None


@main.command()
@click.argument("event_id", required=False)
@click.option("--commit", help="Evidence for a git commit (full sha or a prefix of 7+).")
@click.option("--pull-request", help="Evidence for a pull request URL.")
@click.option("--resource", help="Evidence for a resource id.")
@click.option("--since", help="Start of a time range (RFC 3339).")
@click.option("--until", help="End of a time range (RFC 3339, exclusive).")
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Pack file to write."
)
@pass_ctx
@handle_errors
def evidence(
    ctx: CliContext,
    event_id: str | None,
    commit: str | None,
    pull_request: str | None,
    resource: str | None,
    since: str | None,
    until: str | None,
    out: Path,
) -> None:
    """Write an evidence pack: entries, inclusion proofs, signed checkpoint, public key, summary.

    The pack verifies offline with 'railbook verify-evidence' and nothing else.

    Example:

        railbook evidence --pull-request https://github.com/acme/payments/pull/42 --out pr42.json
    """
    if not any((event_id, commit, pull_request, resource, since, until)):
        raise click.UsageError(
            "give an EVENT_ID or one of --commit, --pull-request, --resource, --since/--until"
        )
    with Ledger.open(ctx.config, point_reads=True) as led:  # proofs: ledger.configure_connection
        pack = build_evidence(
            led,
            event_id=event_id,
            commit=commit,
            pull_request=pull_request,
            resource=resource,
            since=_when(since, "--since"),
            until=_when(until, "--until"),
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(pack, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    err_console.print(
        f"wrote {out}: {len(pack['entries'])} entries, checkpoint tree_size "
        f"{pack['checkpoint']['note'].splitlines()[1]}"
    )
    for line in pack["summary"][:20]:
        err_console.print(f"  {line}")


@main.command("verify-evidence")
@click.argument("pack", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The ledger's verifier key, obtained separately; without it the pack's own key is used.",
)
@json_option
@handle_errors
def verify_evidence_cmd(pack: Path, key: Path | None, as_json: bool) -> None:
    """Check an evidence pack offline: leaf hashes, inclusion proofs, checkpoint signature.

    Needs nothing but the pack (and, to rule out a forged pack, the ledger's public key given
    separately with --key). Exits 1 with the reason when anything does not hold.

    Example:

        railbook verify-evidence pr42.json --key railbook-ledger.pub
    """
    report = verify_evidence(pack, trusted_key=key)
    if as_json:
        print_json(report.to_dict())
    elif report.ok:
        console.print(
            f"[green]OK[/]: {report.entries_verified} entries are in the log at tree_size "
            f"{report.tree_size} (root {report.root_hash}), signed by {report.key}"
        )
        if not report.key_trusted:
            console.print(
                "[yellow]the key came from the pack itself: compare it with the operator's published key "
                "(or pass --key)[/]"
            )
        for line in report.summary:
            console.print(f"  {line}")
    if not report.ok:
        raise click.ClickException(f"evidence pack {pack} does not verify: {report.reason}")


@main.command("keygen")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Private key path (default: the configured [ledger] key); the public key goes to OUT.pub.",
)
@click.option("--name", help="Key name (default: the ledger origin).")
@pass_ctx
@handle_errors
def keygen_cmd(ctx: CliContext, out: Path | None, name: str | None) -> None:
    """Create the Ed25519 checkpoint signing key (0600) and its signed-note verifier key.

    Example:

        railbook keygen --out /etc/railbook/signing.key
    """
    path = out or ctx.config.key_path
    verifier = keygen(path, name or ctx.config.ledger.origin)
    console.print(f"private key: {path} (mode 600)\npublic key:  {path}.pub\n{verifier.encode()}")


@bench.command("ledger")
@click.option(
    "--entries", default=200_000, show_default=True, help="Entries to append (1000000 takes a few minutes)."
)
@click.option("--batch", default=5000, show_default=True, help="Entries per append transaction.")
@click.option(
    "--synthetic-size",
    default=10_000_000,
    show_default=True,
    help="Also measure proofs over a synthetic tree of this many leaves (0: skip; ~40 s and ~1.4 GB at 10M).",
)
@click.option("--samples", default=200, show_default=True, help="Proofs timed per kind and size.")
@click.option("--dir", "workdir", type=click.Path(file_okay=False, path_type=Path), help="Scratch directory.")
@click.option("--out", help="Results JSON (default bench-results/ledger.json).")
@json_option
def bench_ledger(
    entries: int,
    batch: int,
    synthetic_size: int,
    samples: int,
    workdir: Path | None,
    out: str | None,
    as_json: bool,
) -> None:
    """Measure issue 4's speed targets and print each with PASS / MISS.

    Append throughput against a same-run reference (SHA-256 + DuckDB insert of the rows the
    ledger stores, made beforehand, into the ledger's own table; a 3-column insert is reported
    too), full verification throughput, inclusion/consistency proof latency at the appended size
    and at 10M (a synthetic tree: see the results' "source"), and RSS while the ledger grows.

    Example:

        railbook bench ledger --entries 1000000
    """
    from ledger.bench import run_ledger_bench

    def say(msg: str) -> None:
        if not as_json:
            err_console.print(f"[dim]{msg}[/]")

    try:
        results = run_ledger_bench(
            entries, batch, workdir, synthetic_size=synthetic_size, samples=samples, progress=say
        )
    except RailbookError as exc:
        raise click.ClickException(exc.diagnostics()) from exc
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    path = write_results("ledger", results, out)
    if as_json:
        print_json(results)
        return
    ref = results["reference"]
    console.print(
        f"reference (same run): raw SHA-256 {ref['raw_sha256_per_s']:,}/s; SHA-256 + DuckDB insert "
        f"{ref['hash_insert_per_s']:,}/s (the ledger's rows; {ref['hash_insert_narrow_per_s']:,}/s into 3 "
        f"columns; {ref['entry_bytes_avg']} B entries, batch {results['batch']:,})"
    )
    console.print(
        f"append {results['append']['per_s']:,}/s; verify {results['verify']['per_s']:,}/s "
        f"({results['entries']:,} entries, ledger {results['append']['ledger_file_mb']} MB)"
    )
    for size, p in results["proofs"].items():
        console.print(
            f"proofs at {int(size):,}: inclusion p50 {p['inclusion_ms_p50']} ms "
            f"p99 {p['inclusion_ms_p99']} ms; "
            f"consistency p50 {p['consistency_ms_p50']} ms p99 {p['consistency_ms_p99']} ms  [{p['source']}]"
        )
    console.print(
        "rss MB at size: " + ", ".join(f"{s:,}: {mb}" for s, mb in results["append"]["rss_mb_at_size"])
    )
    for t in results["targets"]:
        colour = {"PASS": "green", "MISS": "red"}.get(t["status"], "yellow")
        console.print(
            f"[{colour}]{t['status']:>12}[/] {t['target']:<22} measured {t['measured']}  "
            f"(want {t['wanted']}; {t['how']})"
        )
    console.print(
        f"load average {results['loadavg_1m_at_start']} -> {results['loadavg_1m_at_end']} on "
        f"{results['cpus']} CPUs; written to {path}"
    )
