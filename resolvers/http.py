"""``POST /graphql`` and ``GET /graphql`` (queries only), per GraphQL over HTTP.

A thin Sanic handler around the engine (``resolvers.engine.Runner``): the same
``gateway.auth`` turns the credentials into a Principal (missing or bad
credentials are REST's 401 problem), parsed and validated documents are cached,
and errors are shaped once (``resolvers.errors``): a ``db`` error carries REST's
``code`` in ``extensions.code``; anything unexpected is masked (``INTERNAL``,
with the request id) and logged.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson
from graphql import GraphQLError, OperationType
from sanic import HTTPResponse, Request
from sanic.server.websockets.impl import WebsocketImplProtocol

from db.errors import InvalidArgument
from gateway import metrics
from gateway.errors import (
    MethodNotAllowed,
    UnsupportedMediaType,
    database_unavailable,
    note_database_outage,
)
from gateway.logs import request_id_var
from resolvers.context import Context
from resolvers.engine import Runner, WrongOperationType
from resolvers.errors import format_error
from resolvers.graphiql import graphiql_response, wants_graphiql
from resolvers.persisted import PersistedQueries, PersistedQueryNotFound
from resolvers.streaming import stream_subscription
from resolvers.ws import SocketOperations, serve

if TYPE_CHECKING:
    from gateway.context import GatewayApp
    from realtime.hub import Hub

GRAPHQL_RESPONSE = "application/graphql-response+json"
QUERIES_ONLY = {OperationType.QUERY}
ALL_OPERATIONS = {OperationType.QUERY, OperationType.MUTATION}


def _params(request: Request) -> dict[str, Any]:
    if request.method == "GET":
        args = {k: v[0] for k, v in request.args.items() if v}
        params: dict[str, Any] = {"query": args.get("query")}
        for name in ("variables", "extensions"):
            if args.get(name):
                try:
                    params[name] = orjson.loads(args[name])
                except orjson.JSONDecodeError:
                    raise InvalidArgument(f"{name}: not valid JSON") from None
        params["operationName"] = args.get("operationName")
        return params
    if not request.content_type.startswith("application/json"):
        raise UnsupportedMediaType("send the operation as application/json")
    try:
        body = orjson.loads(request.body or b"")
    except orjson.JSONDecodeError:
        raise InvalidArgument("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidArgument("the body must be a JSON object with a query")
    return body


def _check(params: dict[str, Any]) -> tuple[str, dict[str, Any] | None, str | None]:
    query, variables, name = (
        params.get("query"),
        params.get("variables"),
        params.get("operationName"),
    )
    if not isinstance(query, str) or not query.strip():
        raise InvalidArgument("query: give a GraphQL document")
    if variables is not None and not isinstance(variables, dict):
        raise InvalidArgument("variables: must be a JSON object")
    if name is not None and not isinstance(name, str):
        raise InvalidArgument("operationName: must be a string")
    return query, variables, name


# The same URL answers GraphiQL, JSON or application/graphql-response+json by Accept.
_VARY_ACCEPT = {"Vary": "Accept"}


def _database_outage(
    errors: list[GraphQLError], content_type: str, path: str
) -> HTTPResponse | None:
    """503 with ``Retry-After`` when the database was away and no root field has data.

    The body is a GraphQL response, not a problem document: GraphQL clients read
    ``errors[].extensions.code``, and a response without ``data`` may carry a 5xx
    (GraphQL over HTTP). It has the error once and no ``data``: nothing ran to the
    end. With data from another root field (a mutation that did commit), the answer
    stays a 200 and the field's error says ``DATABASE_UNAVAILABLE``.
    """
    for error in errors:
        outage = database_unavailable(error.original_error)
        if outage is not None:
            note_database_outage(error.original_error, path)
            shaped = {"message": outage.detail, "extensions": {"code": outage.code}}
            return HTTPResponse(
                orjson.dumps({"errors": [shaped]}),
                status=outage.status,
                content_type=content_type,
                headers={**_VARY_ACCEPT, "Retry-After": str(outage.retry_after)},
            )
    return None


def setup_graphql(app: GatewayApp, hub: Hub) -> None:
    # Strawberry logs every error at ERROR, client mistakes included; unexpected
    # errors are logged by ``resolvers.errors.format_error`` instead, with the request id.
    logging.getLogger("strawberry.execution").setLevel(logging.CRITICAL)
    settings = app.ctx.settings
    runner = app.ctx.graphql = Runner(settings)
    persisted = PersistedQueries(
        app.ctx.redis,
        budget_bytes=settings.graphql_persisted_query_bytes,
        ttl_seconds=settings.graphql_persisted_query_ttl_seconds,
    )

    sockets = SocketOperations(app, runner, hub)

    async def socket(request: Request, ws: WebsocketImplProtocol) -> None:
        await serve(request, ws, sockets, request_id_var.get())

    async def graphql(request: Request) -> HTTPResponse | None:
        if request.headers.get("upgrade", "").lower() == "websocket":
            # One path for HTTP and WebSocket: Sanic routes one handler per path
            # and method, so the upgrade is handed to its WebSocket machinery here.
            await sockets.upgrade(request, socket)  # 429 before the upgrade: see realtime.admission
            return None
        method = request.method
        if method == "GET" and wants_graphiql(
            method,
            request.headers.get("accept", ""),
            "query" in request.args or "extensions" in request.args,
        ):
            return graphiql_response()  # the page holds no data; its requests authenticate
        throttle = app.ctx.throttle
        principal = await throttle.authenticate(request, policy=None)  # charged by cost below
        params = _params(request)
        if params.get("extensions") is not None:  # without: the query is the document
            try:
                params["query"] = await persisted.resolve(
                    principal.organization_id, params.get("query"), params["extensions"]
                )
            except PersistedQueryNotFound as exc:
                error = {"message": exc.detail, "extensions": {"code": exc.code}}
                return HTTPResponse(
                    orjson.dumps({"errors": [error]}),
                    content_type="application/json",
                    headers=_VARY_ACCEPT,
                )
        query, variables, operation_name = _check(params)
        context = Context(
            principal=principal,
            request_id=request_id_var.get(),
            page_size_default=settings.page_size_default,
            page_size_max=settings.page_size_max,
            idempotency_ttl_seconds=settings.idempotency_ttl_seconds,
        )
        prepared = runner.prepare(query)
        # A refused document costs 1: its estimate is what it would have cost to run.
        cost = max(1, prepared.cost(operation_name)) if prepared.document is not None else 1
        await throttle.charge_caller(request, "graphql", principal, cost=cost)
        try:
            result = await runner.run(
                query,
                variables,
                operation_name,
                context,
                QUERIES_ONLY if method == "GET" else ALL_OPERATIONS,
                prepared,
            )
        except WrongOperationType as wrong:
            if str(wrong) == "subscription":
                metrics.graphql_operation(prepared, operation_name, "http", False, cost)
                return await stream_subscription(
                    request,
                    sockets,
                    query,
                    variables,
                    operation_name,
                    principal,
                    request_id_var.get(),
                )
            raise MethodNotAllowed(
                "GET runs queries only: send mutations with POST", allow="POST"
            ) from None
        metrics.graphql_operation(prepared, operation_name, "http", bool(result.errors), cost)
        if result.errors and not any((result.data or {}).values()):
            strict = GRAPHQL_RESPONSE in request.headers.get("accept", "")
            outage = _database_outage(
                result.errors, GRAPHQL_RESPONSE if strict else "application/json", request.path
            )
            if outage is not None:
                return outage
        body: dict[str, Any] = {}
        if result.errors:
            body["errors"] = [format_error(e) for e in result.errors]
        # A request error (the document did not parse or validate) never started
        # executing: no ``data`` entry at all (GraphQL over HTTP, 7.1.2).
        not_executed = result.data is None and all(e.path is None for e in result.errors or [])
        if not not_executed:
            body["data"] = result.data
        strict = GRAPHQL_RESPONSE in request.headers.get("accept", "")
        status = 400 if strict and not_executed else 200
        return HTTPResponse(
            orjson.dumps(body, option=orjson.OPT_UTC_Z),
            status=status,
            content_type=GRAPHQL_RESPONSE if strict else "application/json",
            headers=_VARY_ACCEPT,
        )

    graphql.is_websocket = True  # type: ignore[attr-defined]  # may return no response
    app.enable_websocket()
    app.add_route(graphql, "/graphql", methods=["GET", "POST"], name="graphql")
