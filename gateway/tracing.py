"""OpenTelemetry traces, configured by the standard ``OTEL_*`` variables; off when unset.

On when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``, ``console``) or an
OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``); ``OTEL_SDK_DISABLED=true`` or
``OTEL_TRACES_EXPORTER=none`` keep it off. The OTLP protocol is
``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_PROTOCOL`` (``grpc`` or
``http/protobuf``, the default); the exporters read their own endpoint, headers,
timeout and certificate variables, the provider ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_TRACES_SAMPLER(_ARG)``, the batch processor
``OTEL_BSP_*``; ``OTEL_PROPAGATORS`` (default ``tracecontext,baggage``) picks how
context is read from requests and written into outgoing calls. A bad value stops
``create_app``, so ``gateway serve`` fails at once rather than each worker.

Off, nothing is installed: no listener, no provider, and each request pays one
check of ``db.tracing.tracer`` in each of the pipeline's two middleware. On, every
worker builds its own ``TracerProvider`` with a ``BatchSpanProcessor`` in
``before_server_start`` (after the fork: the processor's thread would not survive
it) and flushes it as the last of its closes (``gateway/shutdown.py``), in a
thread of its own, so a collector that does not answer cannot hold the worker
past its bound. Exports run in the processor's thread; a failed export is logged
by the SDK and never reaches a request.

What makes spans: ``ServerSpans`` (the pipeline's steps, one ``SERVER`` span per
request), ``db.tracing`` (SQL), ``resolvers.engine.runner`` (GraphQL parse,
validate, execute), ``realtime.tracing`` (the relay's batch, the bus publish, each
delivery), and ``outgoing_transport`` (calls the gateway makes with httpx).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import httpx
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from db import tracing
from gateway.edge import client_address, request_is_https

if TYPE_CHECKING:
    from graphql import ExecutionResult, OperationDefinitionNode
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from sanic import Request
    from sanic.response import BaseHTTPResponse

    from gateway.context import GatewayApp

log = logging.getLogger("gateway")

TRACER_NAME = "gateway"
DEFAULT_SERVICE_NAME = "gateway"
FLUSH_SECONDS = 1.5  # the last close's share of CLOSE_SECONDS (gateway/shutdown.py)
PROTOCOLS = ("grpc", "http/protobuf")

# How context is read from requests and written into outgoing calls (OTEL_PROPAGATORS).
_propagator: TextMapPropagator = CompositePropagator(
    [TraceContextTextMapPropagator(), W3CBaggagePropagator()]
)


class TracingConfigError(ValueError):
    """An ``OTEL_*`` value the gateway cannot honour (stops startup)."""


def _listed(value: str) -> list[str]:
    return [name.strip().lower() for name in value.split(",") if name.strip()]


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """The span exporters the environment asks for; ``[]`` means tracing is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = environ.get("OTEL_TRACES_EXPORTER", "").strip()
    if named:
        return [name for name in _listed(named) if name != "none"]
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return ["otlp"] if endpoint and endpoint.strip() else []


def otlp_protocol(environ: Mapping[str, str]) -> str:
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol not in PROTOCOLS:
        raise TracingConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: use one of {', '.join(PROTOCOLS)}"
        )
    return protocol


def build_exporter(name: str, environ: Mapping[str, str]) -> SpanExporter:
    """One ``OTEL_TRACES_EXPORTER`` entry; the exporter reads its own ``OTEL_*`` options."""
    if name == "otlp":
        if otlp_protocol(environ) == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
                OTLPSpanExporter,
            )
        return OTLPSpanExporter()
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    raise TracingConfigError(f"OTEL_TRACES_EXPORTER={name!r}: use otlp, console or none")


def build_propagator(environ: Mapping[str, str]) -> TextMapPropagator:
    """``OTEL_PROPAGATORS``: the W3C pair built in, others by their entry point."""
    names = _listed(environ.get("OTEL_PROPAGATORS", "") or "tracecontext,baggage")
    found: list[TextMapPropagator] = []
    for name in names:
        if name == "none":
            continue
        if name == "tracecontext":
            found.append(TraceContextTextMapPropagator())
        elif name == "baggage":
            found.append(W3CBaggagePropagator())
        else:
            points = entry_points(group="opentelemetry_propagator", name=name)
            point = next(iter(points), None)
            if point is None:
                raise TracingConfigError(f"OTEL_PROPAGATORS: no propagator named {name!r}")
            found.append(point.load()())
    return CompositePropagator(found)


def build_provider(exporters: list[SpanExporter], *, batch: bool = True) -> TracerProvider:
    """A provider with the environment's resource and sampler, exporting to ``exporters``."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    resource = Resource.create()  # OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    for exporter in exporters:
        processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        provider.add_span_processor(processor)
    return provider


def start(provider: TracerProvider, propagator: TextMapPropagator | None = None) -> None:
    """Turn tracing on in this process, with ``provider``'s tracer."""
    global _propagator
    if propagator is not None:
        _propagator = propagator
    tracing.tracer = provider.get_tracer(TRACER_NAME)


def stop() -> None:
    """Turn tracing off in this process (spans already ended are kept by the provider)."""
    tracing.tracer = None


@contextlib.contextmanager
def recording(exporter: SpanExporter) -> Iterator[TracerProvider]:
    """The tests' hook: trace into ``exporter`` (each span as it ends) while inside."""
    provider = build_provider([exporter], batch=False)
    start(provider, CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()]))
    try:
        yield provider
    finally:
        stop()
        provider.shutdown()


async def _shut_down(provider: TracerProvider) -> None:
    """Flush and stop ``provider`` in a daemon thread; wait at most ``FLUSH_SECONDS``.

    The SDK's shutdown blocks (up to 30 s while a collector does not answer): on the
    loop it would stall the worker, in the default executor it would hold the exit.
    """
    import asyncio

    stop()
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def finished() -> None:
        if not done.done():
            done.set_result(None)

    def run() -> None:
        try:
            provider.shutdown()
        finally:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
                loop.call_soon_threadsafe(finished)

    threading.Thread(target=run, name="otel-shutdown", daemon=True).start()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(FLUSH_SECONDS):
            await done


def setup_tracing(app: GatewayApp, environ: Mapping[str, str] | None = None) -> bool:
    """Install tracing for ``app``'s workers if the environment asks for it.

    Reads and checks the variables now (a bad value stops startup); builds the
    provider only in each worker, after the fork. Returns whether it is on.
    """
    environ = os.environ if environ is None else environ
    names = exporter_names(environ)
    if not names:
        return False
    for name in names:
        if name not in ("otlp", "console"):
            raise TracingConfigError(f"OTEL_TRACES_EXPORTER={name!r}: use otlp, console or none")
    if "otlp" in names:
        otlp_protocol(environ)
    propagator = build_propagator(environ)
    state: dict[str, TracerProvider] = {}

    async def begin(app: GatewayApp) -> None:
        provider = build_provider([build_exporter(name, environ) for name in names])
        state["provider"] = provider
        trace.set_tracer_provider(provider)  # for any library that traces through the API
        start(provider, propagator)

    async def end() -> None:
        provider = state.pop("provider", None)
        if provider is not None:
            await _shut_down(provider)

    app.before_server_start(begin)
    app.ctx.shutdown.add_close("traces (the last spans flushed)", end)
    return True


# -- server spans ------------------------------------------------------------------

_PARAMETER = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):\(\?P<\1>(.*?)\)(.*)$")
_REGEX_CHARACTERS = re.compile(r"[\\.^$*+?{}\[\]|()]")
_templates: dict[str, str] = {}


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
        parent = _propagator.extract(request.headers, context=otel_context.Context())
        method = request.method
        route = request.route
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": request.path,
            "url.scheme": "https" if request_is_https(request) else "http",
            "client.address": client_address(request),
            "network.peer.address": request.ip or "",
            "network.protocol.version": request.version,
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
            attributes["graphql.operation.name"] = operation.name.value
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
            _propagator.inject(request.headers)
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
