"""Webhooks: the change log delivered to organizations' HTTPS endpoints (Standard Webhooks).

``setup_webhooks`` gives every worker process a dispatcher candidate that starts
beside the relay and stops in the shutdown's order; one per installation leads
(``dispatcher.py``). The endpoints' API is the REST/GraphQL resource of
``db/webhooks.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from realtime.webhooks.dispatcher import Dispatcher, Policy

if TYPE_CHECKING:
    from gateway.context import GatewayApp

__all__ = ["Dispatcher", "Policy", "setup_webhooks"]


def setup_webhooks(app: GatewayApp) -> None:
    """Start a dispatcher candidate after the server starts (``WEBHOOK_DISPATCHER_ENABLED``)."""
    settings = app.ctx.settings
    if not settings.webhook_dispatcher_enabled:
        return
    dispatcher = Dispatcher(
        app.ctx.bus,
        database_url=settings.database_url,
        policy=Policy.from_settings(settings),
        connect_timeout=settings.database_connect_timeout_seconds,
    )
    app.ctx.webhooks = dispatcher

    @app.after_server_start
    async def start_webhooks(app: GatewayApp) -> None:
        await dispatcher.start()

    app.ctx.shutdown.add_step("the webhook dispatcher", dispatcher.stop)
