"""The gateway's request and response middleware: one of each, calling every module's
step in a fixed order.

Sanic dispatches each registered middleware through a wrapper, an awaitable check and
an await (about 2-3 µs apiece, measured on a bare Sanic app); seven of them cost a
single-row read about a twentieth of its time. The steps stay in their modules; this
is only the order they run in:

request   1. ``Drain.on_request``: ``Connection: close`` while draining, so that any
             response, a refusal made by a later step included, says so
          2. ``Edge.begin``: the request id and start time
          3. ``ServerSpans.begin`` (while tracing is on): the request's span, current
             from here on
          4. on a WebSocket upgrade only: ``Cors.socket_refusal`` (403 for a page on
             an origin not allowed), then ``Throttle.charge_upgrade`` (429), then
             ``ServerSpans.upgrading``: the upgrade's span ends (the socket's hours
             are not one span)
          5. the route's door step, if its door registered one
             (``AppContext.door_steps``: REST negotiates and authenticates there)
response  1. ``Edge.finish``: request id, security, caching and rate-limit headers,
             the access log line
          2. ``Cors.decorate`` (when CORS is on)
          3. ``compress_response``: it sees the final body
          4. ``ServerSpans.finish`` (while tracing is on): the span ends with the status

While tracing is off (``gateway.tracing``: no ``OTEL_*`` configuration) each of
the two middleware checks ``db.tracing.tracer`` once and does nothing more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from db import tracing
from gateway.compression import compress_response
from gateway.edge import Edge
from gateway.http1_headers import install_header_fast_path
from gateway.spans import ServerSpans

if TYPE_CHECKING:
    from sanic import HTTPResponse, Request
    from sanic.response import BaseHTTPResponse

    from gateway.context import GatewayApp


def setup_pipeline(app: GatewayApp) -> None:
    ctx = app.ctx
    drain, cors, throttle = ctx.shutdown.drain, ctx.cors, ctx.throttle
    door_steps = ctx.door_steps
    edge = Edge(ctx.settings)
    decorate = cors.decorate if cors.enabled else None
    spans = ServerSpans()
    install_header_fast_path()

    async def on_request(request: Request) -> HTTPResponse | None:
        drain.on_request(request)
        edge.begin(request)
        if tracing.tracer is not None:
            spans.begin(request)
        if request.headers.get("upgrade", "").lower() == "websocket":
            refusal = cors.socket_refusal(request)
            if refusal is not None:
                return refusal
            await throttle.charge_upgrade(request)
            spans.upgrading(request)
        route = request.route
        if route is not None:
            step = door_steps.get(route.name)
            if step is not None:
                await step(request)
        return None

    async def on_response(request: Request, response: BaseHTTPResponse) -> None:
        edge.finish(request, response)
        if decorate is not None:
            decorate(request, response)
        await compress_response(request, response)
        if tracing.tracer is not None:
            spans.finish(request, response)

    app.register_middleware(on_request, "request", priority=1000)
    app.register_middleware(on_response, "response", priority=1000)
