"""Connections and the stop of one worker, in process: memory at close, drain, bounded steps.

The process-level behaviour (SIGTERM, exit code, a killed worker) is in
tests/gateway/test_process_health.py; here the pieces are driven directly.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
import websockets
from sanic.http import Stage
from sanic.server.protocols.websocket_protocol import WebSocketProtocol

from gateway.app import create_app
from gateway.connections import Drain
from gateway.shutdown import Shutdown, bounded


def live_sockets() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, WebSocketProtocol))


async def test_a_closed_websocket_is_freed_at_once_not_when_its_timer_fires(server, monkeypatch):
    """Sanic's timeout check held every closed WebSocket until it fired: every
    KEEP_ALIVE_TIMEOUT / 2 s (30 s with Sanic's 75 s; here the keep-alive is set to
    300 s so that check would come after 30 s). The wait below ends as soon as the
    server has dropped them; its deadline is only a failure guard, shorter than that
    check."""
    monkeypatch.setitem(server.app.config, "KEEP_ALIVE_TIMEOUT", 300)
    before = live_sockets()
    url = server.base_url.replace("http://", "ws://") + "/api/v1/realtime"
    for _ in range(40):
        async with websockets.connect(url):  # one at a time: never over the unauthenticated cap
            pass
    for _ in range(200):  # 20 s, a failure guard: the old timer would take 30 s
        if live_sockets() <= before:
            break
        await asyncio.sleep(0.1)
    assert live_sockets() <= before


def test_keep_alive_timeout_comes_from_the_settings(settings):
    app = create_app(
        settings.model_copy(update={"keep_alive_timeout_seconds": 12}),
        name=f"ka_{uuid.uuid4().hex[:8]}",
    )
    assert app.config.KEEP_ALIVE_TIMEOUT == 12


class FakeHttp:
    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.keep_alive = True


class FakeConnection:
    def __init__(self, stage: Stage | None, websocket: bool = False) -> None:
        self.http = FakeHttp(stage) if stage is not None else None
        self.websocket = object() if websocket else None
        self.closed = False
        self.connections: set[Any] = set()

    def close(self) -> None:
        self.closed = True


def drain_over(*connections: FakeConnection) -> Drain:
    drain = Drain()
    shared: set[Any] = set(connections)
    for connection in connections:
        connection.connections = shared
    request = SimpleNamespace(
        transport=SimpleNamespace(get_protocol=lambda: connections[0]), stream=None
    )
    drain.on_request(request)  # type: ignore[arg-type]
    return drain


def test_the_drain_closes_idle_connections_and_ends_keep_alive_on_the_others():
    idle, fresh = FakeConnection(Stage.IDLE), FakeConnection(None)
    busy, reading = FakeConnection(Stage.HANDLER), FakeConnection(Stage.REQUEST)
    socket = FakeConnection(Stage.HANDLER, websocket=True)
    drain = drain_over(idle, fresh, busy, reading, socket)

    assert drain.begin() == (2, 2)
    assert [c.closed for c in (idle, fresh, busy, reading, socket)] == [1, 1, 0, 0, 0]
    keep_alive = [c.http.keep_alive for c in (busy, reading, socket) if c.http is not None]
    # WebSockets close with 1001 and a reason of their own (realtime), not here.
    assert keep_alive == [False, False, True]


def test_a_request_read_while_draining_is_answered_with_connection_close():
    from sanic.http import Http

    drain = drain_over(FakeConnection(Stage.IDLE))
    stream = Http.__new__(Http)
    stream.keep_alive = True
    request = SimpleNamespace(transport=None, stream=stream)
    drain.on_request(request)  # type: ignore[arg-type]
    assert stream.keep_alive is True  # serving: keep-alive as usual
    drain.begin()
    drain.on_request(request)  # type: ignore[arg-type]
    assert stream.keep_alive is False


async def test_shutdown_runs_its_steps_in_order_each_bounded_and_goes_on_past_a_bad_one(caplog):
    done: list[str] = []
    never = asyncio.Event()

    async def first() -> None:
        done.append("sockets")

    async def hangs() -> None:
        await never.wait()

    async def fails() -> None:
        raise RuntimeError("no such connection")

    async def last() -> None:
        done.append("stream")

    shutdown = Shutdown(5.0, Drain())
    shutdown.add_step("closing sockets", first)
    shutdown.add_step("the relay", hangs, seconds=0.1)
    shutdown.add_step("the bus", fails)
    shutdown.add_step("the change stream", last)
    app = SimpleNamespace(config=SimpleNamespace(GRACEFUL_SHUTDOWN_TIMEOUT=15.0))
    with caplog.at_level(logging.INFO, logger="gateway"):
        await shutdown.run(app)  # type: ignore[arg-type]
    assert done == ["sockets", "stream"]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [
        "shutdown: the relay did not finish within 0.1 s; going on without it",
        "shutdown: the bus failed (RuntimeError: no such connection); going on",
    ]
    # Sanic waits for in-flight requests only for what is left of the bound.
    assert 0 < app.config.GRACEFUL_SHUTDOWN_TIMEOUT <= 5.0
    assert shutdown.started


async def test_every_step_shares_one_deadline():
    now = [100.0]
    shutdown = Shutdown(3.0, Drain(), clock=lambda: now[0])
    seen: list[float] = []

    async def slow_step() -> None:
        seen.append(shutdown.remaining())
        now[0] += 2.5  # this step used most of the bound

    async def next_step() -> None:
        seen.append(shutdown.remaining())

    shutdown.add_step("slow", slow_step, seconds=10)
    shutdown.add_step("next", next_step, seconds=10)
    app = SimpleNamespace(config=SimpleNamespace(GRACEFUL_SHUTDOWN_TIMEOUT=15.0))
    await shutdown.run(app)  # type: ignore[arg-type]
    assert seen == [3.0, 0.5]
    assert app.config.GRACEFUL_SHUTDOWN_TIMEOUT == 0.5


async def test_a_bounded_step_that_finishes_reports_it():
    async def quick() -> None:
        await asyncio.sleep(0)

    assert await bounded(quick(), "quick", 5.0) is True


@pytest.mark.parametrize("seconds", [0.0, 0.05])
async def test_a_step_past_its_bound_is_cancelled(seconds, caplog):
    cancelled = asyncio.Event()

    async def stuck() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with caplog.at_level(logging.ERROR, logger="gateway"):
        assert await bounded(stuck(), "stuck", seconds) is False
    await asyncio.wait_for(cancelled.wait(), 5)
