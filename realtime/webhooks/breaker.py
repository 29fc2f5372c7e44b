"""A circuit breaker per endpoint, its state kept in the endpoint's row.

After ``failures`` consecutive failed attempts the breaker opens: no attempt is
made to the endpoint for ``cooldown`` seconds (a receiver that is down is not
hammered by every new event's first retries). Then it is half-open: the next
attempt is a trial; success closes the breaker, failure opens it for another
``cooldown``. The state is two columns of ``webhook_endpoints``
(``consecutive_failures``, ``breaker_open_until``), so a restarted or new
dispatcher carries on where the last one stopped.

A breaker is a few lines of state; the libraries for it (pybreaker, aiobreaker)
keep their state in memory or Redis, not in the row that the API shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

State = Literal["closed", "open", "half-open"]


@dataclass(slots=True)
class Breaker:
    failures: int  # consecutive failures that open it
    cooldown: float  # seconds it stays open
    consecutive_failures: int = 0
    open_until: float | None = None  # epoch seconds

    def state(self, now: float) -> State:
        if self.open_until is None:
            return "closed"
        return "open" if now < self.open_until else "half-open"

    def wait(self, now: float) -> float:
        """Seconds before an attempt may be made (0 when closed or half-open)."""
        if self.open_until is None:
            return 0.0
        return max(0.0, self.open_until - now)

    def succeeded(self) -> None:
        self.consecutive_failures = 0
        self.open_until = None

    def failed(self, now: float) -> None:
        self.consecutive_failures += 1
        if self.consecutive_failures >= self.failures:
            self.open_until = now + self.cooldown
