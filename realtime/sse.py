"""Server-Sent Events at ``/api/v1/events``.

``GET /api/v1/events?topics=orders,products&filter=...`` streams change events:
``id:`` is the stream position, ``event:`` the event type, ``data:`` the event
as JSON. A reconnecting ``EventSource`` sends ``Last-Event-ID`` and resumes
after it (``?after=`` does the same for other clients). ``filter`` applies to
a single topic; with several, ``filter.<topic>=`` gives each its own.

Authentication: ``Authorization``/``X-API-Key`` headers, or ``?ticket=`` from
``POST /api/v1/events/tickets`` for browsers. Keep-alive comments go out every
``STREAM_HEARTBEAT_SECONDS`` (shorter than Sanic's idle-write timeout), and the
headers stop proxies from buffering. When the server ends the stream (token
expired or revoked, slow consumer, shutdown) it sends a last ``event: close``
with ``{"code", "reason"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
from sanic import HTTPResponse, Request
from sanic.response import json as json_response

from db.errors import InvalidArgument, InvalidToken
from db.events import parse_position
from db.principal import Principal
from gateway import metrics
from realtime.close_codes import NORMAL
from realtime.hub import Hub, MailboxClosed, StreamEvent
from realtime.tickets import TTL_SECONDS, Tickets
from realtime.topics import TOPICS

if TYPE_CHECKING:
    from sanic import Blueprint

    from gateway.context import GatewayApp

RETRY_MS = 2000
HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
    "Connection": "keep-alive",
}


def stream_topics(args: Mapping[str, list[str]]) -> dict[str, str | None]:
    """``{topic: filter}`` from ``topics``, ``filter`` and ``filter.<topic>`` parameters.

    ``args`` maps each parameter to all its values (``dict(request.args)``: Sanic's own
    ``get`` returns only the first).
    """
    names = [name.strip() for raw in args.get("topics", []) for name in raw.split(",")]
    names = [name for name in names if name]
    if not names:
        raise InvalidArgument("topics: name at least one topic, e.g. ?topics=orders")
    topics: dict[str, str | None] = dict.fromkeys(names)
    shared = args.get("filter")
    if shared:
        if len(topics) != 1:
            raise InvalidArgument("filter: with several topics use filter.<topic>=...")
        topics[names[0]] = shared[0]
    for key, values in args.items():
        if key.startswith("filter."):
            topic = key.removeprefix("filter.")
            if topic not in topics:
                raise InvalidArgument(f"{key}: {topic!r} is not one of the requested topics")
            topics[topic] = values[0]
    return topics


def resume_position(request: Request) -> int | None:
    raw = request.headers.get("last-event-id") or request.args.get("after")
    if raw is None or raw == "":
        return None
    position = parse_position(raw)
    if position is None:
        raise InvalidArgument(f"after / Last-Event-ID: expected a stream position, got {raw!r}")
    return position


def _sse(event: StreamEvent | bytes) -> bytes:
    return event if isinstance(event, bytes) else event.sse


def add_routes(bp: Blueprint, app: GatewayApp, hub: Hub, tickets: Tickets) -> None:
    settings = app.ctx.settings

    async def principal_of(request: Request) -> Principal:
        ticket = request.args.get("ticket")
        if ticket is None:
            return await app.ctx.throttle.authenticate(request)
        app.ctx.throttle.check_address(request)
        try:
            principal = await tickets.redeem(ticket)
        except InvalidToken:
            await app.ctx.throttle.credential_refused(request)
            raise
        if principal.credential_id is not None and principal.credential_id in app.ctx.auth.denylist:
            raise InvalidToken("the token behind this ticket was revoked")
        await app.ctx.throttle.charge_caller(request, "read", principal)
        return principal

    async def issue_ticket(request: Request) -> HTTPResponse:
        principal = await app.ctx.throttle.authenticate(request)
        ticket = await tickets.issue(principal)
        return json_response({"ticket": ticket, "expires_in": TTL_SECONDS}, status=201)

    async def events(request: Request) -> None:
        principal = await principal_of(request)
        request.ctx.principal = principal
        topics = stream_topics(dict(request.args))
        after = resume_position(request)
        mailbox = hub.mailbox(principal)
        try:
            subscriber = await hub.subscribe(mailbox, topics, after=after)
        except BaseException:
            mailbox.close(NORMAL, "not subscribed")
            raise
        response = await request.respond(content_type="text/event-stream", headers=HEADERS)
        metrics.connection_opened("sse")
        metrics.subscriptions_changed("sse", 1)
        try:
            await response.send(b"retry: %d\n: position %d\n\n" % (RETRY_MS, subscriber.cursor))
            keepalive = settings.stream_heartbeat_seconds
            while True:
                try:
                    items = await mailbox.get(keepalive)
                except MailboxClosed as closed:
                    body = orjson.dumps({"code": closed.code, "reason": closed.reason})
                    await response.send(b"event: close\ndata: " + body + b"\n\n")
                    break
                if not items:
                    await response.send(b": keep-alive\n\n")
                else:
                    await response.send(b"".join(_sse(event) for _, event in items))
                    metrics.delivered([event for _, event in items])
        finally:
            metrics.connection_closed("sse")
            metrics.subscriptions_changed("sse", -1)
            mailbox.close(NORMAL, "stream ended")
        await response.eof()

    bp.add_route(events, "/events", methods=["GET"], name="events")
    bp.add_route(issue_ticket, "/events/tickets", methods=["POST"], name="event_tickets")


def _problem(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Problem"}
    return {"description": description, "content": {"application/problem+json": {"schema": schema}}}


# As every REST operation (rest/docs.py ``security``): an OAuth2 token, the same
# token as a bearer, or an API key.
_SECURITY: list[dict[str, list[str]]] = [{"oauth2": []}, {"bearer": []}, {"apiKey": []}]
# The stream's operations for the REST OpenAPI document (``/api/v1/openapi.json``).
OPENAPI_PATHS: dict[str, dict[str, Any]] = {
    "/events": {
        "get": {
            "summary": "Stream change events (Server-Sent Events)",
            "operationId": "stream_events",
            "tags": ["realtime"],
            "description": (
                "Each frame's `id` is its stream position, `event` the event type and `data`"
                " the change event (schema in /api/v1/asyncapi.json). Resume with"
                " `Last-Event-ID` or `after`. Needs the read scope of every topic."
            ),
            "parameters": [
                {
                    "name": "topics",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string"},
                    "description": f"Comma-separated: {', '.join(TOPICS)}.",
                },
                {
                    "name": "filter",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "AIP-160 filter for a single topic "
                    "(filter.<topic> for several).",
                },
                {
                    "name": "after",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 0},
                    "description": "Resume after this stream position.",
                },
                {
                    "name": "ticket",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "Single-use ticket from POST /events/tickets (browsers).",
                },
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "schema": {"type": "string"},
                    "description": "Sent by EventSource on reconnect: resume after it.",
                },
            ],
            "responses": {
                "200": {
                    "description": "The stream",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                "400": _problem("Unknown topic, bad filter or position"),
                "401": _problem("Missing or invalid credentials"),
                "403": _problem("A topic's read scope is missing"),
                "410": _problem("RESYNC_REQUIRED: the position is no longer kept"),
            },
            "security": _SECURITY,
        }
    },
    "/events/tickets": {
        "post": {
            "summary": "Get a single-use stream ticket for EventSource",
            "operationId": "issue_event_ticket",
            "tags": ["realtime"],
            "description": f"Valid once, for {TTL_SECONDS} seconds, for the caller's Principal.",
            "responses": {
                "201": {
                    "description": "The ticket",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["ticket", "expires_in"],
                                "properties": {
                                    "ticket": {"type": "string"},
                                    "expires_in": {"type": "integer"},
                                },
                            }
                        }
                    },
                },
                "401": _problem("Missing or invalid credentials"),
                "403": _problem("Not allowed"),
            },
            "security": _SECURITY,
        }
    },
}
