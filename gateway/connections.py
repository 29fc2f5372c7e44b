"""This worker's HTTP connections: idle ones time out soon, closed ones are freed at once.

- **Keep-alive for ``KEEP_ALIVE_TIMEOUT_SECONDS``** (5 s, Sanic ships 75 s): an idle
  connection holds a socket and its buffers for that long.
- **A closed WebSocket is freed at once.** Sanic arms a timeout check on every
  connection (every ``KEEP_ALIVE_TIMEOUT / 2`` s, 30 s with the defaults it ships)
  and stops checking an upgraded socket, but never cancels the armed check when a
  WebSocket closes: each closed socket stayed in memory until it fired (8 rounds of
  2,000 sockets took a worker from 100 to 359 MB). The check is cancelled at the
  upgrade, where Sanic would stop it anyway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sanic import Request
    from sanic.server.websockets.impl import WebsocketImplProtocol

    from gateway.context import GatewayApp


def _stop_timeout_checks(request: Request) -> None:
    """Cancel the armed timeout check of a connection that became a WebSocket."""
    get_protocol = getattr(request.transport, "get_protocol", None)
    protocol = get_protocol() if get_protocol else None
    check = getattr(protocol, "_callback_check_timeouts", None)
    if protocol is not None and check is not None:
        check.cancel()
        protocol._callback_check_timeouts = None


def setup_connections(app: GatewayApp) -> None:
    """The keep-alive timeout, and WebSocket memory freed at close."""
    app.config.KEEP_ALIVE_TIMEOUT = app.ctx.settings.keep_alive_timeout_seconds

    @app.signal("websocket.handler.before")
    async def free_at_close(request: Request, websocket: WebsocketImplProtocol) -> None:
        _stop_timeout_checks(request)
