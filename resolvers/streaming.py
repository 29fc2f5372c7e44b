"""Subscriptions over plain HTTP on ``/graphql``: Server-Sent Events and multipart.

For clients that cannot keep a WebSocket (proxies, serverless front ends), a
subscription sent with ``GET`` or ``POST /graphql`` streams its results:

- ``Accept: text/event-stream``: the graphql-sse protocol's "distinct
  connections" mode: one ``event: next`` per result, ``event: complete`` at the end;
- ``Accept: multipart/mixed``: Apollo's multipart subscription protocol
  (``boundary="graphql"``, each part ``{"payload": result}``, ``{}`` heartbeats).

Errors that stop a subscription before it starts (validation, permissions,
``RESYNC_REQUIRED``) are an ordinary JSON answer with status 400 and the same
``extensions.code`` as every other door. When the server ends a running
stream (token expired or revoked, slow consumer, resync, shutdown) a last
payload carries an error whose ``extensions.code`` says why (``close`` is the
WebSocket close code the same end has there), then the stream completes.
Heartbeats every ``STREAM_HEARTBEAT_SECONDS`` keep proxies and Sanic's idle-write
timeout from closing a quiet stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
from graphql import ExecutionResult
from sanic import HTTPResponse, Request

from db.principal import Principal
from gateway import metrics
from gateway.errors import NotAcceptable
from realtime.close_codes import NORMAL, close_name
from resolvers.errors import shape
from resolvers.ws import SocketOperations

SSE = "text/event-stream"
MULTIPART = "multipart/mixed"
QUEUED_RESULTS = 100
_STREAM_HEADERS = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}


class _Ending:
    """What ``context.socket`` is for an HTTP stream: closing it ends the stream
    (the subscription's generator returns) and leaves why, for the last payload."""

    def __init__(self) -> None:
        self.reason: tuple[int, str] | None = None

    def close(self, code: int, reason: str) -> None:
        self.reason = (code, reason)

    def last_error(self) -> dict[str, Any] | None:
        """The GraphQL error that tells the client why the server ended the stream."""
        if self.reason is None or self.reason[0] == NORMAL:
            return None
        code, reason = self.reason
        return {"message": reason, "extensions": {"code": close_name(code, reason), "close": code}}


def _result(result: ExecutionResult) -> dict[str, Any]:
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [error.formatted for error in shape(result.errors)]
    return body


async def stream_subscription(
    request: Request,
    operations: SocketOperations,
    query: str,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    principal: Principal,
    request_id: str | None,
) -> HTTPResponse | None:
    accept = request.headers.get("accept", "")
    if SSE in accept:
        multipart = False
    elif MULTIPART in accept:
        multipart = True
    else:
        raise NotAcceptable(
            "a subscription streams: send Accept: text/event-stream (graphql-sse) or"
            ' multipart/mixed;subscriptionSpec="1.0", or use the WebSocket on /graphql'
        )
    # Results wait here for the response; ``slots`` bounds how many (the end
    # marker, None, always fits).
    queue: asyncio.Queue[ExecutionResult | None] = asyncio.Queue()
    slots = asyncio.Semaphore(QUEUED_RESULTS)
    ending = _Ending()
    context = operations.context(principal, request_id, ending)
    opened = await operations.open_stream(query, variables, operation_name, context)
    if isinstance(opened, list):
        body = {"errors": [error.formatted for error in opened]}
        return HTTPResponse(orjson.dumps(body), status=400, content_type="application/json")

    async def pump() -> None:
        try:
            async for result in opened:
                await slots.acquire()
                queue.put_nowait(result)
        finally:
            queue.put_nowait(None)

    if multipart:
        content_type = 'multipart/mixed; boundary="graphql"; subscriptionSpec="1.0"'
    else:
        content_type = SSE
    heartbeat = request.app.ctx.settings.stream_heartbeat_seconds
    response = await request.respond(content_type=content_type, headers=_STREAM_HEADERS)
    pumping = asyncio.create_task(pump(), name="graphql-http-subscription")
    channel = "graphql-multipart" if multipart else "graphql-sse"
    metrics.connection_opened(channel)
    metrics.subscriptions_changed(channel, 1)
    try:
        # Something at once, so that the status and headers go out now.
        await response.send(b"--graphql" if multipart else b": connected\n\n")
        while True:
            try:
                async with asyncio.timeout(heartbeat):
                    item = await queue.get()
            except TimeoutError:
                await response.send(_part({}) if multipart else b": heartbeat\n\n")
                continue
            if item is None:
                break
            slots.release()
            if multipart:
                await response.send(_part({"payload": _result(item)}))
            else:
                await response.send(b"event: next\ndata: " + _json(_result(item)) + b"\n\n")
        last = ending.last_error()
        if last is not None and multipart:
            # Apollo's multipart protocol: a transport error ends the stream.
            await response.send(_part({"payload": None, "errors": [last]}))
        elif last is not None:
            await response.send(b"event: next\ndata: " + _json({"errors": [last]}) + b"\n\n")
        await response.send(b"--\r\n" if multipart else b"event: complete\ndata:\n\n")
    finally:
        metrics.connection_closed(channel)
        metrics.subscriptions_changed(channel, -1)
        pumping.cancel()
        with contextlib.suppress(BaseException):
            await pumping
        with contextlib.suppress(Exception):
            await opened.aclose()
    await response.eof()
    return None


def _json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_UTC_Z)


def _part(value: Any) -> bytes:
    body = _json(value)
    head = b"\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: %d\r\n\r\n"
    return head % len(body) + body + b"\r\n--graphql"
