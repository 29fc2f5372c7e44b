"""This worker's HTTP connections: memory freed at close, keep-alive ended at shutdown.

- **Keep-alive for ``KEEP_ALIVE_TIMEOUT_SECONDS``** (5 s; Sanic ships 75 s): an idle
  connection holds a socket and its buffers for that long.
- **A closed WebSocket is freed at once.** Sanic arms a timeout check on every
  connection (at half its shortest timeout, 30 s with the defaults it ships) and
  stops checking an upgraded socket, but never cancels the armed check when a
  WebSocket closes: each closed socket stayed in memory until it fired (8 rounds of
  2,000 sockets took a worker from 100 to 359 MB). The check is cancelled at the
  upgrade, where Sanic would stop it anyway.
- **Keep-alive ends when the worker starts to stop.** Sanic keeps serving requests
  on open keep-alive connections until its graceful wait is over, then cuts them,
  possibly mid-request. ``Drain.begin`` closes idle connections at once and makes
  every other one close after its current response (``Connection: close``); the
  request middleware does the same for requests that arrive while draining.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sanic.http import Http, Stage

if TYPE_CHECKING:
    from sanic import Request
    from sanic.server.websockets.impl import WebsocketImplProtocol

    from gateway.context import GatewayApp


class Drain:
    """Ends keep-alive on this worker's connections once ``begin`` is called.

    Sanic keeps its set of open connections to itself; every connection object
    points to it, so the first request tells us where it is.
    """

    __slots__ = ("_connections", "draining")

    def __init__(self) -> None:
        self.draining = False
        self._connections: set[Any] | None = None

    def on_request(self, request: Request) -> None:
        if self._connections is None:
            get_protocol = getattr(request.transport, "get_protocol", None)
            found = getattr(get_protocol(), "connections", None) if get_protocol else None
            self._connections = found if isinstance(found, set) else set()
        if self.draining and isinstance(request.stream, Http):
            request.stream.keep_alive = False  # the response says Connection: close

    def begin(self) -> tuple[int, int]:
        """Close idle keep-alive connections; the others close after their response.

        Returns how many were closed and how many will close. WebSockets are left to
        the code that runs them (they close with 1001 and a reason of their own).
        """
        self.draining = True
        closed = finishing = 0
        for connection in tuple(self._connections or ()):
            if getattr(connection, "websocket", None) is not None:
                continue
            http = connection.http
            if http is None or http.stage is Stage.IDLE:
                connection.close()
                closed += 1
            else:
                # Read again when the request's headers are parsed (a request still
                # arriving would set it back): on_request covers that one.
                http.keep_alive = False
                finishing += 1
        return closed, finishing


def _stop_timeout_checks(request: Request) -> None:
    """Cancel the armed timeout check of a connection that became a WebSocket."""
    get_protocol = getattr(request.transport, "get_protocol", None)
    protocol = get_protocol() if get_protocol else None
    check = getattr(protocol, "_callback_check_timeouts", None)
    if protocol is not None and check is not None:
        check.cancel()
        protocol._callback_check_timeouts = None


def setup_connections(app: GatewayApp) -> None:
    """Keep-alive timeout, WebSocket memory and the drain (``app.ctx.shutdown.drain``)."""
    app.config.KEEP_ALIVE_TIMEOUT = app.ctx.settings.keep_alive_timeout_seconds

    @app.signal("websocket.handler.before")
    async def free_at_close(request: Request, websocket: WebsocketImplProtocol) -> None:
        _stop_timeout_checks(request)
