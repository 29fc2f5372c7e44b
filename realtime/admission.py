"""Sockets that have not authenticated yet: one deadline for every protocol, a cap per address.

Every WebSocket door lets its client authenticate after the upgrade, in a message:
``connection_init`` on ``/graphql`` (``graphql-transport-ws`` and legacy ``graphql-ws``),
``auth`` on ``/api/v1/realtime``. Until it has, a socket is *pending*, and:

- it has ``REALTIME_AUTH_TIMEOUT_SECONDS``, counted from its upgrade request, to
  authenticate. Nothing it sends meanwhile (pings included) moves the deadline; then the
  socket is closed with 4408.
- it counts against its client address (``gateway.edge.client_address``, which believes
  ``X-Forwarded-For`` only from ``TRUSTED_PROXIES``). With
  ``REALTIME_UNAUTHENTICATED_PER_ADDRESS`` sockets of that address pending on this worker,
  the next upgrade is refused before it happens: HTTP 429 ``RATE_LIMITED``, with
  ``Retry-After`` the seconds until the oldest of them has authenticated or been closed.

A socket stops being pending when it authenticates (``PendingSocket.authenticated``) or
ends: ``UnauthenticatedSockets.upgrade`` runs the door's handler and releases the socket
on every exit path (close, error, cancellation). A socket that authenticates with headers
on the upgrade request is never pending.

The count is per worker (sockets live in one process); the deadline makes a pending
socket cost its address a slot for at most ``REALTIME_AUTH_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from gateway import metrics
from gateway.edge import client_address
from gateway.errors import RateLimited, database_unavailable, note_database_outage
from realtime.clock import Clock, SystemClock, Timer
from realtime.close_codes import AUTH_TIMEOUT, DATABASE_AWAY

if TYPE_CHECKING:
    from sanic import Request
    from sanic.server.websockets.impl import WebsocketImplProtocol

    from gateway.context import GatewayApp
    from gateway.settings import Settings


SocketHandler = Callable[["Request", "WebsocketImplProtocol"], Awaitable[None]]


class PendingSocket:
    """One socket that has not authenticated yet; ``deadline`` is on the owner's clock."""

    __slots__ = ("_closing", "_timer", "address", "deadline", "owner")

    def __init__(self, owner: UnauthenticatedSockets, address: str, deadline: float) -> None:
        self.owner = owner
        self.address = address
        self.deadline = deadline
        self._timer: Timer | None = None
        self._closing: asyncio.Task[None] | None = None

    @property
    def pending(self) -> bool:
        return self in self.owner._by_address.get(self.address, ())

    def watch(self, ws: WebsocketImplProtocol) -> None:
        """Close ``ws`` with 4408 at the deadline unless it has authenticated by then."""
        if self.pending and self._timer is None:
            self._timer = self.owner.clock.call_at(self.deadline, lambda: self._expire(ws))

    def authenticated(self) -> None:
        """The socket has authenticated: it no longer counts and has no deadline."""
        self.release()

    def release(self) -> None:
        """Stop counting this socket (idempotent)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        sockets = self.owner._by_address.get(self.address)
        if sockets is not None:
            sockets.discard(self)
            if not sockets:
                del self.owner._by_address[self.address]

    def _expire(self, ws: WebsocketImplProtocol) -> None:
        self._timer = None
        if not self.pending:
            return
        seconds = self.owner.settings.realtime_auth_timeout_seconds
        reason = f"authentication timeout: authenticate within {seconds:g} s of connecting"
        # The socket's own task notices the close and ends, which releases the slot.
        self._closing = asyncio.ensure_future(_close(ws, AUTH_TIMEOUT.code, reason))


async def _close(ws: WebsocketImplProtocol, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await ws.close(code, reason)


class UnauthenticatedSockets:
    """This worker's pending sockets, by client address (see the module docstring)."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._by_address: dict[str, set[PendingSocket]] = {}

    def count(self, address: str) -> int:
        """Pending sockets of ``address``."""
        return len(self._by_address.get(address, ()))

    @property
    def total(self) -> int:
        return sum(len(sockets) for sockets in self._by_address.values())

    def admit(self, address: str) -> PendingSocket:
        """Count a new socket of ``address``, or raise ``RateLimited`` when it has its fill."""
        now = self.clock.time()
        cap = self.settings.realtime_unauthenticated_per_address
        sockets = self._by_address.get(address)
        if sockets is not None and len(sockets) >= cap:
            soonest = min(socket.deadline for socket in sockets)
            metrics.rate_limited("ws-unauthenticated")
            raise RateLimited(
                f"{cap} WebSocket connections from your address have not authenticated yet"
                " (REALTIME_UNAUTHENTICATED_PER_ADDRESS): authenticate or close them, or wait"
                " for their authentication timeout, before opening another",
                retry_after=soonest - now,
            )
        socket = PendingSocket(self, address, now + self.settings.realtime_auth_timeout_seconds)
        self._by_address.setdefault(address, set()).add(socket)
        return socket

    async def upgrade(
        self,
        request: Request,
        handler: Callable[[Request, WebsocketImplProtocol, PendingSocket | None], Awaitable[None]],
        *,
        subprotocols: list[str] | None = None,
        pending: bool = True,
    ) -> None:
        """Accept the WebSocket upgrade of ``request`` and run ``handler`` on the socket.

        With ``pending`` (the client will authenticate in a message), the socket is
        admitted first (``RateLimited`` refuses the upgrade itself, as an HTTP 429),
        gets its deadline and is handed to ``handler`` as its ``PendingSocket``, to
        call ``authenticated()`` on; else ``handler`` gets None. Returns when the
        socket has ended, having released it whatever the ending.
        """
        socket = self.admit(client_address(request)) if pending else None

        async def run(request: Request, ws: WebsocketImplProtocol) -> None:
            if socket is not None:
                socket.watch(ws)
            try:
                await handler(request, ws, socket)
            except Exception as error:
                if not await end_on_outage(request, ws, error):
                    raise

        metrics.upgraded(request)  # no response ends it: the socket is counted from here
        try:
            # Sanic's own WebSocket routes call this after their handshake checks; going
            # through it here lets the refusal above be a plain HTTP answer.
            await request.app._websocket_handler(run, request, subprotocols=subprotocols)  # type: ignore[no-untyped-call]
        finally:
            if socket is not None:
                socket.release()


async def end_on_outage(request: Request, ws: WebsocketImplProtocol, error: BaseException) -> bool:
    """Close the socket ``DATABASE_AWAY`` (1013: reconnect and resume) when ``error``
    says the database is away; False (nothing done) for any other error.

    The one place where a socket ends on an error no door handled (checking a key at
    the upgrade, a catch-up's first read): an outage is logged as the REST doors log
    it (one warning per 10 s, ``gateway.errors``), not as a traceback, and the client
    is told to come back rather than seeing a normal 1000 close.
    """
    if database_unavailable(error) is None:
        return False
    note_database_outage(error, request.path)
    with contextlib.suppress(Exception):
        await ws.close(*DATABASE_AWAY)
    return True


def unauthenticated_sockets(app: GatewayApp) -> UnauthenticatedSockets:
    """The app's registry of pending sockets (one per worker, shared by every door)."""
    return app.ctx.unauthenticated_sockets
