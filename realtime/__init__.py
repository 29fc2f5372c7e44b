"""Real-time doors: the change-log relay, this worker's change stream, SSE and JSON WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from sanic import Blueprint

from db.events import local_commits
from realtime import channel, sse
from realtime.asyncapi import add_routes as add_asyncapi
from realtime.close_codes import GOING_AWAY
from realtime.hub import Hub
from realtime.outage import Outage
from realtime.relay import Relay
from realtime.tickets import Tickets

if TYPE_CHECKING:
    from gateway.context import GatewayApp

log = logging.getLogger("gateway.realtime")


def setup_realtime(app: GatewayApp) -> Hub:
    """Mount ``/api/v1/events``, ``/api/v1/realtime`` and ``/api/v1/asyncapi.json``.

    Every worker runs a change stream (``Hub``) and a ``Relay`` candidate: one
    relay per installation works, the others stand by (see realtime/relay.py).
    """
    settings = app.ctx.settings
    bus = app.ctx.bus
    hub = app.ctx.hub
    tickets = Tickets()
    bp = Blueprint("realtime", url_prefix="/api/v1")
    sse.add_routes(bp, app, hub, tickets)
    channel.add_routes(bp, app, hub)
    add_asyncapi(bp, app)
    app.blueprint(bp)

    async def start(app: GatewayApp) -> None:
        # Retried in the background: the server may already answer requests, and
        # the database may be briefly away; subscribers wait for the stream.
        outage = Outage(log, "change stream: starting")
        while True:
            try:
                await hub.start()
                break
            except asyncio.CancelledError:
                raise
            except Exception as error:
                outage.failed(error)
                await asyncio.sleep(1.0)
        outage.succeeded()
        if settings.relay_enabled:
            relay = Relay(
                bus,
                database_url=settings.database_url,
                retention_seconds=settings.change_log_retention_seconds,
                commits=local_commits(),
                connect_timeout=settings.database_connect_timeout_seconds,
            )
            app.ctx.relay = relay
            await relay.start()

    @app.after_server_start
    async def start_stream(app: GatewayApp) -> None:
        tickets.redis = app.ctx.redis
        app.ctx.auth.denylist.on_deny(hub.revoked)
        app.ctx.realtime_start = asyncio.create_task(start(app), name="realtime-start")

    async def close_sockets() -> None:
        # First, so that nothing slower below keeps clients waiting: 1001 tells
        # them to reconnect (to another worker or host) and resume.
        hub.close_all(*GOING_AWAY)
        starting, app.ctx.realtime_start = app.ctx.realtime_start, None
        if starting is not None and not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting

    async def stop_relay() -> None:
        # Closing its connection releases the lock: a standby takes over within
        # its takeover interval (a second).
        relay, app.ctx.relay = app.ctx.relay, None
        if relay is not None:
            await relay.stop()

    shutdown = app.ctx.shutdown
    shutdown.add_step("closing event streams and sockets (1001)", close_sockets)
    shutdown.add_step("the change-log relay", stop_relay)
    shutdown.add_step("the change stream", hub.stop)

    return hub
