"""``SegmentSchedule``: under load one export covers several checkpoints; nothing offered is lost."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ledger._segment_schedule import SegmentSchedule


def _cp(size: int) -> Any:
    return size  # the schedule only hands checkpoints through


def _exported_once(interval: float) -> SegmentSchedule:
    """A schedule whose first export (of checkpoint 5) has started: the next one is due later."""
    s = SegmentSchedule(interval)
    s.offer(_cp(5))
    assert s.take() == 5
    return s


def _timed_take(s: SegmentSchedule) -> tuple[Any, float]:
    """``s.take()`` and the seconds it waited."""
    t = time.monotonic()
    return s.take(), time.monotonic() - t


def test_the_first_export_starts_at_once_and_takes_the_newest_offer() -> None:
    s = SegmentSchedule(60.0)
    assert s.offer(_cp(5)) is True  # queue a task
    assert s.offer(_cp(10)) is False  # the queued task takes it
    got, waited = _timed_take(s)
    assert got == 10 and waited < 1.0


def test_the_next_export_waits_for_its_due_time() -> None:
    s = _exported_once(0.3)
    assert s.offer(_cp(10)) is True
    s.offer(_cp(15))
    got, waited = _timed_take(s)
    assert got == 15 and waited >= 0.25


@pytest.mark.parametrize("how", ["hurry", "urgent"])
def test_hurry_and_urgent_offers_end_the_wait(how: str) -> None:
    s = _exported_once(60.0)
    s.offer(_cp(10))
    got: list[Any] = []
    worker = threading.Thread(target=lambda: got.append(s.take()))
    worker.start()
    time.sleep(0.1)
    if how == "hurry":
        s.hurry()
    else:
        s.offer(_cp(15), urgent=True)
    worker.join(5.0)
    assert not worker.is_alive()
    assert got == [10 if how == "hurry" else 15]


def test_an_urgent_offer_after_a_take_queues_an_export_that_does_not_wait() -> None:
    s = _exported_once(60.0)
    assert s.offer(_cp(10), urgent=True) is True
    got, waited = _timed_take(s)
    assert got == 10 and waited < 1.0


def test_hurry_with_nothing_queued_leaves_the_next_offer_on_schedule() -> None:
    s = _exported_once(0.3)
    s.hurry()  # nothing queued: no effect
    s.offer(_cp(10))
    got, waited = _timed_take(s)
    assert got == 10 and waited >= 0.25


def test_every_offer_is_taken_by_some_export_under_concurrency() -> None:
    """Offers from one thread, takes on the one export thread (as the ledger runs them): the
    exports end in order, and the newest offer is always exported."""
    s = SegmentSchedule(0.001)
    taken: list[Any] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        for size in range(1, 2001):
            if s.offer(_cp(size)):
                pool.submit(lambda: taken.append(s.take()))
    assert None not in taken
    assert taken == sorted(taken) and taken[-1] == 2000
    assert len(taken) < 2000  # offers made while a task was queued were coalesced
