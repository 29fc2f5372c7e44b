"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

from sanic import HTTPResponse, Request
from sanic.response import json

from db.setup import ping_database
from gateway.workers import read_capacity

if TYPE_CHECKING:
    from gateway.context import GatewayApp

PROBE_TIMEOUT = 2.0


def setup_health(app: GatewayApp) -> None:
    @app.route("/healthz", methods=["GET", "HEAD"], name="healthz")
    async def healthz(request: Request) -> HTTPResponse:
        """Alive: the worker answers. Never touches a dependency."""
        return json({"status": "ok"})

    @app.route("/readyz", methods=["GET", "HEAD"], name="readyz")
    async def readyz(request: Request) -> HTTPResponse:
        """Ready: not shutting down, every worker of the host serving, and the
        database (and Redis, when configured) answering within 2 s."""
        checks: dict[str, str] = {}
        extra: dict[str, Any] = {}
        if app.ctx.shutdown.started:
            checks["worker"] = "error: shutting down"
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
        try:
            await asyncio.wait_for(ping_database(), PROBE_TIMEOUT)
            checks["database"] = "ok"
        except Exception as exc:  # any failure means not ready; report its kind only
            checks["database"] = f"error: {type(exc).__name__}"
        redis = app.ctx.redis
        if redis is not None:
            try:
                await asyncio.wait_for(redis.ping(), PROBE_TIMEOUT)
                checks["redis"] = "ok"
            except Exception as exc:
                checks["redis"] = f"error: {type(exc).__name__}"
        ready = all(value == "ok" for value in checks.values())
        return json(
            {
                "status": "ok" if ready else "unavailable",
                "checks": checks,
                **extra,
                **_realtime(app),
            },
            status=200 if ready else 503,
        )


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
