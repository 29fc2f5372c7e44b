"""A clock the real-time tests move themselves (``realtime.clock.Clock``)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable

from realtime.clock import Timer


class ManualTimer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that moves only when told to.

    It starts at the real time by default, so that tokens issued now expire on it when
    their ``exp`` says. ``call_at`` with an instant already past runs the callback soon
    on the loop (as ``SystemClock`` does), never inside ``call_at``.
    """

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start
        self._timers: list[tuple[float, int, ManualTimer]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        timer = ManualTimer(when, callback)
        if when <= self.now:
            asyncio.get_running_loop().call_soon(self._run, timer)
        else:
            heapq.heappush(self._timers, (when, next(self._order), timer))
        return timer

    def advance(self, seconds: float) -> None:
        """Move time forward and run, in order, every callback that fell due."""
        if seconds < 0:
            raise ValueError(f"time only moves forward: cannot advance by {seconds}")
        until = self.now + seconds
        while self._timers and self._timers[0][0] <= until:
            when, _, timer = heapq.heappop(self._timers)
            self.now = max(self.now, when)
            self._run(timer)
        self.now = until

    @property
    def pending(self) -> int:
        """Timers scheduled and neither run nor cancelled."""
        return sum(1 for _, _, timer in self._timers if not timer.cancelled)

    @staticmethod
    def _run(timer: ManualTimer) -> None:
        if not timer.cancelled:
            timer.cancelled = True  # runs once
            timer.callback()
