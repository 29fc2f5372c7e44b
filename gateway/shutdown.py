"""A worker's shutdown, from SIGTERM to exit, in a known order and a known time.

What Sanic does at SIGTERM (its manager sends the workers SIGINT): it stops the
loop, runs the ``before_server_stop`` listeners while the listening socket still
accepts and keep-alive clients are still served, closes the listener, waits up to
``GRACEFUL_SHUTDOWN_TIMEOUT`` for connections to finish, cuts the rest and runs
``after_server_stop``. Its manager waits 10 s for a worker; a worker that takes
longer is abandoned half-way ("Event loop stopped before Future completed").

The gateway registers one listener for each of the two stop events, so the order
is written down here rather than implied by the order of registration (Sanic runs
stop listeners in reverse):

1. ``Shutdown.run`` (``before_server_stop``): the drain starts (readiness answers
   503, idle keep-alive connections close, the others close after their current
   response), then the steps the packages added with ``add_step``, in the order
   added (realtime: sockets close with 1001, then the relay and the change stream
   stop);
2. Sanic waits for in-flight requests until ``SHUTDOWN_TIMEOUT_SECONDS`` after the
   signal, then cuts what is left;
3. ``Shutdown.close`` (``after_server_stop``): the ``add_close`` steps, all within
   ``CLOSE_SECONDS``.

Every step is bounded; one that overruns or fails is logged and abandoned, and
the next one runs. A worker exits within ``SHUTDOWN_TIMEOUT_SECONDS +
CLOSE_SECONDS`` of the signal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.connections import Drain
    from gateway.context import GatewayApp

log = logging.getLogger("gateway")

STEP_SECONDS = 2.0  # the default bound of one stop step
MIN_STEP_SECONDS = 0.1  # what a step gets even when the deadline has passed
CLOSE_SECONDS = 2.0  # all the closes after the server stopped

Step = tuple[str, Callable[[], Awaitable[object]], float]


async def bounded(work: Awaitable[object], what: str, seconds: float) -> bool:
    """Await ``work`` for at most ``seconds``; if it overruns or fails, log it and go on.

    Returns whether it finished. A step that overruns is cancelled and abandoned.
    """
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        # Abandoned: whatever it ends with is not worth a "never retrieved" warning.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        log.error("shutdown: %s did not finish within %.1f s; going on without it", what, seconds)
        return False
    if task.cancelled():
        log.error("shutdown: %s was cancelled; going on", what)
        return False
    error = task.exception()
    if error is not None:
        log.error("shutdown: %s failed (%s: %s); going on", what, type(error).__name__, error)
        return False
    return True


class Shutdown:
    """The ordered, bounded stop of one worker (``app.ctx.shutdown``)."""

    def __init__(
        self, timeout: float, drain: Drain, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.timeout = timeout
        self.drain = drain
        self._clock = clock
        self.deadline: float | None = None
        self._steps: list[Step] = []
        self._closes: list[Step] = []

    @property
    def started(self) -> bool:
        return self.deadline is not None

    def remaining(self) -> float:
        """Seconds left until in-flight requests are cut."""
        if self.deadline is None:
            return self.timeout
        return max(0.0, self.deadline - self._clock())

    def add_step(
        self, what: str, stop: Callable[[], Awaitable[object]], seconds: float = STEP_SECONDS
    ) -> None:
        """Run ``stop`` when the worker stops, after the steps added before it."""
        self._steps.append((what, stop, seconds))

    def add_close(self, what: str, close: Callable[[], Awaitable[object]]) -> None:
        """Run ``close`` once the server has stopped, after the closes added before it."""
        self._closes.append((what, close, CLOSE_SECONDS))

    async def run(self, app: GatewayApp) -> None:
        """``before_server_stop``: drain, then each step within the deadline."""
        began = self._clock()
        self.deadline = began + self.timeout
        closed, finishing = self.drain.begin()
        log.info(
            "shutting down: %d idle connections closed, %d finish their request (at most %.1f s)",
            closed,
            finishing,
            self.timeout,
        )
        for what, stop, seconds in self._steps:
            await bounded(stop(), what, max(MIN_STEP_SECONDS, min(seconds, self.remaining())))
        # Read by Sanic right after this listener: how long in-flight requests may
        # still take before it cuts them.
        app.config.GRACEFUL_SHUTDOWN_TIMEOUT = self.remaining()

    async def close(self, app: GatewayApp) -> None:
        """``after_server_stop``: each close, all of them within ``CLOSE_SECONDS``."""
        until = self._clock() + CLOSE_SECONDS
        for what, close, _ in self._closes:
            left = max(MIN_STEP_SECONDS, until - self._clock())
            await bounded(close(), what, left)
