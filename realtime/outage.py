"""One log line when a dependency goes away, one when it is back.

A loop that retries Redis or the database every few milliseconds must not log a
traceback per attempt (a 12-second Redis outage once wrote 251 of them): the
operator needs to know that it went away, why, and when and after how many
attempts it came back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


def describe(error: BaseException) -> str:
    """``Type: message``, one line, bounded."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"[:300] if text else type(error).__name__


class Outage:
    """The state of one dependency as seen by one loop."""

    __slots__ = ("_clock", "_log", "attempts", "since", "what")

    def __init__(
        self, log: logging.Logger, what: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._log = log
        self._clock = clock
        self.what = what
        self.since: float | None = None
        self.attempts = 0

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, error: BaseException) -> None:
        """An attempt failed: logged only when the dependency was up until now."""
        self.attempts += 1
        if self.since is None:
            self.since = self._clock()
            self._log.warning("%s: unavailable (%s); retrying", self.what, describe(error))

    def succeeded(self) -> None:
        """An attempt worked: logged only when the dependency was down."""
        if self.since is None:
            return
        took = self._clock() - self.since
        self._log.warning(
            "%s: back after %.1f s (%d failed attempts)", self.what, took, self.attempts
        )
        self.since = None
        self.attempts = 0
