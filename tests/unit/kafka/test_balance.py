"""``DecodeBalance``: the share of a batch the consumer process leaves to serve follows which side waits."""

from __future__ import annotations

from railbook.serve._balance import MAX_SHARE, STEP, DecodeBalance


def test_the_share_grows_while_serve_waits_and_shrinks_while_serve_is_behind() -> None:
    b = DecodeBalance(2)
    assert b.share == 0.0
    b.observe(0)  # serve acknowledged everything: it waits for this batch
    assert b.share == STEP
    b.observe(1)  # one batch still in flight: about even, no change
    assert b.share == STEP
    b.observe(2)  # every slot taken: serve is behind
    assert b.share == 0.0
    b.observe(2)
    assert b.share == 0.0  # never below nothing


def test_the_share_is_bounded_by_half() -> None:
    b = DecodeBalance(2)
    for _ in range(100):
        b.observe(0)
    assert b.share == MAX_SHARE == 0.5


def test_disabled_it_never_leaves_anything() -> None:
    b = DecodeBalance(2, enabled=False, start=0.3)
    for _ in range(5):
        b.observe(0)
    assert b.share == 0.0
