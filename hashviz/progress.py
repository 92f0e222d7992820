"""Rate and time left for long work that reports ``progress(done, total)`` (or the pipeline's
``progress(stage, done, total)``).

:class:`StageClock` records each stage's reports with their times and turns them into text such as
``"812 img/s, about 1 min left"``: the rate is the average since the stage's first report (so model loading or a
cache hit before it does not count), the time left is what remains at that rate. The CLI's tqdm bars show the same
two numbers; the app's preparation progress shows this text.
"""

from __future__ import annotations

import threading
import time

STAGE_UNITS = {"dataset": "", "features": "img", "heads": "steps", "quantizers": "fits"}


def format_duration(seconds: float) -> str:
    """``"45 s"``, ``"3 min"``, ``"1 h 05 min"`` (rounded up, so "about 1 min left" is never too hopeful)."""
    s = max(0, int(-(-float(seconds) // 1)))
    if s < 60:
        return f"{s} s"
    m = -(-s // 60)
    if m < 60:
        return f"{m} min"
    return f"{m // 60} h {m % 60:02d} min"


def _rate(r: float) -> str:
    return f"{r:,.0f}" if r >= 100 else f"{r:.1f}" if r >= 1 else f"{r:.2g}"


def rate_text(done: int, total: int, elapsed: float, unit: str = "it") -> str:
    """``"<rate> <unit>/s, about <T> left"`` from ``done`` items in ``elapsed`` seconds out of ``total``;
    just the rate once nothing is left; ``""`` when there is nothing to measure yet (no item or no time)."""
    if done <= 0 or elapsed <= 0:
        return ""
    rate = done / elapsed
    unit = f"{unit}/s" if unit else "/s"
    text = f"{_rate(rate)} {unit}"
    left = int(total) - int(done)
    return text if left <= 0 else f"{text}, about {format_duration(left / rate)} left"


class StageClock:
    """Per-stage progress with times: call it as ``clock(stage, done, total)``; :meth:`text` gives the rate and
    time left of a stage. Thread-safe (a background job reports, a page reads)."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._first: dict[str, tuple[float, int]] = {}
        self._last: dict[str, tuple[float, int, int]] = {}
        self._lock = threading.Lock()

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = self._clock()
        with self._lock:
            self._first.setdefault(stage, (now, int(done)))
            self._last[stage] = (now, int(done), int(total))

    def text(self, stage: str, unit: str | None = None) -> str:
        """Rate since the stage's first report and time left, e.g. ``"812 img/s, about 1 min left"``; ``""``
        before a second report of the stage (or when it was a cache hit)."""
        with self._lock:
            if stage not in self._last:
                return ""
            t0, d0 = self._first[stage]
            t, done, total = self._last[stage]
        unit = STAGE_UNITS.get(stage, "it") if unit is None else unit
        return rate_text(done - d0, total - d0, t - t0, unit)
