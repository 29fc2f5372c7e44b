"""The relay stops when told to, and logs a bus outage once, whatever its bus does.

Driven directly with stand-in buses: one that, like redis-py 8.1, finishes a
publish it was cancelled in and returns as if nothing happened (the relay then
ran on after stop() and its worker never closed its sockets at SIGTERM), and one
that is down until the test says otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from realtime.relay import Relay, asyncpg_dsn


class SwallowingBus:
    """Publishes; a cancellation that lands mid-publish is swallowed, as redis-py does."""

    def __init__(self) -> None:
        self.inside = asyncio.Event()
        self.swallowed = 0

    async def publish_many(self, channel: str, payloads: list[bytes]) -> None:
        self.inside.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.swallowed += 1  # and return normally


class FlakyBus:
    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    async def publish_many(self, channel: str, payloads: list[bytes]) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6390. Connection refused.")


def relay_on(bus: Any) -> Relay:
    relay = Relay(bus, database_url="sqlite://unused", retention_seconds=3600)
    relay.channel = "test:relay"
    return relay


async def test_a_relay_stops_even_when_its_bus_swallows_the_cancellation(monkeypatch):
    bus = SwallowingBus()
    relay = relay_on(bus)

    async def one_event(connection: Any) -> list[dict[str, Any]]:
        return [{"position": 1, "resource": "customer"}]

    async def no_heartbeat(connection: Any) -> None:
        return None

    monkeypatch.setattr(relay, "_number", one_event)
    monkeypatch.setattr(relay, "_heartbeat", no_heartbeat)
    leading = asyncio.create_task(relay._lead(None))
    await asyncio.wait_for(bus.inside.wait(), 10)
    leading.cancel()
    done, _ = await asyncio.wait({leading}, timeout=10)  # a failure guard: it ran forever
    assert done, "the relay ran on after it was cancelled"
    assert leading.cancelled()
    assert bus.swallowed == 1


async def test_a_bus_outage_is_one_line_down_and_one_line_back(caplog):
    bus = FlakyBus()
    relay = relay_on(bus)
    with caplog.at_level(logging.INFO, logger="gateway.realtime"):
        await relay._publish([b'{"head": 1}'])
        bus.down = True
        for _ in range(50):
            await relay._publish([b'{"position": 2}'])
            # A round with nothing to publish tries nothing: it must not read as "back".
            await relay._publish([])
        assert relay.bus_outage.down
        bus.down = False
        await relay._publish([b'{"head": 2}'])
    messages = [r.getMessage() for r in caplog.records if r.name == "gateway.realtime"]
    assert len(messages) == 2, messages
    assert messages[0].startswith("change-log relay: publishing to the bus: unavailable (")
    assert messages[1].startswith("change-log relay: publishing to the bus: back after")
    assert "(50 failed attempts)" in messages[1]
    assert bus.calls == 52


def test_the_relay_s_connection_leaves_the_gateway_s_own_url_options_out():
    url = "postgres://u@db:5432/app?maxsize=20&connect_timeout=2&command_timeout=30&sslmode=require"
    assert asyncpg_dsn(url) == "postgres://u@db:5432/app?sslmode=require"


async def test_the_relay_gives_up_connecting_to_a_database_that_never_answers():
    """A peer that accepts and stays silent (a dead network path): the relay's connect
    ends at its own timeout, not asyncpg's 60 s, and its loop tries again."""
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    relay = Relay(
        FlakyBus(),
        database_url=f"postgres://u@127.0.0.1:{port}/app?connect_timeout=9",
        retention_seconds=3600,
        connect_timeout=0.2,
    )

    async def attempt() -> BaseException | None:
        try:
            async with relay._pg_leadership():
                return None
        except (TimeoutError, OSError) as error:
            return error

    try:
        outcome = await asyncio.wait_for(attempt(), 30)
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
    assert isinstance(outcome, TimeoutError)
    assert held, "the relay reached the silent peer"
