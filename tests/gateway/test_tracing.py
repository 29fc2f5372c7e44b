"""OpenTelemetry traces (gateway/tracing.py, db/tracing.py, realtime/tracing.py).

Spans go to the SDK's in-memory exporter through the tests' hook
(``gateway.tracing.recording``: each span exported as it ends), never through the
environment; the session server picks the tracer up per request. Spans made in the
background (the relay's batch) are waited for with a deadline, never a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
import websockets
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from db import tracing as switch
from db.models import Event
from gateway import spans as edge_spans
from gateway import tracing
from gateway.auth.external import ExternalKeys
from gateway.settings import ExternalIssuer
from tests import realtime_clients as rt
from tests.factories import TOKENS
from tests.processes import free_port
from tests.served import gateways, own_database

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    with tracing.recording(exporter):
        yield exporter


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def in_trace(exporter: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]


def server_span(exporter: InMemorySpanExporter, path: str) -> ReadableSpan:
    found = [
        s
        for s in exporter.get_finished_spans()
        if s.kind is SpanKind.SERVER and (s.attributes or {}).get("url.path") == path
    ]
    assert len(found) == 1, [s.name for s in exporter.get_finished_spans()]
    return found[0]


async def until(condition: Callable[[], object], seconds: float = 10.0) -> None:
    """Wait for ``condition`` (a span ended by a background task); the deadline is a guard."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.01)


# -- HTTP server spans ---------------------------------------------------------------


async def test_each_request_gets_a_server_span_named_by_its_route(server, tenant, spans):
    created = await tenant.client.post(
        "/api/v1/customers", json={"name": "Ada", "email": f"{uuid.uuid4().hex}@example.com"}
    )
    ident = created.json()["data"]["id"]
    path = f"/api/v1/customers/{ident}"
    r = await tenant.client.get(path, headers={"User-Agent": "tracing-test/1.0"})
    assert r.status_code == 200

    span = server_span(spans, path)
    attributes = dict(span.attributes or {})
    assert span.name == "GET /api/v1/customers/{ident}"
    assert attributes["http.route"] == "/api/v1/customers/{ident}"
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.response.status_code"] == 200
    assert attributes["url.scheme"] == "http"
    assert attributes["client.address"] == "127.0.0.1"
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == server.app.ctx.settings.port
    assert attributes["user_agent.original"] == "tracing-test/1.0"
    assert span.status.status_code is StatusCode.UNSET
    assert span.parent is None


async def test_an_unknown_route_is_named_by_its_method_and_is_not_an_error(anon, spans):
    r = await anon.get("/no/such/route")
    assert r.status_code == 404
    span = server_span(spans, "/no/such/route")
    assert span.name == "GET"
    assert (span.attributes or {})["http.response.status_code"] == 404
    assert "http.route" not in (span.attributes or {})
    assert span.status.status_code is StatusCode.UNSET


async def test_a_request_that_fails_with_an_exception_still_ends_its_span(
    server, tenant, spans, monkeypatch
):
    async def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(server.app.ctx.graphql, "_execute", broken)
    r = await tenant.client.post("/graphql", json={"query": "{ __typename }"})
    assert r.status_code == 500

    request = server_span(spans, "/graphql")
    assert (request.attributes or {})["http.response.status_code"] == 500
    assert (request.attributes or {})["error.type"] == "builtins.RuntimeError"
    assert request.status.status_code is StatusCode.ERROR
    (event,) = request.events
    assert event.name == "exception"
    assert (event.attributes or {})["exception.message"] == "boom"
    (execute,) = named(spans, "graphql.execute")
    assert execute.status.status_code is StatusCode.ERROR
    assert [e.name for e in execute.events] == ["exception"]


async def test_an_incoming_traceparent_becomes_the_parent(tenant, spans):
    r = await tenant.client.get(
        "/api/v1/customers", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
    )
    assert r.status_code == 200
    span = server_span(spans, "/api/v1/customers")
    assert span.context.trace_id == int(TRACE_ID, 16)
    assert span.parent is not None
    assert span.parent.span_id == int(PARENT_ID, 16)
    assert span.parent.is_remote


async def test_a_websocket_upgrade_gets_a_span_that_ends_while_the_socket_is_open(server, spans):
    url = server.base_url.replace("http://", "ws://") + "/api/v1/realtime"
    async with websockets.connect(url):
        await until(lambda: named(spans, "GET /api/v1/realtime"))
        (span,) = named(spans, "GET /api/v1/realtime")
        assert span.kind is SpanKind.SERVER
        assert span.end_time is not None


# -- GraphQL and SQL -------------------------------------------------------------------


async def test_a_client_s_long_operation_name_is_cut_in_the_span(tenant, spans):
    name = "Q" * 60_000
    r = await tenant.client.post("/graphql", json={"query": f"query {name} {{ __typename }}"})
    assert r.status_code == 200, r.text
    (execute,) = named(spans, "graphql.execute")
    assert (execute.attributes or {})["graphql.operation.name"] == "Q" * 100


async def test_graphql_parse_validate_and_execute_are_children_of_the_request(tenant, spans):
    alias = f"a{uuid.uuid4().hex}"  # a document the cache has never seen
    query = f"query Traced {{ {alias}: customers(first: 1) {{ nodes {{ name }} }} }}"
    r = await tenant.client.post("/graphql", json={"query": query})
    assert r.status_code == 200, r.text
    assert "errors" not in r.json()

    request = server_span(spans, "/graphql")
    children = {s.name: s for s in in_trace(spans, request.context.trace_id)}
    for name in ("graphql.parse", "graphql.validate", "graphql.execute"):
        assert children[name].parent is not None
        assert children[name].parent.span_id == request.context.span_id
    execute = dict(children["graphql.execute"].attributes or {})
    assert execute["graphql.operation.type"] == "query"
    assert execute["graphql.operation.name"] == "Traced"
    # SQL under the execution: the read the resolver made.
    sql = [s for s in in_trace(spans, request.context.trace_id) if s.kind is SpanKind.CLIENT]
    assert any(
        s.parent and s.parent.span_id == children["graphql.execute"].context.span_id for s in sql
    )

    # The same text again: prepared from the cache, so neither parse nor validate runs.
    spans.clear()
    r = await tenant.client.post("/graphql", json={"query": query})
    assert r.status_code == 200
    request = server_span(spans, "/graphql")
    names = {s.name for s in in_trace(spans, request.context.trace_id)}
    assert "graphql.execute" in names
    assert not names & {"graphql.parse", "graphql.validate"}


async def test_sql_statements_are_spans_without_their_values(tenant, spans, is_postgres):
    secret = f"secret-{uuid.uuid4().hex}@example.com"
    r = await tenant.client.post("/api/v1/customers", json={"name": "Grace", "email": secret})
    assert r.status_code == 201
    request = server_span(spans, "/api/v1/customers")
    sql = [
        s
        for s in in_trace(spans, request.context.trace_id)
        if (s.attributes or {}).get("db.query.text") is not None
    ]
    assert sql
    system = "postgresql" if is_postgres else "sqlite"
    for span in sql:
        attributes = dict(span.attributes or {})
        assert span.kind is SpanKind.CLIENT
        assert attributes["db.system"] == system
        assert attributes["db.operation.name"] == span.name
        assert secret not in str(attributes["db.query.text"])
        assert "Grace" not in str(attributes["db.query.text"])
    inserts = [s for s in sql if s.name == "INSERT"]
    assert any("events" in str((s.attributes or {})["db.query.text"]) for s in inserts)


# -- from a write to its delivery --------------------------------------------------------


async def test_a_delivery_links_to_the_write_that_caused_it(tenant, anon, spans):
    headers = {"Authorization": f"Bearer {TOKENS.mint(tenant.id, 'owner')}"}
    async with rt.sse(anon, {"topics": "customers"}, headers) as stream:
        assert stream.response.status_code == 200
        r = await tenant.client.post(
            "/api/v1/customers",
            json={"name": "Linked", "email": f"{uuid.uuid4().hex}@example.com"},
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
        )
        assert r.status_code == 201
        (event,) = await stream.events(1)

    # What clients get is the event as ever: the trace context is not in it.
    assert "traceparent" not in event["data"]
    assert event["data"]["data"]["name"] == "Linked"
    position = event["data"]["position"]

    write = server_span(spans, "/api/v1/customers")
    assert write.context.trace_id == int(TRACE_ID, 16)
    stored = await Event.get(position=position)
    assert stored.traceparent == (
        f"00-{write.context.trace_id:032x}-{write.context.span_id:016x}-01"
    )

    def linked(name: str) -> list[ReadableSpan]:
        return [
            s
            for s in spans.get_finished_spans()
            if s.name == name
            and any(
                link.context.trace_id == write.context.trace_id
                and link.context.span_id == write.context.span_id
                for link in s.links
            )
        ]

    await until(lambda: linked("relay batch") and linked("deliver customer"))
    (batch,) = linked("relay batch")
    assert batch.kind is SpanKind.PRODUCER
    first = (batch.attributes or {})["gateway.event.position.first"]
    assert first <= position <= (batch.attributes or {})["gateway.event.position.last"]
    publishes = [
        s
        for s in spans.get_finished_spans()
        if s.parent and s.parent.span_id == batch.context.span_id
    ]
    assert [s.kind for s in publishes] == [SpanKind.PRODUCER]
    (delivery,) = linked("deliver customer")
    assert delivery.kind is SpanKind.CONSUMER
    assert (delivery.attributes or {})["gateway.event.position"] == position


# -- outgoing calls ------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def header_capture() -> AsyncIterator[tuple[int, list[dict[str, str]]]]:
    """A loopback HTTP server answering an empty JWK set, keeping each request's headers."""
    seen: list[dict[str, str]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")[1:]
        seen.append(
            {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines if x)}
        )
        body = b'{"keys": []}'
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield port, seen
    finally:
        listener.close()
        await listener.wait_closed()


async def test_an_outgoing_call_carries_the_current_trace(spans):
    async with header_capture() as (port, seen):
        keys = ExternalKeys(
            ExternalIssuer(
                issuer="https://issuer.test",
                jwks_uri=f"http://127.0.0.1:{port}/jwks",
                audience="gateway",
            )
        )
        assert switch.tracer is not None
        with switch.tracer.start_as_current_span("caller") as caller:
            await keys._fetch()
    (headers,) = seen
    version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert version == "00"
    assert int(flags, 16) & 1  # sampled
    assert int(trace_id, 16) == caller.get_span_context().trace_id
    (call,) = named(spans, "GET")
    assert call.kind is SpanKind.CLIENT
    assert int(span_id, 16) == call.context.span_id
    assert call.parent is not None
    assert call.parent.span_id == caller.get_span_context().span_id
    assert (call.attributes or {})["http.response.status_code"] == 200


async def test_without_tracing_an_outgoing_call_is_left_alone():
    assert switch.tracer is None
    assert edge_spans.outgoing_transport() is None
    async with header_capture() as (port, seen):
        keys = ExternalKeys(
            ExternalIssuer(
                issuer="https://issuer.test", jwks_uri=f"http://127.0.0.1:{port}/j", audience="g"
            )
        )
        await keys._fetch()
    (headers,) = seen
    assert "traceparent" not in headers


# -- off unless OTEL_* asks ------------------------------------------------------------------


async def test_off_when_otel_is_unset_nothing_is_set_up_or_recorded(settings, tenant):
    from gateway.app import create_app

    assert not [k for k in os.environ if k.startswith("OTEL_")]
    assert switch.tracer is None
    assert not isinstance(trace.get_tracer_provider(), SdkTracerProvider)
    app = create_app(settings, name=f"otel_{uuid.uuid4().hex[:8]}")

    def installed() -> tuple[int, int]:
        return len(app._future_listeners), len(app.ctx.shutdown._closes)

    listeners, closes = installed()
    assert tracing.setup_tracing(app, environ={}) is False
    assert installed() == (listeners, closes)
    assert tracing.setup_tracing(app, environ={"OTEL_TRACES_EXPORTER": "console"}) is True
    assert installed() == (listeners + 1, closes + 1)  # the provider: in each worker, later
    assert switch.tracer is None

    r = await tenant.client.post(
        "/api/v1/customers",
        json={"name": "Untraced", "email": f"{uuid.uuid4().hex}@example.com"},
        headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
    )
    assert r.status_code == 201
    stored = await Event.filter(organization_id=tenant.id).order_by("-id").first()
    assert stored is not None
    assert stored.traceparent is None
    assert switch.current_traceparent() is None


@pytest.mark.parametrize(
    ("environ", "exporters"),
    [
        ({}, []),
        ({"OTEL_SERVICE_NAME": "gw", "OTEL_RESOURCE_ATTRIBUTES": "a=b"}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, []),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, []),
    ],
)
def test_which_variables_turn_tracing_on(environ, exporters):
    assert tracing.exporter_names(environ) == exporters


@pytest.mark.parametrize(
    "environ",
    [
        {"OTEL_TRACES_EXPORTER": "jaeger"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_PROPAGATORS": "nosuchone"},
    ],
)
def test_a_value_the_gateway_cannot_honour_stops_startup(settings, environ):
    from gateway.app import create_app

    app = create_app(settings, name=f"otel_{uuid.uuid4().hex[:8]}")
    with pytest.raises(tracing.TracingConfigError):
        tracing.setup_tracing(app, environ=environ)


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("api/v1/customers", "/api/v1/customers"),
        ("api/v1/customers/<ident:(?P<ident>[^/:]+)>", "/api/v1/customers/{ident}"),
        ("api/v1/orders/<ident:(?P<ident>[^/:]+):cancel>", "/api/v1/orders/{ident}:cancel"),
        ("api/v1/<method:(?P<method>orders:batchGet)>", "/api/v1/orders:batchGet"),
        ("files/<name:path>", "/files/{name}"),
        ("graphql", "/graphql"),
    ],
)
def test_route_templates(path, template):
    assert edge_spans.route_template(path) == template


# -- an exporter that cannot export ------------------------------------------------------------


@pytest.mark.backend_independent
def test_a_collector_that_is_down_never_fails_a_request(tmp_path):
    """A real ``gateway serve`` exporting over OTLP to a closed port: requests are
    answered, the SDK logs the failed export, and SIGTERM still stops the worker
    within its bound (the flush gives up; it does not hold the exit)."""
    closed = free_port()
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed}",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2",
        "OTEL_SERVICE_NAME": "gateway-under-test",
    }
    with own_database(tmp_path) as database, gateways(tmp_path, database) as start:
        node = start(**env)
        for _ in range(5):
            assert httpx.get(f"{node.url}/healthz", timeout=10).status_code == 200
            assert node.readyz().status_code == 200
            r = httpx.post(f"{node.url}/graphql", json={"query": "{ __typename }"}, timeout=10)
            assert r.status_code == 401
        node.wait_for_line("Failed to export spans batch")
        began = time.monotonic()
        node.proc.send_signal(signal.SIGTERM)
        assert node.exit_code() == 0
        assert time.monotonic() - began < 20


def test_the_hub_cuts_the_trace_context_off_what_clients_get():
    from datetime import UTC, datetime

    from realtime.relay import encode
    from realtime.tracing import client_bytes

    event = {
        "position": 7,
        "type": "customer.created",
        "resource": "customer",
        "resource_id": "1",
        "organization_id": 1,
        "actor": "user:x",
        "occurred_at": datetime(2026, 1, 2, tzinfo=UTC),
        "data": {"a": 1, "traceparent": "a field of the row's own", "b": ',"traceparent":"x"'},
    }
    plain = encode(event)
    traced = encode({**event, "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    assert client_bytes(traced) == plain


def test_the_provider_takes_its_resource_and_sampler_from_the_environment(monkeypatch):
    from opentelemetry.sdk.trace.sampling import ParentBased

    provider = tracing.build_provider([])
    assert provider.resource.attributes["service.name"] == "gateway"  # ours, when unset
    monkeypatch.setenv("OTEL_SERVICE_NAME", "shop-gateway")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    provider = tracing.build_provider([])
    attributes = provider.resource.attributes
    assert attributes["service.name"] == "shop-gateway"
    assert attributes["deployment.environment"] == "staging"
    assert isinstance(provider.sampler, ParentBased)
    assert "0.25" in provider.sampler.get_description()
