"""Fixtures for the real-time tests: a clock they drive."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from realtime.clock import ManualClock


@pytest.fixture
def clock(server) -> Iterator[ManualClock]:
    """The server's real-time clock, stopped: token expiry happens when the test calls
    ``clock.advance(seconds)``, however busy the machine.

    Covers what starts during the test (a mailbox's expiry is scheduled when it
    begins); the system clock is back afterwards.
    """
    hub = server.app.ctx.extras["hub"]
    manual = ManualClock()
    saved = hub.clock
    hub.clock = manual
    try:
        yield manual
    finally:
        hub.clock = saved
