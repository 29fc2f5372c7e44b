"""Time for the real-time doors, read and scheduled through one object that tests can drive.

A token's expiry (``Mailbox``) and a socket's authentication deadline
(``realtime.admission``) are instants in wall-clock time (a JWT's ``exp`` is seconds
since the epoch). They are scheduled with ``clock.call_at(when, callback)`` on the
``Clock`` the ``Hub`` and ``UnauthenticatedSockets`` were given: ``SystemClock`` in the
server (``time.time()`` and asyncio timers); tests give them a clock they move
themselves (``tests/clocks.py``), to expire a token or a deadline at an exact instant,
however busy the machine, without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    """A scheduled callback."""

    def cancel(self) -> None:
        """Do not run it (no effect once it has run)."""


class Clock(Protocol):
    def time(self) -> float:
        """Now, in seconds since the epoch."""

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        """Run ``callback`` (on the running loop) at ``when``; at once if that has passed."""


class SystemClock:
    """Wall-clock time and asyncio timers."""

    def time(self) -> float:
        return time.time()

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        # A delay from now: asyncio's timers run on the monotonic clock, so a wall-clock
        # step (NTP) after scheduling moves nothing.
        loop = asyncio.get_running_loop()
        return loop.call_later(max(0.0, when - time.time()), callback)
