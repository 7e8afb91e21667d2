"""Kill ``railbook serve`` with SIGKILL at random points while it consumes; restart; every event is
in the ledger exactly once and ``railbook verify`` passes."""

from __future__ import annotations

import os
import random
import re
import signal
import time
from pathlib import Path

import pytest

from railbook.cli._kafka_bench import mixed_stream
from tests.integration.kafka.helpers import (
    create_topic,
    ledger_event_ids,
    publish_events,
    run_cli,
    run_serve,
    start_serve,
)

pytestmark = pytest.mark.integration

TRIALS = int(os.environ.get("RAILBOOK_SIGKILL_TRIALS", "5"))
EVENTS = int(os.environ.get("RAILBOOK_SIGKILL_EVENTS", "8000"))


def _consumer_process_exits(log: Path) -> None:
    """serve's consumer process (its pid is in the start line) must not outlive a SIGKILLed serve."""
    found = re.findall(r"serve started .* consumer=process (\d+)", log.read_text())
    if not found:
        return
    pid = int(found[-1])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    pytest.fail(f"the consumer process {pid} outlived serve by 20 s")


@pytest.mark.parametrize("mode", ["--no-evaluate-ahead", "--evaluate-ahead", "--in-process"])
def test_sigkill_at_random_points_loses_and_duplicates_nothing(
    kafka_broker: str, kafka_ns: str, tmp_path: Path, mode: str
) -> None:
    rng = random.Random(int(os.environ.get("RAILBOOK_SIGKILL_SEED", str(time.time_ns()))))
    topic = f"{kafka_ns}railbook.events"
    group = f"{kafka_ns}g"
    create_topic(kafka_broker, topic, 2)
    events = mixed_stream(EVENTS, run=kafka_ns)
    publish_events(kafka_broker, topic, events)
    ledger = tmp_path / "ledger.duckdb"
    sizes: list[int] = []
    log = ledger.with_suffix(".serve.log")
    for trial in range(TRIALS):
        started = log.read_text().count("serve started") if log.exists() else 0
        proc = start_serve(
            ledger,
            kafka_broker,
            "--group",
            group,
            "--topics",
            topic,
            "--batch-size",
            "100",
            "--instance-id",
            "serve-1",
            mode,
        )
        # wait until it consumes (imports, policy pack, ledger, group join take a few seconds on a
        # busy machine), then kill it at a random point of its consumption
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if log.exists() and log.read_text().count("serve started") > started:
                break
            time.sleep(0.05)
        time.sleep(rng.uniform(0.2, 2.5))
        if proc.poll() is not None:
            pytest.fail(f"serve exited early ({proc.returncode}):\n{log.read_text()[-4000:]}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        _consumer_process_exits(log)
        ids = ledger_event_ids(ledger) if ledger.exists() else []
        assert len(ids) == len(set(ids)), f"trial {trial}: duplicate entries after SIGKILL"
        sizes.append(len(ids))
        # half the time, publish a few already-consumed events again (a producer retrying)
        if ids and rng.random() < 0.5:
            again = {e.event_id: e for e in events}
            publish_events(kafka_broker, topic, [again[i] for i in rng.sample(ids, min(20, len(ids)))])
        if len(ids) == EVENTS:
            break
    assert any(0 < s < EVENTS for s in sizes), f"no kill landed mid-stream: sizes {sizes}"
    assert sizes == sorted(sizes), f"the ledger shrank between kills: {sizes}"
    doc = run_serve(
        ledger,
        kafka_broker,
        "--group",
        group,
        "--topics",
        topic,
        "--idle-exit",
        "4",
        "--instance-id",
        "serve-1",
        mode,
    )
    ids = ledger_event_ids(ledger)
    assert len(ids) == len(set(ids)) == EVENTS, (len(ids), len(set(ids)), doc, sizes)
    assert set(ids) == {e.event_id for e in events}
    verify = run_cli(ledger, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    print(f"ledger sizes after each SIGKILL: {sizes}")
