"""Fixtures for the real-time tests: a clock they drive, and client addresses of their own."""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterator

import pytest

from realtime.admission import unauthenticated_sockets
from tests.clocks import ManualClock

_addresses = itertools.count(1)


@pytest.fixture
def clock(server) -> Iterator[ManualClock]:
    """The server's real-time clock, stopped: token expiry and authentication deadlines
    happen when the test calls ``clock.advance(seconds)``, however busy the machine.

    Covers what starts during the test (a socket's deadline and a mailbox's expiry are
    scheduled when they begin); the system clock is back afterwards.
    """
    hub = server.app.ctx.hub
    sockets = unauthenticated_sockets(server.app)
    manual = ManualClock()
    saved = hub.clock, sockets.clock
    hub.clock = sockets.clock = manual
    try:
        yield manual
    finally:
        hub.clock, sockets.clock = saved


@pytest.fixture
def address(server, monkeypatch) -> str:
    """A client address of this test's own, sent as ``X-Forwarded-For`` through a trusted
    proxy (the test client's 127.0.0.1), so that no other test's sockets count against it."""
    monkeypatch.setattr(
        server.app.ctx.settings, "trusted_proxies", [ipaddress.ip_network("127.0.0.1/32")]
    )
    n = next(_addresses)
    return f"198.51.{n // 250}.{n % 250 + 1}"
