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

What makes spans: ``gateway.spans`` (one ``SERVER`` span per request, GraphQL
execution, calls the gateway makes with httpx), ``db.tracing`` (SQL),
``resolvers.engine.runner`` (GraphQL parse and validate), ``realtime.tracing`` (the
relay's batch, the bus publish, each delivery).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from db import tracing

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from gateway.context import GatewayApp

TRACER_NAME = "gateway"
DEFAULT_SERVICE_NAME = "gateway"
FLUSH_SECONDS = 1.5  # the last close's share of CLOSE_SECONDS (gateway/shutdown.py)
PROTOCOLS = ("grpc", "http/protobuf")


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
    if propagator is not None:
        tracing.propagator = propagator
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
