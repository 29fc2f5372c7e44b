"""One call has a deadline over all its attempts and waits: a gateway that takes the
connection and never answers costs ``deadline`` seconds, not (attempts x read timeout)
plus the waits between them (six 30-second reads and their backoff: over three minutes)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from gateway_client import AsyncClient, Client, ConnectionFailed

pytestmark = pytest.mark.backend_independent

DEADLINE = 1.0
SLACK = 10.0  # a failure guard only: without the deadline a call takes over 180 s


@pytest.fixture
def silent() -> Iterator[str]:
    """A server that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_a_silent_gateway_costs_the_deadline_not_every_attempt(silent: str) -> None:
    slow = httpx.Timeout(30.0, connect=5.0)  # each attempt alone would wait 30 s
    with Client(silent, token="t", timeout=slow, deadline=DEADLINE) as gw:
        started = time.monotonic()
        with pytest.raises(ConnectionFailed, match=r"ReadTimeout|deadline"):
            gw.customers.get(1)
        assert time.monotonic() - started < DEADLINE + SLACK


async def test_the_async_client_keeps_the_same_deadline(silent: str) -> None:
    slow = httpx.Timeout(30.0, connect=5.0)
    async with AsyncClient(silent, token="t", timeout=slow, deadline=DEADLINE) as gw:
        started = time.monotonic()
        with pytest.raises(ConnectionFailed, match=r"ReadTimeout|deadline"):
            await gw.customers.get(1)
        assert time.monotonic() - started < DEADLINE + SLACK
