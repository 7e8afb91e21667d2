"""Shared helpers for the Kafka integration tests: topics, serve processes, reading a ledger back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]


def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, bootstrap_timeout_ms=10_000)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        admin.close()


def consume_all(bootstrap: str, topic: str, *, expect: int | None = None, timeout: float = 20.0) -> list[Any]:
    """Every message on ``topic`` (from the beginning), waiting up to ``timeout`` for ``expect``."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, bootstrap_timeout_ms=10_000
    )
    out: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        parts: set[int] = set()
        while not parts and time.monotonic() < deadline:
            parts = consumer.partitions_for_topic(topic) or set()
            if not parts:
                time.sleep(0.2)
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return out
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        while time.monotonic() < deadline:
            for msgs in consumer.poll(timeout_ms=300).values():
                out.extend(msgs)
            done = all(consumer.position(tp) >= end[tp] for tp in tps)
            if done and (expect is None or len(out) >= expect):
                break
            if done:
                end = consumer.end_offsets(tps)
    finally:
        consumer.close()
    return out


def railbook(ledger: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "railbook", "--ledger", str(ledger), *args]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("RAILBOOK_LOGLEVEL", "INFO")
    return env


def start_serve(ledger: Path, bootstrap: str, *args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    out = open(log or ledger.with_suffix(".serve.log"), "ab")  # noqa: SIM115 (owned by the process)
    return subprocess.Popen(
        railbook(ledger, "serve", "--kafka", bootstrap, *args),
        cwd=ROOT,
        env=_env(),
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def run_serve(ledger: Path, bootstrap: str, *args: str, timeout: float = 180.0) -> dict[str, Any]:
    """``railbook serve … --json`` to completion (pass --idle-exit); returns its JSON summary."""
    import json

    proc = subprocess.run(
        railbook(ledger, "serve", "--kafka", bootstrap, "--json", *args),
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"serve failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def run_cli(ledger: Path, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        railbook(ledger, *args), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout
    )


def ledger_event_ids(path: Path) -> list[str]:
    """Every event id in the ledger, in seq order (opens the file read-only: no writer may hold it)."""
    from core.config import load_config
    from ledger import Ledger

    with Ledger.open(load_config(None, ledger=str(path)), read_only=True) as led:
        return [e.event.event_id for e in led.iter_records()]


def ledger_dead_letters(path: Path) -> list[Any]:
    from core.config import load_config
    from ledger import Ledger

    with Ledger.open(load_config(None, ledger=str(path)), read_only=True) as led:
        return list(led.dead_letters(limit=100_000))


def ledger_offsets(path: Path, group: str) -> dict[tuple[str, int], int]:
    from core.config import load_config
    from ledger import Ledger

    with Ledger.open(load_config(None, ledger=str(path)), read_only=True) as led:
        return led.committed_offsets(group)


def publish_events(bootstrap: str, topic: str, events: Sequence[Any]) -> None:
    from ingest.kafka import Publisher

    with Publisher(bootstrap, topic=topic) as pub:
        pub.publish_many(events)
