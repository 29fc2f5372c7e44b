"""Liveness and readiness probes.

``/livez`` (and its old name ``/healthz``) says the worker's loop answers and
touches nothing else: a dependency outage must never get a process restarted.
``/readyz`` says whether this worker should get traffic: it is not draining, every
worker of the host serves, the database and Redis answer, the schema is at this
code's newest migration, and the relay keeps the change stream within
``READY_MAX_RELAY_LAG_SECONDS`` of the writes. ``/readyz?exclude=redis`` leaves the
named checks out of the decision (still run and shown): the shipped probes exclude
Redis, without which REST and GraphQL still serve.

Cost is bounded whatever the probe rate: each dependency check has a 2 s timeout,
concurrent probes on a worker share one evaluation in flight (so a flood puts at
most one probe query per worker on the database), the relay's lag is measured at
most once a second, and the schema, once current, is not asked again. The pings
themselves are not cached: an outage shows on the very next probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sanic import HTTPResponse, Request
from sanic.response import json

from db.errors import InvalidArgument
from db.events import oldest_unnumbered_at
from db.setup import pending_migrations, ping_database
from gateway.workers import read_capacity

if TYPE_CHECKING:
    from gateway.context import GatewayApp

log = logging.getLogger("gateway")

PROBE_TIMEOUT = 2.0
# How long a measured relay lag is reused (its one statement reads the unnumbered rows).
LAG_TTL = 1.0
# While the schema is behind, startup waits this long between looks (start_when_migrated).
SCHEMA_RECHECK_SECONDS = 1.0

Report = tuple[bool, dict[str, Any]]


class Readiness:
    """One worker's readiness checks, their cost bounded (see the module docstring).

    ``wall`` (epoch seconds, the clock ``created_at`` is written with) and
    ``monotonic`` are injectable, as are the two database questions, so a test can
    push the lag past the threshold without waiting for it.
    """

    def __init__(
        self,
        app: GatewayApp,
        *,
        max_relay_lag: float,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        pending: Callable[[], Awaitable[list[str]]] = pending_migrations,
        oldest_unnumbered: Callable[[], Awaitable[datetime | None]] = oldest_unnumbered_at,
    ) -> None:
        self.app = app
        self.max_relay_lag = max_relay_lag
        self.wall = wall
        self.monotonic = monotonic
        self.pending = pending
        self.oldest_unnumbered = oldest_unnumbered
        self.schema_current = False
        self._oldest: float | None = None  # epoch seconds of the oldest unnumbered event
        self._lag_measured = -LAG_TTL  # monotonic time of that measurement
        self._running: asyncio.Future[Report] | None = None
        # Starting what needs the schema, once it is current (start_when_migrated).
        self.waiting: asyncio.Task[None] | None = None

    async def stop(self) -> None:
        """Stop waiting for migrations (a shutdown step)."""
        task, self.waiting = self.waiting, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def report(self) -> Report:
        """(ready, body) from the evaluation in flight, or a new one; draining is
        checked for each probe (it costs nothing and must show at once)."""
        running = self._running
        if running is None:
            running = self._running = asyncio.ensure_future(self._evaluate())
            running.add_done_callback(self._finished)
        # Shielded: a prober that hangs up does not cancel the others' answer.
        ready, body = await asyncio.shield(running)
        if not self.app.ctx.shutdown.started:
            return ready, body
        checks = {"worker": "error: shutting down", **body["checks"]}
        return False, {**body, "status": "unavailable", "checks": checks}

    def _finished(self, _: object) -> None:
        self._running = None

    async def schema_pending(self) -> int:
        """How many of this code's migrations the database lacks (0 is remembered)."""
        if self.schema_current:
            return 0
        missing = len(await self.pending())
        if not missing:
            self.schema_current = True
            log.info("the database schema is current")
        return missing

    async def relay_lag(self) -> float:
        """Seconds since the oldest committed event the relay has not numbered (0 if none)."""
        if self.monotonic() - self._lag_measured >= LAG_TTL:
            oldest = await self.oldest_unnumbered()
            self._oldest = None if oldest is None else oldest.timestamp()
            self._lag_measured = self.monotonic()
        return 0.0 if self._oldest is None else max(0.0, self.wall() - self._oldest)

    async def _evaluate(self) -> Report:
        app = self.app
        checks: dict[str, str] = {}
        extra: dict[str, Any] = {}
        try:
            workers = await asyncio.wait_for(read_capacity(app), PROBE_TIMEOUT)
        except Exception as exc:
            checks["workers"] = f"error: {type(exc).__name__}"
        else:
            if workers is not None:
                checks["workers"] = (
                    "ok"
                    if workers.full
                    else f"error: {workers.serving} of {workers.expected} serving"
                )
                extra["workers"] = {
                    "expected": workers.expected,
                    "serving": workers.serving,
                    "restarts": workers.restarts,
                }
        checks["database"] = await _check(ping_database())
        redis = app.ctx.redis
        if redis is not None:
            checks["redis"] = await _check(redis.ping())
        lag: float | None = None
        if checks["database"] == "ok":
            try:
                missing = await asyncio.wait_for(self.schema_pending(), PROBE_TIMEOUT)
            except Exception as exc:
                checks["migrations"] = f"error: {type(exc).__name__}"
            else:
                if missing:
                    checks["migrations"] = f"error: {missing} pending"
                elif self.waiting is not None:  # current now; what needs it is starting
                    checks["migrations"] = "error: starting"
                else:
                    checks["migrations"] = "ok"
            if checks["migrations"] == "ok":
                try:
                    lag = await asyncio.wait_for(self.relay_lag(), PROBE_TIMEOUT)
                except Exception as exc:
                    checks["relay"] = f"error: {type(exc).__name__}"
                else:
                    checks["relay"] = (
                        "ok"
                        if lag <= self.max_relay_lag
                        else f"error: lag {lag:.1f} s over {self.max_relay_lag:g} s"
                    )
        ready = all(value == "ok" for value in checks.values())
        body = {"status": "ok" if ready else "unavailable", "checks": checks, **extra}
        body["relay_lag_seconds"] = None if lag is None else round(lag, 3)
        return ready, body


async def _check(ping: Awaitable[object]) -> str:
    """``ok``, or ``error: <kind>`` (never the message: it may name a host or user)."""
    try:
        await asyncio.wait_for(ping, PROBE_TIMEOUT)
    except Exception as exc:  # any failure means not ready; report its kind only
        return f"error: {type(exc).__name__}"
    return "ok"


async def start_when_migrated(readiness: Readiness, start: Callable[[], Awaitable[None]]) -> None:
    """Run ``start`` (what needs the schema) now if the schema is current, else in the
    background once ``gateway migrate`` has run from elsewhere: the worker serves
    ``/livez`` meanwhile and ``/readyz`` answers 503 ``migrations: error: N pending``.
    """
    missing = await readiness.schema_pending()
    if not missing:
        await start()
        return
    log.warning(
        "the database schema lacks %d migration(s) of this release; not ready until "
        "`gateway migrate` runs",
        missing,
        extra={"pending": missing},
    )

    async def wait_then_start() -> None:
        while True:
            await asyncio.sleep(SCHEMA_RECHECK_SECONDS)
            try:
                if not await readiness.schema_pending():
                    break
            except Exception as exc:  # the database may be away meanwhile; keep looking
                log.debug("schema check failed: %s", type(exc).__name__)
        try:
            await start()
        except Exception:  # the worker stays not ready, as it would have failed to start
            log.exception("could not start once the schema was current")
            return
        readiness.waiting = None

    readiness.waiting = asyncio.create_task(wait_then_start(), name="start-when-migrated")


def setup_health(app: GatewayApp) -> Readiness:
    readiness = Readiness(app, max_relay_lag=app.ctx.settings.ready_max_relay_lag_seconds)
    app.ctx.shutdown.add_step("waiting for migrations", readiness.stop)

    async def livez(request: Request) -> HTTPResponse:
        """Alive: the worker answers. Never touches a dependency."""
        return json({"status": "ok"})

    app.add_route(livez, "/livez", methods=["GET", "HEAD"], name="livez")
    # The old name, kept for probes and scripts that use it.
    app.add_route(livez, "/healthz", methods=["GET", "HEAD"], name="healthz")

    @app.route("/readyz", methods=["GET", "HEAD"], name="readyz")
    async def readyz(request: Request) -> HTTPResponse:
        """Ready: see the module docstring; 503 names the failing checks.
        ``?exclude=redis`` (repeatable, or comma-separated; Kubernetes' convention) still
        runs and shows a check but does not let it decide."""
        excluded = _excluded(request)
        ready, body = await readiness.report()
        if excluded:
            checks = body["checks"]
            ready = all(v == "ok" for k, v in checks.items() if k not in excluded)
            body = {**body, "status": "ok" if ready else "unavailable", "excluded": excluded}
        return json({**body, **_realtime(app)}, status=200 if ready else 503)

    return readiness


# Checks a probe may leave out of its decision; draining (``worker``) never is.
EXCLUDABLE = ("workers", "database", "redis", "migrations", "relay")


def _excluded(request: Request) -> list[str]:
    names = sorted(
        {
            name.strip()
            for value in request.args.getlist("exclude", [])
            for name in value.split(",")
            if name.strip()
        }
    )
    unknown = [name for name in names if name not in EXCLUDABLE]
    if unknown:
        raise InvalidArgument(
            f"exclude: {unknown[0][:40]!r} is not a check; use {', '.join(EXCLUDABLE)}"
        )
    return names


def _realtime(app: GatewayApp) -> dict[str, Any]:
    """This worker's part in the change stream (information, not a check)."""
    hub, relay = app.ctx.hub, app.ctx.relay
    return {
        "worker": {"pid": os.getpid()},
        "realtime": {
            "relay": "leading" if relay is not None and relay.leading else "standby",
            "stream_position": hub.head,
            "connections": hub.connections,
        },
    }
