"""Real-time doors: the change-log relay, this worker's change stream, SSE and JSON WebSocket."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sanic import Blueprint

from realtime import channel, sse
from realtime.asyncapi import add_routes as add_asyncapi
from realtime.hub import Hub
from realtime.relay import Relay
from realtime.tickets import Tickets

if TYPE_CHECKING:
    from gateway.context import GatewayApp


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

    @app.after_server_start
    async def start_stream(app: GatewayApp) -> None:
        tickets.redis = app.ctx.redis
        app.ctx.auth.denylist.on_deny(hub.revoked)
        await hub.start()
        if settings.relay_enabled:
            relay = Relay(
                bus,
                database_url=settings.database_url,
                retention_seconds=settings.change_log_retention_seconds,
            )
            app.ctx.extras["relay"] = relay
            await relay.start()

    @app.before_server_stop
    async def stop_stream(app: GatewayApp) -> None:
        relay = app.ctx.extras.pop("relay", None)
        if relay is not None:
            await relay.stop()
        await hub.stop()

    return hub
