# Run from the checkout: .venv/bin/python ops/bench/tracing_cost.py
"""What tracing costs per request and per SQL statement, off and on (timeit).

Off (no ``OTEL_*``): the pipeline's two checks of ``db.tracing.tracer``, and what the
statement hooks add to a Tortoise call (``TracedStatements``) and to the PostgreSQL
read path (``GatewayAsyncpgClient._read``). On: ``ServerSpans.begin`` + ``finish`` for
a routed GET, with a ``BatchSpanProcessor`` whose exporter drops the spans, beside the
SDK's own cost of one bare span. Each figure is the best of five runs.
"""

from __future__ import annotations

import timeit
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from sanic import Request, Sanic
from sanic.compat import Header
from sanic.response import HTTPResponse
from tortoise.backends.sqlite.client import SqliteClient

from db import tracing as switch
from db.pg import GatewayAsyncpgClient
from db.sqlite import GatewaySqliteClient
from gateway import tracing
from gateway.settings import Settings
from gateway.spans import ServerSpans

N = 20_000
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Drop(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def best(work: Any, number: int = N) -> float:
    return min(timeit.repeat(work, number=number, repeat=5)) / number


def main() -> None:
    app: Sanic[Any, Any] = Sanic("tracing_cost")
    app.ctx.settings = Settings(environment="test")

    @app.get("/api/v1/customers/<ident:(?P<ident>[^/:]+)>")
    async def handler(request: Request, ident: str) -> HTTPResponse:
        return HTTPResponse("x")

    app.router.finalize()

    def request(**extra: str) -> Request:
        headers = Header({"host": "127.0.0.1:8000", "user-agent": "bench/1", **extra})
        made = Request(b"/api/v1/customers/7", headers, "1.1", "GET", None, app)
        made.route = app.router.get("/api/v1/customers/7", "GET", None)[0]
        return made

    spans, response = ServerSpans(), HTTPResponse("x")
    one = request()

    def off() -> None:
        if switch.tracer is not None:
            spans.begin(one)
        if switch.tracer is not None:
            spans.finish(one, response)

    print(f"off: the pipeline's two checks            {best(off) * 1e9:8.0f} ns a request")

    sqlite = GatewaySqliteClient.__new__(GatewaySqliteClient)
    mixin = best(lambda: sqlite.execute_query_dict("SELECT 1", None).close())
    plain = best(lambda: SqliteClient.execute_query_dict(sqlite, "SELECT 1", None).close())
    print(f"off: a Tortoise statement's extra          {(mixin - plain) * 1e9:8.0f} ns")
    pg = GatewayAsyncpgClient.__new__(GatewayAsyncpgClient)
    read = best(lambda: pg._read("SELECT 1", ()).close())
    fetch = best(lambda: pg._fetch("SELECT 1", ()).close())
    print(f"off: a PostgreSQL read's extra             {(read - fetch) * 1e9:8.0f} ns")

    provider = tracing.build_provider([Drop()])
    tracing.start(provider)
    try:
        for label, extra in (("no parent", {}), ("with traceparent", {"traceparent": TRACEPARENT})):
            fresh = iter([request(**extra) for _ in range(N * 5 + 1)])

            def on(fresh: Any = fresh) -> None:
                made = next(fresh)
                if switch.tracer is not None:
                    spans.begin(made)
                if switch.tracer is not None:
                    spans.finish(made, response)

            on()  # the route's template is made once, then kept
            print(f"on:  a request's server span, {label:<17}{best(on) * 1e6:6.1f} µs")
        tracer = provider.get_tracer("bench")
        bare = best(lambda: tracer.start_span("x").end())
        print(f"on:  the SDK alone, one bare span          {bare * 1e6:6.1f} µs")
    finally:
        tracing.stop()
        provider.shutdown()


if __name__ == "__main__":
    main()
