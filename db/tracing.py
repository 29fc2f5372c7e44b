"""Traces: the one switch every layer reads, and the data layer's spans.

``tracer`` is None while tracing is off (no ``OTEL_*`` configuration, the
default): every hook in the gateway then costs one attribute check and nothing
of OpenTelemetry's SDK is loaded. ``gateway.tracing`` sets it in each worker,
after the fork, and clears it when the worker stops; tests set it with a tracer
of their own (``gateway.tracing.recording``). It lives here, in the ground floor,
because ``db/`` may import nothing above it and the SQL spans need it too.

SQL spans (``db.query.text`` is the statement as written, with its ``$n`` or
``?`` placeholders: bind values are never recorded) are made only inside a span
that is recording (a request, a relay batch). Background loops (the relay's
poll, the revocation listener, heartbeats) would otherwise start a trace of one
statement every second.

Every statement goes through one of two places: the read path's own calls on
asyncpg (``db.pg``, ``db.sql``), and Tortoise's ``execute_*`` methods of the two
database clients and their transactions (``TracedStatements``, mixed into
``db.pg`` and ``db.sqlite``'s clients).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.trace import Span, Tracer

T = TypeVar("T")

# The process's tracer while tracing is on; None while it is off.
tracer: Tracer | None = None
# How context is read from requests and written into outgoing calls (OTEL_PROPAGATORS,
# set with the tracer by gateway.tracing).
propagator: TextMapPropagator = CompositePropagator(
    [TraceContextTextMapPropagator(), W3CBaggagePropagator()]
)

MAX_QUERY_TEXT = 4096
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_SYSTEMS = {"postgres": "postgresql", "sqlite": "sqlite"}


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span (stored with a change event), or
    None when tracing is off or no span is current."""
    if tracer is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def link_to(traceparent: object) -> Link | None:
    """A span link to the span a stored ``traceparent`` names (None if it is not one)."""
    if not isinstance(traceparent, str):
        return None
    found = _TRACEPARENT.match(traceparent)
    if found is None:
        return None
    trace_id, span_id = int(found[1], 16), int(found[2], 16)
    if not trace_id or not span_id:
        return None
    context = SpanContext(
        trace_id, span_id, is_remote=True, trace_flags=TraceFlags(int(found[3], 16))
    )
    return Link(context)


def child_span(name: str, *, kind: SpanKind = SpanKind.INTERNAL, **attributes: Any) -> Any:
    """A context manager: a span under the current one when tracing is on and the
    current span records; otherwise nothing (a shared null context)."""
    active = tracer
    if active is None or not trace.get_current_span().is_recording():
        return NO_SPAN
    return active.start_as_current_span(name, kind=kind, attributes=attributes)


# What a span helper returns while there is nothing to trace: one shared null context.
NO_SPAN = contextlib.nullcontext()


def _operation(query: str) -> str:
    head = query.lstrip()[:16].split(None, 1)
    return head[0].upper() if head else ""


@contextlib.contextmanager
def statement_span(query: str, dialect: str) -> Iterator[Span | None]:
    """A ``CLIENT`` span for one SQL statement (see the module docstring)."""
    active = tracer
    if active is None or not trace.get_current_span().is_recording():
        yield None
        return
    operation = _operation(query)
    system = _SYSTEMS.get(dialect, dialect)
    with active.start_as_current_span(
        operation or "SQL",
        kind=SpanKind.CLIENT,
        attributes={
            "db.system": system,
            "db.system.name": system,
            "db.operation.name": operation,
            "db.query.text": query[:MAX_QUERY_TEXT],
        },
    ) as span:
        yield span


async def traced_statement(work: Awaitable[T], query: str, dialect: str) -> T:
    with statement_span(query, dialect):
        return await work


# What a traced ``execute_*`` returns: the coroutine Tortoise's method would have been.
Run = Coroutine[Any, Any, Any]


class TracedStatements:
    """Tortoise's ``execute_*`` methods, each in a statement span while tracing is on.

    Mixed in before Tortoise's client class (``db.pg``, ``db.sqlite``) and its
    transaction wrapper. Plain functions that return the awaitable: while tracing is
    off a statement costs one check and no extra coroutine.
    """

    capabilities: Any

    def execute_insert(self, query: str, values: list[Any]) -> Run:
        if tracer is None:
            return super().execute_insert(query, values)  # type: ignore[misc,no-any-return]
        run = super().execute_insert(query, values)  # type: ignore[misc]
        return traced_statement(run, query, self.capabilities.dialect)

    def execute_many(self, query: str, values: list[Any]) -> Run:
        if tracer is None:
            return super().execute_many(query, values)  # type: ignore[misc,no-any-return]
        run = super().execute_many(query, values)  # type: ignore[misc]
        return traced_statement(run, query, self.capabilities.dialect)

    def execute_query(self, query: str, values: list[Any] | None = None) -> Run:
        if tracer is None:
            return super().execute_query(query, values)  # type: ignore[misc,no-any-return]
        run = super().execute_query(query, values)  # type: ignore[misc]
        return traced_statement(run, query, self.capabilities.dialect)

    def execute_query_dict(self, query: str, values: list[Any] | None = None) -> Run:
        if tracer is None:
            return super().execute_query_dict(query, values)  # type: ignore[misc,no-any-return]
        run = super().execute_query_dict(query, values)  # type: ignore[misc]
        return traced_statement(run, query, self.capabilities.dialect)
