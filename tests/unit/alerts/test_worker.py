from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts import Alert, AlertsSettings, DeliveryWorker, OutboxAlert
from core.errors import AlertError

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class MemoryOutbox:
    def __init__(self) -> None:
        self.rows: dict[int, OutboxAlert] = {}
        self.status: dict[int, str] = {}
        self.marks: list[tuple[tuple[int, ...], str, str]] = []

    def add(
        self,
        alert_id: int,
        *,
        actor: str = "agent:a",
        resource: str = "db://prod/x",
        policy: str = "rail1-agent-in-prod",
        at: datetime = T0,
    ) -> None:
        self.rows[alert_id] = OutboxAlert(
            alert_id=alert_id,
            seq=alert_id,
            created_at=at,
            event_id=f"e{alert_id}",
            rails=(1,),
            severity="high",
            policies=(policy,),
            titles=("Agent in prod",),
            actor=actor,
            resource=resource,
        )
        self.status[alert_id] = "pending"

    def pending(self, limit: int) -> list[OutboxAlert]:
        ids = sorted(i for i, s in self.status.items() if s in ("pending", "failed"))[:limit]
        return [self.rows[i] for i in ids]

    def mark(self, alert_ids: Sequence[int], sink: str, status: str, error: str | None = None) -> None:
        self.marks.append((tuple(alert_ids), sink, status))
        for i in alert_ids:
            self.status[i] = status


class FlakySink:
    kind = "test"

    def __init__(self, name: str = "hook", down: int = 0) -> None:
        self.name = name
        self.down = down
        self.received: list[Alert] = []
        self.attempts = 0

    def send(self, alert: Alert) -> None:
        self.attempts += 1
        if self.down > 0:
            self.down -= 1
            raise AlertError("receiver down")
        self.received.append(alert)

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _worker(
    outbox: MemoryOutbox,
    *sinks: FlakySink,
    window: float = 0.0,
    now: datetime = T0,
    clock: Clock | None = None,
) -> DeliveryWorker:
    return DeliveryWorker(
        outbox,
        list(sinks),
        AlertsSettings(group_window_seconds=window, backoff_base_seconds=1, backoff_max_seconds=8),
        now=lambda: now,
        monotonic=clock or Clock(),
        jitter=lambda: 1.0,
    )


def test_delivers_in_order_and_marks_sent() -> None:
    ob = MemoryOutbox()
    for i in (1, 2, 3):
        ob.add(i, actor=f"agent:{i}")
    sink = FlakySink()
    w = _worker(ob, sink)
    assert w.run_once() == 3
    assert [a.first.alert_id for a in sink.received] == [1, 2, 3]
    assert all(s == "sent" for s in ob.status.values())
    assert w.run_once() == 0


def test_sink_down_delays_never_loses_and_keys_are_stable() -> None:
    ob = MemoryOutbox()
    for i in (1, 2, 3):
        ob.add(i, actor=f"agent:{i}")
    sink = FlakySink(down=3)
    clock = Clock()
    w = _worker(ob, sink, clock=clock)
    keys_seen: list[str] = []
    for _ in range(20):
        w.run_once()
        clock.t += 100  # past any backoff
    keys_seen = [a.idempotency_key for a in sink.received]
    assert [a.first.alert_id for a in sink.received] == [1, 2, 3]
    assert len(set(keys_seen)) == 3
    assert sink.attempts == 6
    assert ("failed" in {m[2] for m in ob.marks}) and all(s == "sent" for s in ob.status.values())


def test_backoff_is_exponential_and_capped() -> None:
    ob = MemoryOutbox()
    ob.add(1)
    sink = FlakySink(down=100)
    clock = Clock()
    w = _worker(ob, sink, clock=clock)
    delays = []
    for _ in range(6):
        w.run_once()
        delays.append(w.status()["hook"]["retry_in"])
        clock.t += delays[-1]
    assert delays == [1, 2, 4, 8, 8, 8]
    before = sink.attempts
    w.run_once()  # not due yet (clock only advanced to the due time of the previous)
    clock.t += 0.5
    assert sink.attempts in (before, before + 1)


def test_one_sink_down_does_not_block_another_and_nothing_marked_until_both() -> None:
    ob = MemoryOutbox()
    ob.add(1)
    ok, down = FlakySink("ok"), FlakySink("down", down=2)
    clock = Clock()
    w = _worker(ob, ok, down, clock=clock)
    w.run_once()
    assert len(ok.received) == 1 and ob.status[1] == "failed"
    ob.add(2, actor="agent:other")
    w.run_once()
    assert [a.first.alert_id for a in ok.received] == [1, 2]  # not re-sent, not blocked
    for _ in range(5):
        clock.t += 100
        w.run_once()
    assert [a.first.alert_id for a in down.received] == [1, 2]
    assert len(ok.received) == 2
    assert ob.status == {1: "sent", 2: "sent"}


def test_pending_repeats_are_grouped_with_a_count() -> None:
    ob = MemoryOutbox()
    for i in range(1, 6):
        ob.add(i, at=T0 + timedelta(seconds=i))
    ob.add(6, actor="agent:other", at=T0 + timedelta(seconds=6))
    sink = FlakySink()
    w = _worker(ob, sink, window=60, now=T0 + timedelta(seconds=10))
    w.run_once()
    assert [(a.first.alert_id, a.count) for a in sink.received] == [(1, 5), (6, 1)]
    assert sink.received[0].alert_ids == (1, 2, 3, 4, 5)
    assert all(s == "sent" for s in ob.status.values())


def test_repeats_after_the_first_delivery_are_held_until_the_window_closes() -> None:
    ob = MemoryOutbox()
    ob.add(1, at=T0)
    sink = FlakySink()
    now = [T0 + timedelta(seconds=1)]
    w = DeliveryWorker(ob, [sink], AlertsSettings(group_window_seconds=60), now=lambda: now[0])
    w.run_once()
    ob.add(2, at=T0 + timedelta(seconds=5))
    ob.add(3, at=T0 + timedelta(seconds=9))
    w.run_once()
    assert [a.count for a in sink.received] == [1]  # held
    now[0] = T0 + timedelta(seconds=61)
    w.run_once()
    assert [(a.first.alert_id, a.count) for a in sink.received] == [(1, 1), (2, 2)]
    ob.add(4, at=T0 + timedelta(seconds=70))  # a new window: delivered at once
    w.run_once()
    assert [(a.first.alert_id, a.count) for a in sink.received][-1] == (4, 1)


def test_group_membership_frozen_while_retrying() -> None:
    ob = MemoryOutbox()
    ob.add(1, at=T0)
    ob.add(2, at=T0 + timedelta(seconds=1))
    sink = FlakySink(down=1)
    clock = Clock()
    w = _worker(ob, sink, window=60, now=T0 + timedelta(seconds=2), clock=clock)
    w.run_once()
    ob.add(3, at=T0 + timedelta(seconds=3))
    clock.t += 100
    w.run_once()
    assert sink.received[0].alert_ids == (1, 2)


def test_no_sinks_is_an_error() -> None:
    with pytest.raises(AlertError):
        DeliveryWorker(MemoryOutbox(), [])


@settings(max_examples=60, deadline=None)
@given(
    actors=st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=25),
    failures=st.lists(st.booleans(), max_size=40),
    window=st.sampled_from([0.0, 30.0]),
)
def test_every_alert_delivered_exactly_once_per_key_in_order(
    actors: list[str], failures: list[bool], window: float
) -> None:
    ob = MemoryOutbox()
    for i, a in enumerate(actors, 1):
        ob.add(i, actor=f"agent:{a}", at=T0 + timedelta(seconds=i))
    fails = iter(failures)

    class Sink(FlakySink):
        def send(self, alert: Alert) -> None:
            self.attempts += 1
            if next(fails, False):
                raise AlertError("flaky")
            self.received.append(alert)

    sink = Sink()
    clock = Clock()
    w = _worker(ob, sink, window=window, now=T0 + timedelta(days=1), clock=clock)
    for _ in range(100):
        w.run_once()
        clock.t += 1000
        if all(s == "sent" for s in ob.status.values()):
            break
    assert all(s == "sent" for s in ob.status.values())
    keys = [a.idempotency_key for a in sink.received]
    assert len(keys) == len(set(keys))
    covered = [i for a in sink.received for i in a.alert_ids]
    assert sorted(covered) == list(range(1, len(actors) + 1))
    leaders = [a.first.alert_id for a in sink.received]
    assert leaders == sorted(leaders)
