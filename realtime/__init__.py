"""Real-time doors: the change-log relay, this worker's change stream, SSE and JSON WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from sanic import Blueprint

from realtime import channel, sse
from realtime.asyncapi import add_routes as add_asyncapi
from realtime.hub import GOING_AWAY, Hub
from realtime.outage import Outage
from realtime.relay import Relay
from realtime.tickets import Tickets

if TYPE_CHECKING:
    from gateway.context import GatewayApp

log = logging.getLogger("gateway.realtime")

STOP_SECONDS = 5.0


async def _bounded(step: Coroutine[Any, Any, None], what: str) -> None:
    """Run a shutdown step for at most ``STOP_SECONDS``; past that, log it and go on."""
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=STOP_SECONDS)
    if done:
        task.result()
        return
    task.cancel()
    log.error("%s did not stop within %s s; shutting down without it", what, STOP_SECONDS)


def setup_realtime(app: GatewayApp) -> Hub:
    """Mount ``/api/v1/events``, ``/api/v1/realtime`` and ``/api/v1/asyncapi.json``.

    Every worker runs a change stream (``Hub``) and a ``Relay`` candidate: one
    relay per installation works, the others stand by (see realtime/relay.py).
    """
    settings = app.ctx.settings
    bus = app.ctx.bus
    hub = Hub(bus, mailbox_limit=settings.realtime_queue_limit)
    tickets = Tickets()
    app.ctx.extras["hub"] = hub
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
            )
            app.ctx.extras["relay"] = relay
            await relay.start()

    @app.after_server_start
    async def start_stream(app: GatewayApp) -> None:
        tickets.redis = app.ctx.redis
        app.ctx.auth.denylist.on_deny(hub.revoked)
        app.ctx.extras["realtime_start"] = asyncio.create_task(start(app), name="realtime-start")

    @app.before_server_stop
    async def stop_stream(app: GatewayApp) -> None:
        starting = app.ctx.extras.pop("realtime_start", None)
        if starting is not None and not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        # Sockets first (1001: reconnect elsewhere and resume), so that nothing
        # slower below can keep clients waiting; each step then gets a bound.
        hub.close_all(*GOING_AWAY)
        relay = app.ctx.extras.pop("relay", None)
        if relay is not None:
            await _bounded(relay.stop(), "the change-log relay")
        await _bounded(hub.stop(), "the change stream")

    return hub
