"""How much of each batch's decoding the consumer process leaves to serve (internal).

serve runs in two processes on a two-core machine: the consumer process polls, decodes Avro,
computes canonical bytes, decides ahead and pickles; serve dedupes, decides the rest, encodes and
appends. When one of them sets the pace the other waits, and a core idles. Measured during the
serve phase of `railbook bench kafka` (2026-12-07, 2 cores, CPU time read from ``/proc``): the
consumer process was 0.91 of a core busy, serve's process 0.67, and 0.31 of the two cores idle;
serve ran at the consumer process's pace, 8.1k events/s. With a fixed 30 % of the Avro events
decoded in serve instead, in one run: 0.81 / 0.98 busy, 10.2k events/s. With 50 %: serve's process
set the pace (1.02 busy: its GIL), 7.2k/s. Runs differ by as much as the shares do, and the best
share depends on the machine, the event mix and the policy pack, so it is found while running
(seven alternating pairs with and without: +6.8 % on average, faster in six).

The consumer process asks each time it has a batch ready: how many of the batches it sent are not
acknowledged yet (``DEPTH`` at most)? None: serve finished everything and waits for this batch,
so the consumer process is the slower side and leaves a larger share undecoded. All: serve is
behind, and the share shrinks. In between, it stays. Moving the share in small steps keeps the
two sides close to even without oscillating by a whole batch's work.

What serve decodes comes out the same (``Decoded.decode_left``: the same decoder, the same order,
dead letters named the same); serve decides those events itself, as it does every event the
consumer process does not decide ahead.
"""

from __future__ import annotations

__all__ = ["DecodeBalance"]

#: the share moves by this much per batch (batches of 5,000 events: ~2 a second at full speed)
STEP = 0.05
#: never leave more than this share to serve: past ~half serve's own GIL sets the pace (measured)
MAX_SHARE = 0.5


class DecodeBalance:
    """The share of a batch's Avro events the consumer process leaves undecoded (module docstring)."""

    def __init__(self, depth: int, *, enabled: bool = True, start: float = 0.0) -> None:
        self.depth = depth
        self.enabled = enabled
        self.share = start if enabled else 0.0
        """For the next batch: 0 (decode everything) to ``MAX_SHARE``."""

    def observe(self, in_flight: int) -> None:
        """A batch is ready and ``in_flight`` batches sent before it are not acknowledged yet."""
        if not self.enabled:
            return
        if in_flight <= 0:
            self.share = min(MAX_SHARE, round(self.share + STEP, 6))
        elif in_flight >= self.depth:
            self.share = max(0.0, round(self.share - STEP, 6))
