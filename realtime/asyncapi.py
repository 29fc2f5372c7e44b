"""The AsyncAPI 3 document of the real-time channels, served at ``/api/v1/asyncapi.json``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from pydantic.json_schema import models_json_schema
from sanic import HTTPResponse, Request

from db.catalog import CATALOG
from realtime.close_codes import descriptions
from realtime.topics import TOPICS

if TYPE_CHECKING:
    from sanic import Blueprint

    from gateway.context import GatewayApp


def _object(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def _message(name: str, summary: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "title": name, "summary": summary, "payload": payload}


STRING = {"type": "string"}
POSITION = {"type": "integer", "minimum": 0, "description": "stream position"}
TOPIC = {"type": "string", "enum": list(TOPICS)}

CHANGE_EVENT = _object(
    ["position", "type", "resource", "resource_id", "occurred_at", "data"],
    position=POSITION,
    type={"type": "string", "examples": ["order.created", "order.paid", "product.updated"]},
    resource={"type": "string", "enum": [t.resource for t in TOPICS.values()]},
    resource_id=STRING,
    organization_id={"type": "integer"},
    actor={"type": "string", "description": "who made the change"},
    occurred_at={"type": "string", "format": "date-time"},
    data={
        "description": "the resource as REST returns it after the change",
        "oneOf": [{"$ref": f"#/components/schemas/{r.shape.__name__}"} for r in CATALOG.resources],
    },
)


def _resource_schemas() -> dict[str, Any]:
    """Each declared resource's shape, as the ``data`` of its events."""
    _, schema = models_json_schema(
        [(r.shape, "serialization") for r in CATALOG.resources],
        ref_template="#/components/schemas/{model}",
    )
    return dict(schema.get("$defs", {}))


ERROR = _object(
    ["type", "code", "message"],
    type={"const": "error"},
    id={"type": ["string", "null"]},
    code={"type": "string", "examples": ["INVALID_ARGUMENT", "PERMISSION_DENIED"]},
    message=STRING,
)

CLIENT_MESSAGES = {
    "auth": _message(
        "auth",
        "Authenticate (first message, unless the upgrade carried headers) or re-authenticate",
        _object(["type"], type={"const": "auth"}, token=STRING, api_key=STRING),
    ),
    "subscribe": _message(
        "subscribe",
        "Start an ordered stream of change events; resume with after",
        _object(
            ["type", "id", "topics"],
            type={"const": "subscribe"},
            id={"type": "string", "maxLength": 64},
            topics={"type": "array", "items": TOPIC, "minItems": 1},
            filter={
                "oneOf": [STRING, {"type": "object", "additionalProperties": STRING}],
                "description": "AIP-160 filter on the event's data, as for REST lists",
            },
            after=POSITION,
        ),
    ),
    "unsubscribe": _message(
        "unsubscribe",
        "End a stream",
        _object(["type", "id"], type={"const": "unsubscribe"}, id=STRING),
    ),
    "ping": _message("ping", "Liveness check", _object(["type"], type={"const": "ping"})),
}
SERVER_MESSAGES = {
    "authenticated": _message(
        "authenticated",
        "Credentials accepted",
        _object(["type"], type={"const": "authenticated"}, expires_at={"type": ["number", "null"]}),
    ),
    "subscribed": _message(
        "subscribed",
        "The stream is open; events after position follow",
        _object(
            ["type", "id", "position"], type={"const": "subscribed"}, id=STRING, position=POSITION
        ),
    ),
    "event": _message(
        "event",
        "A change event of a stream",
        _object(["type", "id", "event"], type={"const": "event"}, id=STRING, event=CHANGE_EVENT),
    ),
    "unsubscribed": _message(
        "unsubscribed",
        "The stream ended",
        _object(["type", "id"], type={"const": "unsubscribed"}, id=STRING),
    ),
    "pong": _message("pong", "Answer to ping", _object(["type"], type={"const": "pong"})),
    "error": _message(
        "error",
        "A message was refused, or a stream's catch-up ended (RESYNC_REQUIRED: the resume "
        "position is no longer kept; UNAVAILABLE: the change log could not be read, "
        "subscribe again with your last position; "
        "RATE_LIMITED: the socket is over its budget of messages and closes with 1008)",
        ERROR,
    ),
}
CLOSE_CODES = descriptions()  # the table in realtime/close_codes.py


def document(server_url: str) -> dict[str, Any]:
    host = server_url.split("://", 1)[-1].rstrip("/")
    secure = server_url.startswith("https")

    def refs(names: Any, kind: str) -> list[dict[str, str]]:
        return [{"$ref": f"#/channels/{kind}/messages/{name}"} for name in names]

    every = {**CLIENT_MESSAGES, **SERVER_MESSAGES}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Commerce gateway real-time channels",
            "version": "1.0.0",
            "description": (
                f"Change events of {', '.join(r.plural for r in CATALOG.resources)}, "
                "in commit order with a "
                "gap-free stream position. Resume after a position to miss nothing. "
                "Close codes of the WebSocket channel: "
                + "; ".join(f"{code} {text}" for code, text in CLOSE_CODES.items())
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "gateway": {
                "host": host,
                "protocol": "wss" if secure else "ws",
                "security": [{"$ref": "#/components/securitySchemes/bearer"}],
            },
            "gateway-http": {
                "host": host,
                "protocol": "https" if secure else "http",
                "security": [{"$ref": "#/components/securitySchemes/bearer"}],
            },
        },
        "channels": {
            "realtime": {
                "address": "/api/v1/realtime",
                "title": "JSON WebSocket channel",
                "servers": [{"$ref": "#/servers/gateway"}],
                "messages": every,
                "bindings": {"ws": {"method": "GET"}},
            },
            "events": {
                "address": "/api/v1/events",
                "title": "Server-Sent Events",
                "description": (
                    "GET with ?topics=orders,products, filter= (one topic) or "
                    "filter.<topic>=, and Last-Event-ID or ?after= to resume. Each frame's id "
                    "is the stream position, its event the event type, its data a change "
                    "event. Browsers authenticate with ?ticket= from POST "
                    "/api/v1/events/tickets (single use, 60 s)."
                ),
                "servers": [{"$ref": "#/servers/gateway-http"}],
                "messages": {"event": SERVER_MESSAGES["event"]},
            },
        },
        "operations": {
            "sendToRealtime": {
                "action": "receive",
                "channel": {"$ref": "#/channels/realtime"},
                "messages": refs(CLIENT_MESSAGES, "realtime"),
            },
            "receiveFromRealtime": {
                "action": "send",
                "channel": {"$ref": "#/channels/realtime"},
                "messages": refs(SERVER_MESSAGES, "realtime"),
            },
            "streamEvents": {
                "action": "send",
                "channel": {"$ref": "#/channels/events"},
                "messages": [{"$ref": "#/channels/events/messages/event"}],
            },
        },
        "components": {
            "schemas": _resource_schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
        },
    }


def add_routes(bp: Blueprint, app: GatewayApp) -> None:
    rendered: dict[str, bytes] = {}

    async def asyncapi(request: Request) -> HTTPResponse:
        if "doc" not in rendered:
            base = app.ctx.settings.public_url or app.ctx.settings.issuer
            rendered["doc"] = orjson.dumps(document(base))
        return HTTPResponse(rendered["doc"], content_type="application/json")

    bp.add_route(asyncapi, "/asyncapi.json", methods=["GET", "HEAD"], name="asyncapi")
