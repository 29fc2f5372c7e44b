"""GraphQL over WebSocket on ``/graphql``: ``graphql-transport-ws`` and legacy ``graphql-ws``.

Strawberry's protocol handlers speak both protocols; Strawberry's Sanic view
does not do WebSockets, so this module gives them the three things they use:
a socket adapter over Sanic's WebSocket, a "view" that authenticates the
``connection_init`` payload, and a "schema" that runs each operation the way
``POST /graphql`` does (the same cached parse and validation with the limits,
the same error shapes and masking), with subscriptions on graphql-core.

Authentication is the ``connection_init`` payload, read by ``gateway.auth.credentials``:
``{"Authorization": "Bearer ..."}``, ``{"token": "..."}`` or
``{"X-API-Key": "..."}``. Refused credentials close the socket with 4403
(legacy: ``connection_error``, then 1011), never an ack. On both protocols a
socket without an accepted ``connection_init`` within
``REALTIME_AUTH_TIMEOUT_SECONDS`` of its upgrade is closed with 4408, and too
many such sockets from one address are refused before the upgrade (HTTP 429):
see ``realtime.admission``. While the socket is open it follows the credential:
expiry closes it with 4401, revocation (on any worker) with 4403, a slow
consumer with 1013, shutdown with 1001.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import orjson
from graphql import ExecutionResult as CoreResult
from graphql import GraphQLError, OperationType, get_operation_ast
from sanic import Request
from sanic.exceptions import WebsocketClosed
from sanic.server.websockets.impl import WebsocketImplProtocol
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.async_base_view import AsyncWebSocketAdapter
from strawberry.http.exceptions import (
    NonJsonMessageReceived,
    NonTextMessageReceived,
    WebSocketDisconnected,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.unset import UNSET
from websockets.exceptions import ConnectionClosed

from db.errors import DomainError
from db.principal import Principal
from gateway import metrics
from gateway.errors import RateLimited
from gateway.throttling import MessageBudget
from realtime.admission import PendingSocket, unauthenticated_sockets
from realtime.close_codes import NORMAL, RATE_LIMITED
from realtime.hub import Hub, Mailbox, MailboxClosed
from resolvers.context import Context
from resolvers.engine import Prepared, Runner
from resolvers.errors import shape

if TYPE_CHECKING:
    from gateway.context import GatewayApp

log = logging.getLogger("gateway.graphql")

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
PROTOCOLS = [TRANSPORT_WS, LEGACY_WS]
LEGACY_KEEP_ALIVE_SECONDS = 15.0
NOBODY = Principal(subject="anonymous", organization_id=0)
_ALL = {OperationType.QUERY, OperationType.MUTATION}


class SanicWebSocket(AsyncWebSocketAdapter):
    """Strawberry's socket interface over a Sanic WebSocket (text frames of JSON)."""

    def __init__(self, view: Any, ws: WebsocketImplProtocol, budget: MessageBudget) -> None:
        super().__init__(view)
        self.ws = ws
        self.budget = budget

    async def iter_json(
        self, *, ignore_parsing_errors: bool = False
    ) -> AsyncGenerator[object, None]:
        while True:
            try:
                message = await self.ws.recv()
            except (ConnectionClosed, WebsocketClosed, asyncio.CancelledError):
                return
            if message is None:
                continue
            if isinstance(message, bytes):
                raise NonTextMessageReceived
            try:
                parsed = orjson.loads(message)
            except orjson.JSONDecodeError:
                if not ignore_parsing_errors:
                    raise NonJsonMessageReceived from None
                continue
            if retry := self.budget.spend():
                await self.refuse(parsed, self.budget.refusal(retry))
                return
            yield parsed

    async def refuse(self, message: Any, error: DomainError) -> None:
        """An error frame in the socket's protocol, then close 1008 (over a limit)."""
        payload = {"message": error.detail, "extensions": {"code": error.code}}
        ident = message.get("id") if isinstance(message, dict) else None
        legacy = self.ws.subprotocol == LEGACY_WS
        if isinstance(ident, str):
            frame = {"id": ident, "type": "error", "payload": payload if legacy else [payload]}
            await self.send_json(frame)
        elif legacy:
            await self.send_json({"type": "connection_error", "payload": payload})
        await self.close(RATE_LIMITED.code, error.code.lower().replace("_", " "))

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send(orjson.dumps(message, option=orjson.OPT_UTC_Z).decode())
        except (ConnectionClosed, WebsocketClosed) as exc:
            raise WebSocketDisconnected from exc

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(ConnectionClosed, WebsocketClosed):
            await self.ws.close(code, reason)


@dataclass
class Session:
    """One socket: its caller, and how operations close it."""

    ws: WebsocketImplProtocol
    request_id: str | None
    pending: PendingSocket | None = None
    connection_params: dict[str, Any] | None = None
    principal: Principal = NOBODY
    watcher: asyncio.Task[None] | None = None
    closing: list[asyncio.Task[None]] = field(default_factory=list)
    budget: MessageBudget = field(default_factory=lambda: MessageBudget(None))

    def close(self, code: int, reason: str) -> asyncio.Future[None]:
        closing = asyncio.ensure_future(_close(self.ws, code, reason))
        self.closing.append(closing)
        return closing

    async def follow(self, mailbox: Mailbox) -> None:
        """Close the socket when the credential expires or is revoked."""
        try:
            while True:
                await mailbox.get()
        except MailboxClosed as closed:
            await _close(self.ws, closed.code, closed.reason)
        finally:
            mailbox.close(NORMAL, "socket closed")


async def _close(ws: WebsocketImplProtocol, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await ws.close(code, reason)


class SocketOperations:
    """The "schema" the protocol handlers call: runs operations as ``/graphql`` does."""

    def __init__(self, app: GatewayApp, runner: Runner, hub: Hub) -> None:
        self.app = app
        self.runner = runner
        self.hub = hub
        self.unauthenticated = unauthenticated_sockets(app)

    async def upgrade(
        self, request: Request, handler: Callable[[Request, WebsocketImplProtocol], Awaitable[None]]
    ) -> None:
        """Accept the WebSocket upgrade of ``request`` and run ``handler`` (``serve``) on it.

        Raises ``RateLimited`` (HTTP 429, before the upgrade) when the client's address has
        too many sockets that have not authenticated; the socket's deadline runs from here.
        """

        async def run(
            request: Request, ws: WebsocketImplProtocol, pending: PendingSocket | None
        ) -> None:
            request.ctx.pending_socket = pending  # for ``serve``
            await handler(request, ws)

        await self.unauthenticated.upgrade(request, run, subprotocols=PROTOCOLS)

    async def on_ws_connect(self, session: Session) -> Any:
        try:
            principal = await self.app.ctx.auth.from_message(session.connection_params or {})
        except DomainError as error:
            log.info("refused a GraphQL socket", extra={"code": error.code})
            raise ConnectionRejectionError({"code": error.code, "message": error.detail}) from None
        session.principal = principal
        session.budget.rate = self.app.ctx.throttle.message_budget(principal).rate
        if session.pending is not None:
            session.pending.authenticated()
        mailbox = self.hub.mailbox(principal)
        session.watcher = asyncio.create_task(session.follow(mailbox), name="graphql-ws-watch")
        return UNSET

    async def subscribe(
        self,
        query: str,
        variable_values: dict[str, Any] | None = None,
        context_value: Session | None = None,
        root_value: Any = None,
        operation_name: str | None = None,
    ) -> AsyncGenerator[ExecutionResult, None]:
        assert context_value is not None
        return self._results(query, variable_values, context_value, operation_name)

    stream = subscribe

    def context(self, principal: Principal, request_id: str | None, socket: Any) -> Context:
        """A fresh context per operation; ``socket.close(code, reason)`` ends the transport."""
        settings = self.app.ctx.settings
        context = Context(
            principal=principal,
            request_id=request_id,
            page_size_default=settings.page_size_default,
            page_size_max=settings.page_size_max,
            idempotency_ttl_seconds=settings.idempotency_ttl_seconds,
        )
        context.hub = self.hub
        context.socket = socket
        return context

    async def open_stream(
        self,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Context,
        prepared: Prepared | None = None,
    ) -> AsyncGenerator[CoreResult, None] | list[GraphQLError]:
        """A subscription's results, or the errors (shaped) that stopped it before it started."""
        opened = await self.runner.open_stream(query, variables, operation_name, context, prepared)
        return shape(opened) if isinstance(opened, list) else opened

    async def _results(
        self,
        query: Any,
        variables: dict[str, Any] | None,
        session: Session,
        operation_name: str | None,
    ) -> AsyncGenerator[ExecutionResult, None]:
        if not isinstance(query, str):
            yield PreExecutionError(data=None, errors=[GraphQLError("query must be a string")])
            return
        prepared = self.runner.prepare(query)
        document, errors = prepared.document, prepared.errors
        cost = max(1, prepared.cost(operation_name)) if document is not None else 1
        try:  # the same budget of cost points as over HTTP
            await self.app.ctx.throttle.charge_caller(None, "graphql", session.principal, cost)
        except RateLimited as refused:
            # The operation gets the error, then the socket closes: over a limit, 1008.
            try:
                yield PreExecutionError(
                    data=None, errors=shape([GraphQLError(refused.detail, original_error=refused)])
                )
            finally:
                await session.close(RATE_LIMITED.code, "rate limited")
            return
        if document is None:
            metrics.graphql_operation(prepared, operation_name, "ws", True, cost)
            yield PreExecutionError(data=None, errors=shape(errors))
            return
        operation = get_operation_ast(document, operation_name)
        context = self.context(session.principal, session.request_id, session)
        if operation is None or operation.operation is not OperationType.SUBSCRIPTION:
            result = await self.runner.run(query, variables, operation_name, context, _ALL)
            metrics.graphql_operation(prepared, operation_name, "ws", bool(result.errors), cost)
            yield ExecutionResult(data=result.data, errors=shape(result.errors))
            return
        source = await self.open_stream(query, variables, operation_name, context, prepared)
        metrics.graphql_operation(prepared, operation_name, "ws", isinstance(source, list), cost)
        if isinstance(source, list):
            yield PreExecutionError(data=None, errors=source)
            return
        metrics.subscriptions_changed("graphql-ws", 1)
        try:
            async for result in source:
                yield ExecutionResult(data=result.data, errors=shape(result.errors))
        finally:
            metrics.subscriptions_changed("graphql-ws", -1)
            with contextlib.suppress(Exception):
                await source.aclose()


async def serve(
    request: Request,
    ws: WebsocketImplProtocol,
    operations: SocketOperations,
    request_id: str | None,
) -> None:
    """Run one GraphQL socket with the protocol its client chose.

    Its authentication deadline (both protocols) is the ``PendingSocket`` that
    ``SocketOperations.upgrade`` left on ``request.ctx``.
    """
    session = Session(
        ws,
        request_id,
        pending=getattr(request.ctx, "pending_socket", None),
        budget=operations.app.ctx.throttle.message_budget(),
    )
    socket = SanicWebSocket(operations, ws, session.budget)
    settings = operations.app.ctx.settings
    handler: BaseGraphQLTransportWSHandler[Any, Any] | BaseGraphQLWSHandler[Any, Any]
    if ws.subprotocol == LEGACY_WS:
        handler = BaseGraphQLWSHandler(
            operations,  # type: ignore[arg-type]  # the "view" Strawberry's handlers call
            socket,
            session,
            None,
            operations,  # type: ignore[arg-type]
            keep_alive=True,
            keep_alive_interval=LEGACY_KEEP_ALIVE_SECONDS,
            max_subscriptions_per_connection=settings.realtime_subscriptions_per_connection,
        )
    else:
        handler = BaseGraphQLTransportWSHandler(
            operations,  # type: ignore[arg-type]  # the "view" Strawberry's handlers call
            socket,
            session,
            None,
            operations,  # type: ignore[arg-type]
            # Strawberry's own init timeout, a backstop: the socket's deadline (from the
            # upgrade, not from here) is the same length and runs out first.
            timedelta(seconds=settings.realtime_auth_timeout_seconds),
            max_subscriptions_per_connection=settings.realtime_subscriptions_per_connection,
        )
    metrics.connection_opened("graphql-ws")
    try:
        await handler.handle()
    finally:
        metrics.connection_closed("graphql-ws")
        if session.watcher is not None:
            session.watcher.cancel()
        for task in session.closing:
            with contextlib.suppress(BaseException):
                await task
