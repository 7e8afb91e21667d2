from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.deadletter import DeadLetter
from railbook.service.writer import Writer, WriterClosedError, WriterOverloadedError, _split
from tests.unit.service.fakes import FakePipeline, FakeSummary, make_event, opener


def _writer(p: FakePipeline, **kw: Any) -> Writer:
    return Writer(lambda: opener(p), **kw).start()  # type: ignore[arg-type,return-value]


def test_submit_runs_on_the_writer_thread() -> None:
    p = FakePipeline()
    with _writer(p, name="the-writer") as w:
        s = w.submit([make_event("e1")]).result(5)
    assert (s.appended, s.violations) == (1, 1)
    assert p.threads == {"the-writer"}


def test_only_fresh_submissions_name_their_ids_as_minted() -> None:
    p = FakePipeline()
    gate = threading.Event()
    with _writer(p) as w:
        w.call(lambda _p: gate.wait(5))
        # queued together: one transaction, where only the fresh submission's ids skip the lookup
        fresh = w.submit([make_event("req-1")], mode="gate", fresh=True)
        other = w.submit([make_event("g-2")], mode="gate")
        gate.set()
        fresh.result(5)
        other.result(5)
        w.submit([make_event("d-3")]).result(5)
    assert p.minted == [frozenset({"req-1"}), frozenset()]


def test_queued_submissions_share_one_transaction_and_get_their_own_parts() -> None:
    p = FakePipeline()
    gate = threading.Event()
    w = _writer(p)
    # hold the writer busy so the next submissions queue up together
    blocker = w.call(lambda _p: gate.wait(5))
    futs = [w.submit([make_event(f"e{i}"), make_event(f"e{i}-b", "dev")]) for i in range(5)]
    dup = w.submit(
        [make_event("e0"), DeadLetter.of(source="event", reason="x", detail="d", raw=b"?", where="t")]
    )
    gate.set()
    blocker.result(5)
    parts = [f.result(5) for f in futs]
    dpart = dup.result(5)
    w.close()
    assert p.calls == [12]  # one transaction for all six submissions
    for i, part in enumerate(parts):
        assert [e[1].event_id for e in part.entries] == [f"e{i}", f"e{i}-b"]
        assert (part.read, part.appended, part.violations, part.duplicates) == (2, 2, 1, 0)
    assert (dpart.read, dpart.appended, dpart.duplicates, dpart.dead_lettered) == (2, 0, 1, 1)


def test_modes_are_never_mixed_in_one_transaction() -> None:
    p = FakePipeline()
    gate = threading.Event()
    w = _writer(p)
    w.call(lambda _p: gate.wait(5))
    a = w.submit([make_event("a")])
    g = w.submit([make_event("g")], mode="gate")
    b = w.submit([make_event("b")])
    gate.set()
    for f in (a, g, b):
        f.result(5)
    w.close()
    assert p.calls == [1, 1, 1]


def test_batch_max_splits_transactions() -> None:
    p = FakePipeline()
    gate = threading.Event()
    w = _writer(p, batch_max=4)
    w.call(lambda _p: gate.wait(5))
    futs = [w.submit([make_event(f"e{i}")]) for i in range(10)]
    gate.set()
    for f in futs:
        f.result(5)
    w.close()
    assert p.calls == [4, 4, 2]


def test_a_lone_submission_does_not_wait_for_linger() -> None:
    p = FakePipeline()
    with _writer(p, linger=2.0) as w:
        for mode in ("detect", "gate"):
            t0 = time.monotonic()
            w.submit([make_event(f"lone-{mode}")], mode=mode).result(5)
            assert time.monotonic() - t0 < 1.0, f"a lone {mode} submission waited for linger"
    assert p.calls == [1, 1]


def test_linger_gathers_more_once_a_batch_has_company_but_never_for_gate() -> None:
    p = FakePipeline()
    gate = threading.Event()
    w = _writer(p, linger=0.5)
    w.call(lambda _p: gate.wait(5))
    gates = [w.submit([make_event(f"g{i}")], mode="gate") for i in range(2)]
    first = [w.submit([make_event(f"d{i}")]) for i in range(2)]
    t0 = time.monotonic()
    gate.set()
    for f in gates:
        f.result(5)
    assert time.monotonic() - t0 < 0.4, "a gate batch lingered"
    # the two detect submissions linger for company; a third one, sent meanwhile, joins them
    late = w.submit([make_event("d-late")])
    for f in (*first, late):
        f.result(5)
    w.close()
    assert p.calls == [2, 3]


def test_one_failing_submission_does_not_fail_the_others() -> None:
    p = FakePipeline(fail_on={"bad"})
    gate = threading.Event()
    w = _writer(p)
    w.call(lambda _p: gate.wait(5))
    good = w.submit([make_event("good")])
    bad = w.submit([make_event("bad")])
    gate.set()
    assert good.result(5).appended == 1
    with pytest.raises(RuntimeError, match="boom"):
        bad.result(5)
    w.close()


def test_close_finishes_queued_work_then_refuses() -> None:
    p = FakePipeline()
    w = _writer(p)
    futs = [w.submit([make_event(f"e{i}")]) for i in range(50)]
    w.close()
    assert all(f.result(0).appended == 1 for f in futs)
    with pytest.raises(WriterClosedError):
        w.submit([make_event("late")])


def test_open_failure_is_raised_by_start() -> None:
    @contextmanager
    def broken() -> Any:
        raise OSError("locked")
        yield

    w = Writer(broken)
    with pytest.raises(OSError, match="locked"):
        w.start()
    with pytest.raises(WriterClosedError):
        w.submit([make_event("x")])


def test_overload_is_reported() -> None:
    p = FakePipeline()
    gate = threading.Event()
    w = _writer(p, queue_max=2)
    w.call(lambda _p: gate.wait(5))
    time.sleep(0.05)  # let the writer take the blocker off the queue
    w.submit([make_event("a")])
    w.submit([make_event("b")])
    with pytest.raises(WriterOverloadedError):
        w.submit([make_event("c")])
    gate.set()
    w.close()


def test_checkpoint_timer_runs_when_idle() -> None:
    p = FakePipeline()
    w = _writer(p, checkpoint_poll=0.02, name="cp-writer")
    time.sleep(0.2)
    w.close()
    assert p.ledger.checkpoints >= 3
    assert p.ledger.threads == {"cp-writer"}


def test_offsets_are_merged_by_max() -> None:
    p = FakePipeline()
    gate = threading.Event()
    w = _writer(p)
    w.call(lambda _p: gate.wait(5))
    f1 = w.submit([make_event("a")], offsets={"g": {("t", 0): 5}})
    f2 = w.submit([make_event("b")], offsets={"g": {("t", 0): 9, ("t", 1): 1}})
    gate.set()
    f1.result(5), f2.result(5)
    w.close()
    assert p.ledger.offsets == [{"g": {("t", 0): 9, ("t", 1): 1}}]


def test_listeners_see_each_commit() -> None:
    p = FakePipeline()
    seen: list[tuple[int, str]] = []
    w = _writer(p)
    w.listeners.append(lambda s, mode: seen.append((s.appended, mode)))
    w.submit([make_event("a")]).result(5)
    w.submit([make_event("b")], mode="gate").result(5)
    w.close()
    assert seen == [(1, "detect"), (1, "gate")]


def test_cancelled_future_is_not_written() -> None:
    p = FakePipeline()
    gate = threading.Event()
    w = _writer(p)
    w.call(lambda _p: gate.wait(5))
    f: Future[Any] = w.submit([make_event("a")])
    assert f.cancel()
    gate.set()
    w.close()
    assert p.ledger.entries == []


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["a", "b", "c", "d", "dl"]), max_size=4), min_size=1, max_size=5))
def test_split_parts_add_up_to_the_whole(parts_ids: list[list[str]]) -> None:
    parts = [
        [
            DeadLetter.of(source="s", reason="r", detail="d", raw=b"", where="w")
            if i == "dl"
            else make_event(i)
            for i in ids
        ]
        for ids in parts_ids
    ]
    whole = FakePipeline().process([it for part in parts for it in part])
    split = _split(whole, parts)  # type: ignore[arg-type]
    for field in ("read", "appended", "duplicates", "dead_lettered", "violations"):
        assert sum(getattr(s, field) for s in split) == getattr(whole, field), field
    assert sorted(e[0] for s in split for e in s.entries) == [e[0] for e in whole.entries]
    assert all(isinstance(s, FakeSummary) for s in split)
