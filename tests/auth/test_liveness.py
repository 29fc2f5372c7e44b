"""When the revocation follower takes its Redis subscription for dead (gateway/auth/denylist.py).

A quiet subscription is pinged; only a ping left unanswered across two polls and
more than one interval is a lost connection. A stalled event loop, which wakes a
poll late and before it read the waiting pong, is not.
"""

from __future__ import annotations

import pytest

from gateway.auth.denylist import Liveness

pytestmark = pytest.mark.backend_independent

INTERVAL = 5.0


def test_a_quiet_connection_is_pinged_after_one_interval() -> None:
    live = Liveness(0.0, INTERVAL)
    assert live.quiet(4.9) == "wait"
    assert live.quiet(5.0) == "ping"


def test_a_pong_keeps_it_alive() -> None:
    live = Liveness(0.0, INTERVAL)
    assert live.quiet(5.0) == "ping"
    live.heard(5.1)
    assert live.quiet(10.0) == "wait"
    assert live.quiet(10.1) == "ping"


def test_a_ping_unanswered_over_two_polls_and_an_interval_is_a_lost_connection() -> None:
    live = Liveness(0.0, INTERVAL)
    assert live.quiet(5.0) == "ping"
    assert live.quiet(10.0) == "wait"  # one poll, exactly one interval: not yet
    assert live.quiet(15.0) == "lost"


def test_a_stalled_loop_is_not_a_lost_connection() -> None:
    """The loop was busy for three intervals: the first poll back has not read anything
    yet, however long it has been since the last message; it pings and waits."""
    live = Liveness(0.0, INTERVAL)
    assert live.quiet(15.0) == "ping"
    # Busy again: the next poll wakes late, before reading the pong.
    assert live.quiet(30.0) == "wait"
    live.heard(30.0)  # the poll after it reads the waiting pong
    assert live.quiet(31.0) == "wait"


def test_one_late_poll_after_a_ping_is_not_enough() -> None:
    live = Liveness(0.0, INTERVAL)
    assert live.quiet(5.0) == "ping"
    assert live.quiet(60.0) == "wait"
