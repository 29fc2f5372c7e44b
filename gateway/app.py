"""The application factory: the one place that knows every package."""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging

from sanic import Sanic
from sanic.config import Config

from db.setup import close_database, open_database
from gateway.auth import Authenticator
from gateway.auth.routes import setup_oauth
from gateway.auth.server import OAuthServer
from gateway.connections import Drain, setup_connections
from gateway.context import AppContext, GatewayApp
from gateway.cors import Cors
from gateway.dashboard import setup_dashboard
from gateway.docs_ui import setup_docs_ui
from gateway.errors import setup_errors
from gateway.health import setup_health, start_when_migrated
from gateway.logs import configure_logging, flush_periodically
from gateway.metrics.endpoint import setup_metrics
from gateway.observability import setup_sentry
from gateway.pipeline import setup_pipeline
from gateway.redis_client import redis_client
from gateway.settings import Settings, load_settings
from gateway.shutdown import Shutdown
from gateway.throttling import Throttle
from gateway.tracing import setup_tracing
from gateway.workers import setup_workers
from realtime import setup_realtime
from realtime.admission import UnauthenticatedSockets
from realtime.bus import EventBus
from realtime.hub import Hub
from realtime.sse import OPENAPI_PATHS as SSE_OPENAPI_PATHS
from realtime.webhooks import setup_webhooks
from resolvers.http import setup_graphql
from rest import setup_rest

log = logging.getLogger("gateway")
GC_GEN0_THRESHOLD = 10_000
_names = itertools.count()


def create_app(settings: Settings | None = None, *, name: str | None = None) -> GatewayApp:
    """Build the gateway for ``settings`` (read from the environment when omitted)."""
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)
    setup_sentry(settings)
    config = Config()
    config.update(
        {
            "REQUEST_MAX_SIZE": settings.max_body_bytes,
            "WEBSOCKET_MAX_SIZE": settings.max_body_bytes,
            "AUTO_EXTEND": False,
            "OAS": False,
            "CORS": False,
            "ACCESS_LOG": False,
            "MOTD": False,
            "FALLBACK_ERROR_FORMAT": "json",
        }
    )
    number = next(_names)
    # Built now (it connects lazily), so every component set up below can hold it
    # from the start instead of waiting for a startup listener.
    redis = redis_client(settings.redis_url) if settings.redis_url else None
    auth = Authenticator(settings)
    bus = EventBus(settings.event_bus_url)
    shutdown = Shutdown(settings.shutdown_timeout_seconds, Drain())
    app: GatewayApp = Sanic(
        name or ("gateway" if number == 0 else f"gateway_{number}"),
        config=config,
        ctx=AppContext(
            settings=settings,
            auth=auth,
            bus=bus,
            throttle=Throttle(settings, redis, auth),
            cors=Cors(settings),
            shutdown=shutdown,
            hub=Hub(bus, mailbox_limit=settings.realtime_queue_limit),
            unauthenticated_sockets=UnauthenticatedSockets(settings),
            redis=redis,
        ),
        configure_logging=False,
    )
    # First, so that its request middleware runs before any other may answer.
    setup_connections(app)
    setup_pipeline(app)
    setup_errors(app)
    readiness = setup_health(app)
    setup_metrics(app)
    setup_workers(app)
    setup_docs_ui(app)
    setup_dashboard(app)
    oauth = OAuthServer(settings, app.ctx.auth.tokens)
    setup_oauth(app, oauth)
    api_doc = setup_rest(app)
    api_doc.paths.update(SSE_OPENAPI_PATHS)
    hub = setup_realtime(app)
    setup_webhooks(app)
    setup_graphql(app, hub)

    @app.before_server_start
    async def open_resources(app: GatewayApp) -> None:
        await open_database(settings.tortoise_url)
        if app.ctx.redis is not None:
            await app.ctx.redis.ping()
        await app.ctx.bus.connect()
        # Against a schema behind this release, the worker serves (not ready) until
        # `gateway migrate` runs elsewhere; what reads the schema then starts.
        await start_when_migrated(readiness, lambda: app.ctx.auth.start(app.ctx.redis))

    @app.after_server_start
    async def tune_gc(app: GatewayApp) -> None:
        # Startup objects (routes, models, schemas) live for the whole process:
        # freezing them keeps every later collection from re-scanning them, and a
        # higher gen-0 threshold trades a little memory for fewer collections on
        # the request path (see docs/decisions.md).
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_GEN0_THRESHOLD, 20, 20)

    @app.after_server_start
    async def start_log_flusher(app: GatewayApp) -> None:
        app.ctx.log_flusher = asyncio.create_task(flush_periodically())

    async def stop_log_flusher() -> None:
        task, app.ctx.log_flusher = app.ctx.log_flusher, None
        if task is not None:
            task.cancel()
        for handler in logging.getLogger().handlers:
            handler.flush()

    shutdown.add_step("the log flusher", stop_log_flusher)
    shutdown.add_close("authentication (the revocation listener)", app.ctx.auth.stop)
    shutdown.add_close("the event bus", app.ctx.bus.disconnect)
    if app.ctx.redis is not None:
        shutdown.add_close("Redis", app.ctx.redis.aclose)
    shutdown.add_close("the database", close_database)
    setup_tracing(app)  # when OTEL_* asks for it; its flush is the last close
    # The only stop listeners: the order of the steps is Shutdown's (gateway/shutdown.py).
    app.before_server_stop(shutdown.run)
    app.after_server_stop(shutdown.close)
    return app
