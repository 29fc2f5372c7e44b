"""Connections, in process: the keep-alive timeout, and memory freed at close."""

from __future__ import annotations

import asyncio
import gc
import uuid

import websockets
from sanic.server.protocols.websocket_protocol import WebSocketProtocol

from gateway.app import create_app


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
