"""The spans the gateway makes at its edges: each HTTP request it serves
(``ServerSpans``, the pipeline's two steps), each GraphQL execution
(``traced_execution``, from ``resolvers.engine.runner``) and each HTTP call it makes
(``outgoing_transport``).

Everything here is reached only while tracing is on (``db.tracing.tracer``; set up by
``gateway.tracing``), except ``outgoing_transport``, which then answers None.
Attributes follow OpenTelemetry's HTTP and GraphQL semantic conventions, the required
and the few an operator filters by: the SDK checks each attribute it is given (1-2 µs
apiece here, most of a request's 45-65 µs while on, ``ops/bench/tracing_cost.py``).
The context is read and written with ``db.tracing.propagator`` (``OTEL_PROPAGATORS``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from db import tracing
from gateway.edge import client_address, request_is_https

if TYPE_CHECKING:
    from graphql import ExecutionResult, OperationDefinitionNode
    from sanic import Request
    from sanic.response import BaseHTTPResponse

_PARAMETER = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):\(\?P<\1>(.*?)\)(.*)$")
_REGEX_CHARACTERS = re.compile(r"[\\.^$*+?{}\[\]|()]")
_templates: dict[str, str] = {}
# A client's operation name is its own text (a document may be 64 KB): kept this long.
MAX_NAME_LENGTH = 100


def route_template(path: str) -> str:
    """Sanic's route path as ``http.route``: ``<id:int>`` becomes ``{id}``; a parameter
    whose pattern is a literal (``orders:batchGet``) stays that literal; text after a
    regex group (``<id:(?P<id>...):cancel>``) is kept (``{id}:cancel``)."""
    found = _templates.get(path)
    if found is not None:
        return found
    out: list[str] = []
    depth = 0
    start = 0
    for index, char in enumerate(path):
        if char == "<":
            if depth == 0:
                out.append(path[start:index])
                start = index + 1
            depth += 1
        elif char == ">" and depth:
            depth -= 1
            if depth == 0:
                out.append(_parameter(path[start:index]))
                start = index + 1
    out.append(path[start:])
    template = "/" + "".join(out).lstrip("/")
    if len(_templates) < 10_000:  # routes are few; this only bounds a surprise
        _templates[path] = template
    return template


def _parameter(inside: str) -> str:
    name = inside.partition(":")[0]
    matched = _PARAMETER.match(inside)
    if matched is not None:
        pattern, rest = matched[2], matched[3]
        if pattern and not _REGEX_CHARACTERS.search(pattern):
            return pattern + rest
        return "{" + matched[1] + "}" + rest
    return "{" + name + "}"


def _host_and_port(host: str) -> tuple[str, int | None]:
    """``Host``'s name and port: ``example.com:8443``, ``[2001:db8::1]:443``."""
    if host.startswith("["):
        end = host.find("]")
        address, rest = host[1:end], host[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    elif host.count(":") == 1:
        address, _, port = host.partition(":")
    else:
        address, port = host, ""
    return address, int(port) if port.isdigit() and len(port) <= 5 else None


class ServerSpans:
    """The pipeline's two tracing steps (``gateway.pipeline``): ``begin`` opens the
    request's ``SERVER`` span, its parent the incoming ``traceparent``, and makes it
    current; ``finish`` ends it with the response's status. A WebSocket upgrade's
    span ends once the gateway's own checks let it through (``upgrading``): the
    socket may stay open for hours, its span does not."""

    def begin(self, request: Request) -> None:
        active = tracing.tracer
        if active is None:
            return
        # From an empty context, never the current one: on a keep-alive connection
        # whatever an earlier request left current must not become this one's parent.
        parent = tracing.propagator.extract(request.headers, context=otel_context.Context())
        method = request.method
        route = request.route
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": request.path,
            "url.scheme": "https" if request_is_https(request) else "http",
            "client.address": client_address(request),
        }
        name = method
        if route is not None:
            template = route_template(route.path)
            attributes["http.route"] = template
            name = f"{method} {template}"
        host = request.headers.get("host")
        if host:
            address, port = _host_and_port(host)
            attributes["server.address"] = address
            if port is not None:
                attributes["server.port"] = port
        agent = request.headers.get("user-agent")
        if agent:
            attributes["user_agent.original"] = agent[:512]
        span = active.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes)
        ctx = request.ctx
        ctx.trace_span = span
        ctx.trace_token = otel_context.attach(trace.set_span_in_context(span, parent))

    def upgrading(self, request: Request) -> None:
        """A WebSocket upgrade passed the gateway's checks: its span ends here."""
        self._end(request, None)

    def finish(self, request: Request, response: BaseHTTPResponse) -> None:
        self._end(request, response.status)

    @staticmethod
    def _end(request: Request, status: int | None) -> None:
        ctx = request.ctx
        span = getattr(ctx, "trace_span", None)
        if span is None:
            return
        ctx.trace_span = None
        if status is not None:
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                # the exception's class when the error handler recorded one, else the status
                if "error.type" not in (getattr(span, "attributes", None) or {}):
                    span.set_attribute("error.type", str(status))
                span.set_status(Status(StatusCode.ERROR))
        span.end()
        token = getattr(ctx, "trace_token", None)
        if token is not None:
            ctx.trace_token = None
            otel_context.detach(token)


# -- GraphQL -----------------------------------------------------------------------


async def traced_execution(
    execute: Callable[..., Awaitable[ExecutionResult]],
    operation: OperationDefinitionNode | None,
    *args: Any,
) -> ExecutionResult:
    """``execute(*args)`` in a ``graphql.execute`` span (``resolvers.engine.runner``)."""
    active = tracing.tracer
    if active is None or not trace.get_current_span().is_recording():
        return await execute(*args)  # over a WebSocket: no request span to hang it on
    attributes: dict[str, Any] = {}
    if operation is not None:
        attributes["graphql.operation.type"] = operation.operation.value
        if operation.name is not None:
            attributes["graphql.operation.name"] = operation.name.value[:MAX_NAME_LENGTH]
    with active.start_as_current_span("graphql.execute", attributes=attributes) as span:
        result = await execute(*args)
        if result.errors:
            span.set_attribute("graphql.errors.count", len(result.errors))
        return result


# -- outgoing calls ----------------------------------------------------------------


class TracingTransport(httpx.AsyncBaseTransport):
    """An httpx transport that makes a ``CLIENT`` span per call and sends its context
    (``traceparent``, ``tracestate``, ``baggage``) to the server called."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        active = tracing.tracer
        if active is None:
            return await self._inner.handle_async_request(request)
        url = request.url
        attributes: dict[str, Any] = {
            "http.request.method": request.method,
            "server.address": url.host,
            "url.full": str(url.copy_with(query=None, fragment=None)),
        }
        if url.port is not None:
            attributes["server.port"] = url.port
        with active.start_as_current_span(
            request.method, kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            tracing.propagator.inject(request.headers)
            response = await self._inner.handle_async_request(request)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                span.set_attribute("error.type", str(response.status_code))
                span.set_status(Status(StatusCode.ERROR))
            return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def outgoing_transport(**options: Any) -> httpx.AsyncBaseTransport | None:
    """The transport for an httpx client the gateway calls out with: traced while
    tracing is on, else None (httpx's own default, untouched)."""
    if tracing.tracer is None:
        return None
    return TracingTransport(httpx.AsyncHTTPTransport(**options))
