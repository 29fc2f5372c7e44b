"""The JSON WebSocket channel at ``/api/v1/realtime`` (AsyncAPI: ``/api/v1/asyncapi.json``).

For clients that do not speak GraphQL. Every frame is a JSON object with a
``type``. The client authenticates with headers on the upgrade request or with
``{"type": "auth", "token": ...}`` (or ``"api_key"``; the grammar of every socket,
``gateway.auth.credentials``) as its first message, and
may send ``auth`` again at any time to carry on under a fresh token. Then:

- ``{"type": "subscribe", "id": "s1", "topics": ["orders"], "filter": "...", "after": 42}``
  starts stream ``s1`` (``filter`` is a string for one topic or
  ``{"orders": "..."}``; ``after`` resumes after a position). The server answers
  ``subscribed`` and then sends ``{"type": "event", "id": "s1", "event": {...}}``.
- ``{"type": "unsubscribe", "id": "s1"}`` ends it (``unsubscribed``).
- ``{"type": "ping"}`` gets ``{"type": "pong"}``.

A bad message gets ``{"type": "error", "id": ..., "code": ..., "message": ...}``
with the REST error code and changes nothing else. The socket closes with one of
the codes of ``realtime.close_codes`` (shutdown, slow consumer, token expired or a
message before ``auth``, credentials refused or revoked, no ``auth`` in time, over
its message budget); after any of them a client reconnects and resumes each stream
from its last position.
Too many unauthenticated sockets from one address are refused before the upgrade
(HTTP 429, see ``realtime.admission``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import orjson
from sanic import Request
from sanic.exceptions import WebsocketClosed
from sanic.server.websockets.impl import WebsocketImplProtocol
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from db.errors import DomainError, InvalidArgument
from db.events import parse_position
from db.principal import Principal
from gateway import metrics
from realtime.admission import PendingSocket, unauthenticated_sockets
from realtime.close_codes import NORMAL, NOT_AUTHENTICATED, RATE_LIMITED, REVOKED
from realtime.hub import Hub, Mailbox, MailboxClosed, StreamEvent, Subscriber

if TYPE_CHECKING:
    from sanic import Blueprint

    from gateway.context import GatewayApp

log = logging.getLogger("gateway.realtime")

MAX_ID_LENGTH = 64


def _frame(**fields: Any) -> str:
    return orjson.dumps(fields).decode()


def _error_frame(ident: Any, error: DomainError) -> str:
    return _frame(
        type="error",
        id=ident if isinstance(ident, str) else None,
        code=error.code,
        message=error.detail,
    )


def event_frame(subscriber: Subscriber | None, event: StreamEvent | bytes) -> bytes:
    if isinstance(event, bytes):
        return event
    assert subscriber is not None
    return event.frame(subscriber.id)


async def send_texts(ws: WebsocketImplProtocol, frames: list[bytes]) -> None:
    """Send text frames (already UTF-8) in one write.

    Sanic's ``send`` takes one ``str``, encodes it and writes it: one copy and one
    ``transport.write`` per frame. This does what it does (same lock, same
    protocol object) for a whole batch, with frames encoded once per event.
    """
    async with ws.conn_mutex:
        if ws.ws_proto.state is not State.OPEN:
            raise WebsocketClosed("the connection is closing")
        for frame in frames:
            ws.ws_proto.send_text(frame)
        await ws.send_data([b"".join(ws.ws_proto.data_to_send())])  # type: ignore[no-untyped-call]


class Connection:
    """One socket. ``pending`` is None when the upgrade request carried credentials."""

    def __init__(
        self, app: GatewayApp, hub: Hub, ws: WebsocketImplProtocol, pending: PendingSocket | None
    ) -> None:
        self.app = app
        self.hub = hub
        self.ws = ws
        self.pending = pending
        self.mailbox: Mailbox | None = None
        self.streams: dict[str, Subscriber] = {}
        self.writer: asyncio.Task[None] | None = None
        self.budget = app.ctx.throttle.message_budget()

    async def run(self, request: Request) -> None:
        metrics.connection_opened("json-ws")
        try:
            if not await self._authenticate_upgrade(request):
                return
            while True:
                raw = await self._recv()
                if raw is None:
                    continue
                await self._handle(raw)
        except (ConnectionClosed, WebsocketClosed):
            return  # the client left, or we closed the socket (the writer's close code)
        finally:
            metrics.connection_closed("json-ws")
            metrics.subscriptions_changed("json-ws", -len(self.streams))
            if self.mailbox is not None:
                self.mailbox.close(NORMAL, "connection closed")
            if self.writer is not None:
                self.writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self.writer

    async def _authenticate_upgrade(self, request: Request) -> bool:
        if self.pending is None:
            try:
                principal = await self.app.ctx.auth.authenticate(request)
            except DomainError as error:
                await self.ws.close(REVOKED.code, error.detail[:120])
                return False
            await self._start(principal)
            return True
        # Until ``auth`` arrives the socket's deadline (realtime.admission) runs: it
        # closes the socket with 4408, which ends this loop with ConnectionClosed.
        while self.mailbox is None:
            raw = await self._recv()
            if raw is None:
                continue
            try:
                message = self._parse(raw)
            except DomainError as error:
                await self.ws.send(_error_frame(None, error))
                continue
            kind = message.get("type")
            if kind == "ping":
                await self.ws.send(_frame(type="pong"))
            elif kind == "auth":
                try:
                    principal = await self._principal(message)
                except DomainError as error:
                    await self.ws.close(REVOKED.code, error.detail[:120])
                    return False
                await self._start(principal)
            else:
                await self.ws.close(*NOT_AUTHENTICATED)
                return False
        return True

    async def _recv(self) -> str | bytes | None:
        """The next frame, within the socket's budget of messages (else error, 1008)."""
        raw = await self.ws.recv()
        if raw is not None and (retry := self.budget.spend()):
            await self.ws.send(_error_frame(None, self.budget.refusal(retry)))
            await self.ws.close(RATE_LIMITED.code, "too many messages")
            raise WebsocketClosed("closed: too many messages")
        return raw

    async def _principal(self, message: dict[str, Any]) -> Principal:
        return await self.app.ctx.auth.from_message(message)

    async def _start(self, principal: Principal) -> None:
        if self.pending is not None:
            self.pending.authenticated()
        self.mailbox = self.hub.mailbox(principal)
        self.budget.rate = self.app.ctx.throttle.message_budget(principal).rate
        await self.ws.send(_frame(type="authenticated", expires_at=principal.expires_at))
        self.writer = asyncio.create_task(self._write(self.mailbox), name="realtime-writer")

    async def _write(self, mailbox: Mailbox) -> None:
        ws = self.ws
        try:
            while True:
                items = await mailbox.get()
                await send_texts(
                    ws, [event_frame(subscriber, event) for subscriber, event in items]
                )
                metrics.delivered([event for _, event in items])
        except MailboxClosed as closed:
            with contextlib.suppress(Exception):
                await ws.close(closed.code, closed.reason)
        except Exception:  # the socket went away; the reader notices and cleans up
            return

    @staticmethod
    def _parse(raw: str | bytes) -> dict[str, Any]:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InvalidArgument("frames must be JSON objects") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise InvalidArgument('frames must be JSON objects with a "type"')
        return message

    def _error(self, ident: Any, error: DomainError) -> None:
        assert self.mailbox is not None
        self.mailbox.push(None, _error_frame(ident, error).encode())

    def _reply(self, **fields: Any) -> None:
        assert self.mailbox is not None
        self.mailbox.push(None, orjson.dumps(fields))

    async def _handle(self, raw: str | bytes) -> None:
        ident = None
        try:
            message = self._parse(raw)
            ident = message.get("id")
            kind = message["type"]
            if kind == "subscribe":
                await self._subscribe(message)
            elif kind == "unsubscribe":
                self._unsubscribe(message)
            elif kind == "ping":
                self._reply(type="pong", payload=message.get("payload"))
            elif kind == "auth":
                principal = await self._principal(message)
                assert self.mailbox is not None
                old = self.mailbox.principal
                if (principal.subject, principal.organization_id) != (
                    old.subject,
                    old.organization_id,
                ):
                    raise InvalidArgument("auth: a connection stays with one caller")
                self.mailbox.reauthenticate(principal)
                self._reply(type="authenticated", expires_at=principal.expires_at)
            else:
                raise InvalidArgument(
                    f"unknown message type {kind!r}; expected subscribe, unsubscribe, ping, auth"
                )
        except DomainError as error:
            self._error(ident, error)

    async def _subscribe(self, message: dict[str, Any]) -> None:
        assert self.mailbox is not None
        ident = message.get("id")
        if not isinstance(ident, str) or not 0 < len(ident) <= MAX_ID_LENGTH:
            raise InvalidArgument(f"subscribe: id must be a string of 1 to {MAX_ID_LENGTH}")
        if ident in self.streams:
            raise InvalidArgument(f"subscribe: id {ident!r} is already in use")
        most = self.app.ctx.settings.realtime_subscriptions_per_connection
        if len(self.streams) >= most:
            raise InvalidArgument(f"subscribe: at most {most} per connection")
        topics = _topics(message)
        after = message.get("after")
        if after is not None and (isinstance(after, str) or parse_position(after) is None):
            raise InvalidArgument("subscribe: after must be a stream position (an integer >= 0)")

        def accepted(subscriber: Subscriber) -> None:
            self.streams[ident] = subscriber
            metrics.subscriptions_changed("json-ws", 1)
            self._reply(type="subscribed", id=ident, position=subscriber.cursor)

        def failed(subscriber: Subscriber, error: DomainError) -> None:
            # The catch-up could not finish (pruned meanwhile, or the log is away).
            if self.streams.get(ident) is subscriber:
                del self.streams[ident]
                metrics.subscriptions_changed("json-ws", -1)
                self._error(ident, error)

        try:
            await self.hub.subscribe(
                self.mailbox, topics, after=after, ident=ident, accepted=accepted, failed=failed
            )
        except BaseException:
            if self.streams.pop(ident, None) is not None:
                metrics.subscriptions_changed("json-ws", -1)
            raise

    def _unsubscribe(self, message: dict[str, Any]) -> None:
        ident = message.get("id")
        subscriber = self.streams.pop(ident, None) if isinstance(ident, str) else None
        if subscriber is None:
            raise InvalidArgument(f"unsubscribe: no subscription {ident!r}")
        metrics.subscriptions_changed("json-ws", -1)
        self.hub.remove(subscriber)
        self._reply(type="unsubscribed", id=ident)


def _topics(message: dict[str, Any]) -> dict[str, str | None]:
    names = message.get("topics")
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise InvalidArgument('subscribe: topics must be a list of topic names, e.g. ["orders"]')
    topics: dict[str, str | None] = dict.fromkeys(names)
    condition = message.get("filter")
    if condition is None:
        return topics
    if isinstance(condition, str):
        if len(topics) != 1:
            raise InvalidArgument("subscribe: with several topics, filter is {topic: filter}")
        topics[names[0]] = condition
        return topics
    if not isinstance(condition, dict):
        raise InvalidArgument("subscribe: filter must be a string or {topic: filter}")
    for topic, text in condition.items():
        if topic not in topics or not isinstance(text, str):
            raise InvalidArgument(f"subscribe: filter.{topic} must be a string for a chosen topic")
        topics[topic] = text
    return topics


def add_routes(bp: Blueprint, app: GatewayApp, hub: Hub) -> None:
    sockets = unauthenticated_sockets(app)

    async def connection(
        request: Request, ws: WebsocketImplProtocol, pending: PendingSocket | None
    ) -> None:
        await Connection(app, hub, ws, pending).run(request)

    async def realtime(request: Request) -> None:
        # A plain route, not a WebSocket route, so that a client with too many
        # unauthenticated sockets is refused with an HTTP 429 before the upgrade.
        headers = request.headers
        in_band = not (headers.get("authorization") or headers.get("x-api-key"))
        await sockets.upgrade(request, connection, pending=in_band)

    realtime.is_websocket = True  # type: ignore[attr-defined]  # may return no response
    app.enable_websocket()
    bp.add_route(realtime, "/realtime", methods=["GET"], name="realtime")
