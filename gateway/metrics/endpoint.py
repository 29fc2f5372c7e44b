"""``GET /metrics``: who may read it, what one app adds, and the workers' files.

Open to loopback clients: the connection's peer is loopback and so is the client
the access log shows (behind a trusted proxy on this host, the client's, so a request
a proxy forwards from elsewhere is not loopback; a trusted proxy elsewhere cannot make
itself loopback by saying so in ``X-Forwarded-For``). Anyone else sends
``Authorization: Bearer <METRICS_TOKEN>``. Without credentials: 401
``METRICS_TOKEN_REQUIRED``; with a wrong token, or when no token is configured: 403
``METRICS_FORBIDDEN``, counted against the address's refused-credentials limit
(``RATE_LIMIT_AUTH_FAILURES``) like any refused credential, then 429. The route is not a REST
resource and is not in the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from sanic import HTTPResponse, Request

from db.errors import PermissionDenied, Unauthenticated
from gateway.edge import client_address
from gateway.metrics import (
    CACHE_REQUESTS,
    DB_POOL,
    DB_POOL_WAITS,
    REDIS_FALLBACK,
    REDIS_RECONNECTS,
    RELAY_LEADER,
)
from gateway.metrics.export import (
    DIR_ENV,
    FLUSH_SECONDS,
    Exchange,
    Snapshot,
    families,
    merge,
    snapshot,
)

if TYPE_CHECKING:
    from gateway.context import GatewayApp

log = logging.getLogger("gateway.metrics")
RETIRE_EVERY = 60  # flushes: each worker looks for dead workers' files about once a minute


class MetricsTokenRequired(Unauthenticated):
    code = "METRICS_TOKEN_REQUIRED"


class MetricsForbidden(PermissionDenied):
    code = "METRICS_FORBIDDEN"


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def check_access(
    address: str, authorization: str | None, token: str | None, *, peer: str | None = None
) -> None:
    """Raise unless the client (``address``, and the socket's ``peer`` when given) is
    loopback or ``authorization`` carries ``token``."""
    if _loopback(address) and (peer is None or _loopback(peer)):
        return
    if not authorization:
        raise MetricsTokenRequired("metrics: send Authorization: Bearer <METRICS_TOKEN>")
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise MetricsTokenRequired("metrics: send Authorization: Bearer <METRICS_TOKEN>")
    if not token or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise MetricsForbidden("metrics: this token may not read the metrics")


def _pool() -> dict[tuple[Any, ...], float]:
    """The database pool of this process: in use, idle and its maximum.

    PostgreSQL: asyncpg's pool; connections the gateway keeps between reads count
    as idle. SQLite: one connection, in use while a transaction holds it.
    """
    from db.pg import GatewayAsyncpgClient
    from db.sql import client
    from db.sqlite import GatewaySqliteClient

    try:
        connection = client()
    except Exception:  # not opened (yet, or any more)
        return {}
    if isinstance(connection, GatewayAsyncpgClient):
        pool = connection._pool
        if pool is None:
            return {}
        kept = len(getattr(connection, "_kept", ()))
        idle = pool.get_idle_size() + kept
        in_use = max(0, pool.get_size() - idle)
        return {("in_use",): in_use, ("idle",): idle, ("max",): pool.get_max_size()}
    if isinstance(connection, GatewaySqliteClient):
        lock = getattr(connection, "_lock", None)
        busy = 1 if lock is not None and lock.locked() else 0
        return {("in_use",): busy, ("idle",): 1 - busy, ("max",): 1}
    return {}


def pull(app: GatewayApp) -> Snapshot:
    """What this app's components say now (gauges and counters they keep themselves)."""
    from db.pg import PoolWaits

    ctx = app.ctx
    relay = ctx.relay
    limiter = ctx.throttle.limiter
    fallback = {
        ("ratelimit",): float(limiter._redis is not None and not limiter._redis_up),
        ("bus",): float(ctx.bus.url.startswith("redis") and ctx.bus.outage.down),
    }
    documents = ctx.graphql.cache if ctx.graphql is not None else None
    return {
        CACHE_REQUESTS.name: {
            ("graphql_documents", "hit"): float(documents.hits if documents else 0),
            ("graphql_documents", "miss"): float(documents.misses if documents else 0),
        },
        RELAY_LEADER.name: {(): 1.0 if relay is not None and relay.leading else 0.0},
        DB_POOL.name: _pool(),
        DB_POOL_WAITS.name: {(): float(PoolWaits.count)},
        REDIS_RECONNECTS.name: {(): float(ctx.bus.reconnects)},
        REDIS_FALLBACK.name: fallback,
    }


class Scrape(Collector):
    """The collector of one app's registry: its numbers, and the other workers'."""

    def __init__(self, app: GatewayApp, exchange: Exchange | None) -> None:
        self.app = app
        self.exchange = exchange

    def collect(self) -> Iterator[Metric]:
        mine = snapshot(pull(self.app))
        if self.exchange is None:
            return families(mine)
        return families(merge([(mine, True), *self.exchange.others()]))


def metrics_directory() -> Path | None:
    """The directory the serving process made for its workers' files, if any."""
    value = os.environ.get(DIR_ENV)
    return Path(value) if value and Path(value).is_dir() else None


def setup_metrics(app: GatewayApp) -> None:
    settings = app.ctx.settings
    directory = metrics_directory()
    exchange = Exchange(directory) if directory is not None else None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Scrape(app, exchange))
    PlatformCollector(registry=registry)
    if exchange is None:  # one process: its own numbers are the host's
        ProcessCollector(registry=registry)

    throttle = app.ctx.throttle

    async def metrics(request: Request) -> HTTPResponse:
        address = client_address(request)
        authorization = request.headers.get("authorization")
        if authorization and not _loopback(address):
            throttle.check_address(request)  # 429 once its refused credentials ran out
        try:
            check_access(address, authorization, settings.metrics_token, peer=request.ip or "")
        except MetricsForbidden:
            await throttle.credential_refused(request)
            raise
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        # HEAD: Sanic sends the headers of this answer without its body
        return HTTPResponse(encoder(registry), content_type=content_type)

    app.add_route(metrics, "/metrics", methods=["GET", "HEAD"], name="metrics")

    if settings.workers > 1:

        @app.main_process_start
        async def make_directory(app: GatewayApp) -> None:
            # Before the workers start: they find it in their environment.
            os.environ[DIR_ENV] = tempfile.mkdtemp(prefix="gateway-metrics-")

        @app.main_process_stop
        async def remove_directory(app: GatewayApp) -> None:
            path = os.environ.pop(DIR_ENV, None)
            if path:
                shutil.rmtree(path, ignore_errors=True)

    if exchange is None:
        return

    async def flush() -> None:
        rounds = 0
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            rounds += 1
            try:
                exchange.write(snapshot(pull(app)))
                if rounds % RETIRE_EVERY == 0:
                    exchange.retire()
            except OSError as error:  # the directory went away: the scrape says less
                log.warning("could not write this worker's metrics: %s", error)

    flusher: list[asyncio.Task[None]] = []

    @app.after_server_start
    async def start_flushing(app: GatewayApp) -> None:
        exchange.write(snapshot(pull(app)))
        flusher.append(asyncio.create_task(flush(), name="metrics-flush"))

    async def stop_flushing() -> None:
        for task in flusher:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        flusher.clear()
        with contextlib.suppress(OSError):
            exchange.write(snapshot(pull(app)), stopped=True)

    app.ctx.shutdown.add_close("the metrics flusher", stop_flushing)
