"""The typed application context: everything a worker holds, built by the factory.

Every field is set by ``gateway.app.create_app`` or by the ``setup`` of the package
that owns it (named beside each field); nothing is looked up by a string key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sanic import Sanic
from sanic.config import Config

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sanic import Request

    from gateway.auth import Authenticator
    from gateway.cors import Cors
    from gateway.errors import ProblemNegotiator
    from gateway.settings import Settings
    from gateway.shutdown import Shutdown
    from gateway.throttling import Throttle
    from gateway.workers import WorkerWatch
    from realtime.admission import UnauthenticatedSockets
    from realtime.bus import EventBus
    from realtime.hub import Hub
    from realtime.relay import Relay
    from realtime.webhooks import Dispatcher
    from resolvers.engine import Runner


@dataclass
class AppContext:
    settings: Settings
    auth: Authenticator
    bus: EventBus
    throttle: Throttle
    cors: Cors
    # The ordered stop of this worker; its ``drain`` ends keep-alive (gateway/shutdown.py).
    shutdown: Shutdown
    # This worker's change stream, shared by every real-time door (realtime/hub.py).
    hub: Hub
    # Sockets that have not authenticated yet, for every WebSocket door (realtime/admission.py).
    unauthenticated_sockets: UnauthenticatedSockets
    redis: Redis | None = None
    # How an error answer is rendered for a client that asked for another format (rest/).
    problem_negotiator: ProblemNegotiator | None = None
    # The change-log relay candidate, once started (realtime/).
    relay: Relay | None = None
    # The webhook dispatcher candidate (realtime/webhooks); None when disabled.
    webhooks: Dispatcher | None = None
    # Starting the change stream and relay in the background (realtime/).
    realtime_start: asyncio.Task[None] | None = None
    # Flushing buffered log records (gateway/app.py).
    log_flusher: asyncio.Task[None] | None = None
    # The manager process's watch over its workers; None in a worker (gateway/workers.py).
    worker_watch: WorkerWatch | None = None
    # What runs GraphQL documents: their cache and the engine (resolvers/http.py).
    graphql: Runner | None = None
    # A door's own request step, by route name, run after the edge's (gateway/pipeline.py):
    # REST authenticates in one. One middleware dispatch instead of one per blueprint.
    door_steps: dict[str, Callable[[Request], Awaitable[None]]] = field(default_factory=dict)


GatewayApp = Sanic[Config, AppContext]
