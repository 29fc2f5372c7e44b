"""Subscriptions over plain HTTP on ``/graphql``: Server-Sent Events and multipart.

For clients that cannot keep a WebSocket (proxies, serverless front ends), a
subscription sent with ``GET`` or ``POST /graphql`` streams its results:

- ``Accept: text/event-stream``: the graphql-sse protocol's "distinct
  connections" mode: one ``event: next`` per result, ``event: complete`` at the end;
- ``Accept: multipart/mixed``: Apollo's multipart subscription protocol
  (``boundary="graphql"``, each part ``{"payload": result}``, ``{}`` heartbeats).

Errors that stop a subscription before it starts (validation, permissions,
``RESYNC_REQUIRED``) are an ordinary JSON answer with status 400 and the same
``extensions.code`` as every other door. Heartbeats keep proxies and Sanic's
idle-write timeout from closing a quiet stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
from graphql import ExecutionResult
from sanic import HTTPResponse, Request

from db.errors import DomainError
from db.principal import Principal
from resolvers.ws import SocketOperations, shape

SSE = "text/event-stream"
MULTIPART = "multipart/mixed"
HEARTBEAT_SECONDS = 5.0
_STREAM_HEADERS = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}


class NotAcceptable(DomainError):
    code = "NOT_ACCEPTABLE"
    status = 406
    title = "Not acceptable"


class _Ending:
    """What ``context.socket`` is for an HTTP stream: closing it ends the stream."""

    def __init__(self, queue: asyncio.Queue[ExecutionResult | None]) -> None:
        self.queue = queue
        self.reason: tuple[int, str] | None = None

    def close(self, code: int, reason: str) -> None:
        self.reason = (code, reason)
        self.queue.put_nowait(None)


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
    queue: asyncio.Queue[ExecutionResult | None] = asyncio.Queue(maxsize=100)
    ending = _Ending(queue)
    context = operations.context(principal, request_id, ending)
    opened = await operations.open_stream(query, variables, operation_name, context)
    if isinstance(opened, list):
        body = {"errors": [error.formatted for error in opened]}
        return HTTPResponse(orjson.dumps(body), status=400, content_type="application/json")

    async def pump() -> None:
        try:
            async for result in opened:
                await queue.put(result)
        finally:
            queue.put_nowait(None)

    if multipart:
        content_type = 'multipart/mixed; boundary="graphql"; subscriptionSpec="1.0"'
    else:
        content_type = SSE
    response = await request.respond(content_type=content_type, headers=_STREAM_HEADERS)
    pumping = asyncio.create_task(pump(), name="graphql-http-subscription")
    try:
        if multipart:
            await response.send(b"--graphql")
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                await response.send(_part({}) if multipart else b": heartbeat\n\n")
                continue
            if item is None:
                break
            if multipart:
                await response.send(_part({"payload": _result(item)}))
            else:
                await response.send(b"event: next\ndata: " + _json(_result(item)) + b"\n\n")
        await response.send(b"--\r\n" if multipart else b"event: complete\ndata:\n\n")
    finally:
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
