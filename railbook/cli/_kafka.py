"""``railbook publish`` and ``railbook serve`` (Kafka mode), and ``railbook bench kafka``."""

from __future__ import annotations

import gzip
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import click

from core.deadletter import DeadLetter
from ingest.kafka import RAW_SOURCES, Publisher
from railbook.cli import main
from railbook.cli._common import (
    CliContext,
    err_console,
    handle_errors,
    json_option,
    pass_ctx,
    print_json,
    read_input,
)
from railbook.serve import ServeOptions, Server, ServeStats

#: dead letters shown one by one before only counting
SHOW_DEAD = 20


def _bootstrap(ctx: CliContext, given: str | None) -> str:
    value = given or ctx.config.kafka.get("bootstrap")
    if not value:
        raise click.UsageError("no broker: pass --kafka HOST:PORT, set RAILBOOK_KAFKA, or [kafka] bootstrap")
    return str(value)


def namespace_option(fn: Any) -> Any:
    return click.option(
        "--namespace",
        default="",
        metavar="PREFIX",
        help="Prefix of every Railbook topic, e.g. 'team-a.' for team-a.railbook.events (default none).",
    )(fn)


def kafka_option(fn: Any) -> Any:
    return click.option(
        "--kafka",
        "bootstrap",
        envvar="RAILBOOK_KAFKA",
        metavar="HOST:PORT",
        help="Kafka bootstrap servers (env RAILBOOK_KAFKA; default [kafka] bootstrap in railbook.toml).",
    )(fn)


def raw_records(data: bytes, source: str) -> Iterator[bytes]:
    """Split an input into the original records that travel one per message on a raw topic.

    gzip is opened; a CloudTrail log file (``{"Records": [...]}``) and a JSON array give one
    message per element; any other JSON document is one message; otherwise JSON lines, one per
    line. Lines that are not JSON are still published: the consumer dead-letters them with the
    reason, which is the point of a raw topic.
    """
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError):
            yield data  # truncated gzip: the consumer's adapter dead-letters it with its reason
            return
    try:
        doc = json.loads(data)
    except ValueError:
        for line in data.splitlines():
            if line.strip():
                yield line.strip()
        return
    items: list[Any] | None = None
    if isinstance(doc, dict) and source == "cloudtrail" and isinstance(doc.get("Records"), list):
        items = doc["Records"]
    elif isinstance(doc, list):
        items = doc
    if items is None:
        yield data.strip()
        return
    for item in items:
        yield json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode()


@main.command()
@click.argument("files", nargs=-1, required=True)
@kafka_option
@click.option(
    "--source",
    default="auto",
    show_default=True,
    help="How to read the input (auto, event, cloudtrail, github, k8s-audit, claude-code, mcp).",
)
@click.option(
    "--raw",
    is_flag=True,
    help="Publish the original records to railbook.raw.<source> instead "
    "of canonical events (the consumer normalises them); needs --source.",
)
@click.option(
    "--topic", default=None, help="Topic for canonical events (default <namespace>railbook.events)."
)
@namespace_option
@click.option("--connect-timeout", default=5.0, show_default=True, help="Seconds to wait for the broker.")
@json_option
@pass_ctx
@handle_errors
def publish(
    ctx: CliContext,
    files: tuple[str, ...],
    bootstrap: str | None,
    source: str,
    raw: bool,
    topic: str | None,
    namespace: str,
    connect_timeout: float,
    as_json: bool,
) -> None:
    """Publish records from FILES (or - for stdin) to Kafka for `railbook serve`.

    By default each record is normalised here and published as a canonical event (Avro
    single-object encoding) to railbook.events, keyed by its actor; records that cannot be
    normalised are reported as dead letters and not published. With --raw the original
    JSON records go to railbook.raw.<source> and are normalised by the consumer.
    Exits 1 when nothing could be published.

    Example:

        railbook publish --kafka 127.0.0.1:9092 --source cloudtrail trail.json.gz

        railbook publish --kafka 127.0.0.1:9092 --raw --source k8s-audit audit.jsonl
    """
    server = _bootstrap(ctx, bootstrap)
    if raw and source not in RAW_SOURCES:
        raise click.UsageError(f"--raw needs --source one of {', '.join(RAW_SOURCES)} (got {source!r})")
    published = dead = shown = 0
    reasons: dict[str, int] = {}
    with Publisher(server, topic=topic, namespace=namespace, connect_timeout=connect_timeout) as pub:
        for name in files:
            data = read_input(name)
            origin = "stdin" if name == "-" else name
            if raw:
                for record in raw_records(data, source):
                    pub.publish_raw(source, record)
                    published += 1
                continue
            from ingest import normalise_bytes

            for item in normalise_bytes(
                data, source=None if source == "auto" else source, origin=origin, config=ctx.config
            ):
                if isinstance(item, DeadLetter):
                    dead += 1
                    reasons[item.reason] = reasons.get(item.reason, 0) + 1
                    if shown < SHOW_DEAD:
                        shown += 1
                        err_console.print(
                            f"[yellow]dead-lettered[/] {item.where}: {item.reason}: {item.detail}"
                        )
                    continue
                pub.publish(item)
                published += 1
        pub.flush()
    if dead > shown:
        err_console.print(f"[yellow]… {dead - shown} more dead letters[/]")
    doc = {
        "published": published,
        "dead_lettered": dead,
        "dead_letter_reasons": reasons,
        "topic": f"{namespace}railbook.raw.{source}" if raw else pub.topic,
        "bootstrap": server,
    }
    if as_json:
        print_json(doc)
    else:
        click.echo(f"published {published} to {doc['topic']} · dead-lettered {dead}")
    if published == 0:
        sys.exit(1)


def _topics(values: tuple[str, ...]) -> tuple[str, ...] | None:
    out: list[str] = []
    for v in values:
        out.extend(t.strip() for t in v.split(",") if t.strip())
    return tuple(out) or None


@main.command()
@kafka_option
@click.option("--group", default=None, help="Consumer group id (default [kafka] group, else 'railbook').")
@namespace_option
@click.option(
    "--topics",
    "topics",
    multiple=True,
    metavar="TOPIC[,TOPIC…]",
    help="Topics to consume (default: railbook.events and every railbook.raw.<source>).",
)
@click.option("--batch-size", default=5000, show_default=True, help="Most messages per ledger transaction.")
@click.option(
    "--max-message-bytes",
    default=4 << 20,
    show_default=True,
    help="Larger messages are dead-lettered as 'oversized'.",
)
@click.option(
    "--no-outputs",
    is_flag=True,
    help="Do not publish decisions, violations, dead letters and checkpoints to Kafka.",
)
@click.option(
    "--idle-exit",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Exit after this long without messages (drain a backlog and stop).",
)
@click.option("--max-messages", type=int, default=None, help="Exit after consuming this many messages.")
@click.option(
    "--instance-id",
    default=None,
    help="Static group membership: a restarted serve with the same id gets its partitions back at once.",
)
@click.option("--connect-timeout", default=10.0, show_default=True, help="Seconds to wait for the broker.")
@click.option(
    "--evaluate-ahead/--no-evaluate-ahead",
    default=None,
    help="Evaluate the next batch while the previous one is appended (two threads); "
    "default: on with the consumer process, off --in-process.",
)
@click.option(
    "--consumer-process/--in-process",
    default=True,
    show_default=True,
    help="Poll and decode Kafka in a second process (two cores) or in this one.",
)
@click.option(
    "--decide-in-consumer/--decide-in-serve",
    default=True,
    show_default=True,
    help="With the consumer process: it also decides every event no approval state can change "
    "(action not destructive); serve checks those and decides the rest, in order.",
)
@click.option(
    "--balance-decoding/--no-balance-decoding",
    default=True,
    show_default=True,
    help="With the consumer process: it leaves a share of each batch (up to half) for serve to "
    "decode, adjusted so that neither process waits for the other.",
)
@json_option
@pass_ctx
@handle_errors
def serve(
    ctx: CliContext,
    bootstrap: str | None,
    group: str | None,
    namespace: str,
    topics: tuple[str, ...],
    batch_size: int,
    max_message_bytes: int,
    no_outputs: bool,
    idle_exit: float | None,
    max_messages: int | None,
    instance_id: str | None,
    connect_timeout: float,
    evaluate_ahead: bool | None,
    consumer_process: bool,
    decide_in_consumer: bool,
    balance_decoding: bool,
    as_json: bool,
) -> None:
    """Consume Kafka into the ledger, exactly once, as a consumer-group member.

    Each polled batch is decoded (bad messages become dead letters naming their topic,
    partition and offset), evaluated and appended together with the consumed offsets in one
    ledger transaction; on start and on every rebalance the consumer seeks to the offsets in
    the ledger, so a crash never loses or duplicates an event. Polling and decoding run in a
    second process (--in-process keeps one), so the two halves use two cores. SIGTERM or
    Ctrl-C finishes the batch in flight and exits. Decisions, violations, dead letters and
    signed checkpoints are published to railbook.decisions, railbook.violations,
    railbook.deadletters and railbook.checkpoints.

    Example:

        railbook serve --kafka 127.0.0.1:9092 --group railbook
    """
    from railbook.serve import serve as run_serve

    config = ctx.config
    options = ServeOptions(
        bootstrap=_bootstrap(ctx, bootstrap),
        group=group or str(config.kafka.get("group", "railbook")),
        topics=_topics(topics),
        namespace=namespace,
        batch_size=batch_size,
        max_message_bytes=max_message_bytes,
        publish_outputs=not no_outputs,
        idle_exit=idle_exit,
        max_messages=max_messages,
        instance_id=instance_id or config.kafka.get("instance_id"),
        connect_timeout=connect_timeout,
        evaluate_ahead=evaluate_ahead,
        consumer_process=consumer_process,
        decide_in_consumer=decide_in_consumer,
        balance_decoding=balance_decoding,
    )
    last = [time.monotonic()]

    topics_used: list[str] = []

    def started(server: Server) -> None:
        topics_used.extend(server.topics)
        err_console.print(
            f"serving group [bold]{options.group}[/] from {options.bootstrap} into {config.ledger_path} "
            f"(tree size {server.ledger.size}); Ctrl-C to stop"
        )
        if err_console.is_terminal and not as_json:

            def progress(_summary: Any) -> None:
                if time.monotonic() - last[0] >= 2.0:
                    last[0] = time.monotonic()
                    err_console.print(f"  {server.stats.line()}")

            server.on_batch = progress

    stats: ServeStats = run_serve(config, options, on_start=started)
    if as_json:
        print_json({**stats.to_dict(), "group": options.group, "topics": list(topics_used)})
    else:
        click.echo(stats.line())


def _register_bench() -> None:
    # the benchmark lives beside the commands it measures; importing it adds `bench kafka`
    from railbook.cli import _kafka_bench  # noqa: F401


_register_bench()

__all__ = ["publish", "raw_records", "serve"]
