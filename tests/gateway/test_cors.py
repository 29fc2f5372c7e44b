"""Cross-origin pages: CORS on every HTTP door, ``Origin`` on WebSocket handshakes,
``OPTIONS`` with ``Allow``, and 414 for an over-long URL.

The session server lets in ``PAGE_ORIGIN`` (tests/conftest.py); the real browser
proof is tests/browser/.
"""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace

import httpx
import pytest
import websockets
from sanic.response import HTTPResponse
from websockets.exceptions import InvalidStatus

from gateway.cors import ALLOWED_REQUEST_HEADERS, EXPOSED_HEADERS, Cors
from gateway.settings import SettingsError, load_settings
from tests.conftest import PAGE_ORIGIN

STRANGER = "https://evil.example.test"


def assert_cors(response: httpx.Response, origin: str = PAGE_ORIGIN) -> None:
    assert response.headers["access-control-allow-origin"] == origin
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {h.lower() for h in EXPOSED_HEADERS} <= exposed
    assert "origin" in response.headers["vary"].lower()
    assert "access-control-allow-credentials" not in response.headers


def assert_no_cors(response: httpx.Response) -> None:
    assert not [h for h in response.headers if h.lower().startswith("access-control-")]


async def test_an_allowed_page_reads_rest_answers_and_their_headers(tenant):
    reply = await tenant.client.get("/api/v1/products", headers={"Origin": PAGE_ORIGIN})
    assert reply.status_code == 200
    assert_cors(reply)
    made = await tenant.client.post(
        "/api/v1/customers",
        json={"name": "Ada", "email": "ada@example.com"},
        headers={"Origin": PAGE_ORIGIN},
    )
    assert made.status_code == 201, made.text
    assert_cors(made)
    assert made.headers["location"]
    assert made.headers["etag"]
    assert made.headers["x-request-id"]


async def test_errors_carry_cors_so_the_page_can_read_why(tenant, anon):
    bad = await tenant.client.post(
        "/api/v1/customers", json={"name": ""}, headers={"Origin": PAGE_ORIGIN}
    )
    assert bad.status_code == 422
    assert_cors(bad)
    unauthenticated = await anon.get("/api/v1/products", headers={"Origin": PAGE_ORIGIN})
    assert unauthenticated.status_code == 401
    assert_cors(unauthenticated)
    missing = await anon.get("/api/v1/nowhere", headers={"Origin": PAGE_ORIGIN})
    assert missing.status_code == 404
    assert_cors(missing)


async def test_graphql_token_and_ticket_endpoints_answer_an_allowed_page(tenant, anon):
    graphql = await tenant.client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Origin": PAGE_ORIGIN}
    )
    assert graphql.status_code == 200
    assert_cors(graphql)
    token = await anon.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"},
        headers={"Origin": PAGE_ORIGIN},
    )
    assert token.status_code in (400, 401)  # invalid_client: what matters is the page reads it
    assert_cors(token)
    ticket = await tenant.client.post("/api/v1/events/tickets", headers={"Origin": PAGE_ORIGIN})
    assert ticket.status_code == 201, ticket.text
    assert_cors(ticket)


async def test_another_origin_gets_no_cors_headers(tenant):
    reply = await tenant.client.get("/api/v1/products", headers={"Origin": STRANGER})
    assert reply.status_code == 200  # the server answers; the browser hides it from the page
    assert_no_cors(reply)
    assert "origin" in reply.headers["vary"].lower()  # a shared cache must not mix them


async def test_a_preflight_is_answered_with_methods_headers_and_max_age(anon):
    reply = await anon.options(
        "/api/v1/customers/123",
        headers={
            "Origin": PAGE_ORIGIN,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, content-type, if-match",
        },
    )
    assert reply.status_code == 204
    assert reply.headers["access-control-allow-origin"] == PAGE_ORIGIN
    methods = {m.strip() for m in reply.headers["access-control-allow-methods"].split(",")}
    assert {"GET", "PATCH", "DELETE"} <= methods
    allowed = {h.strip().lower() for h in reply.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "if-match", "idempotency-key"} <= allowed
    assert reply.headers["access-control-max-age"] == "600"
    assert "access-control-request-headers" in reply.headers["vary"].lower()


@pytest.mark.parametrize(
    ("origin", "method", "asked"),
    [
        (STRANGER, "GET", "authorization"),  # not an allowed origin
        (PAGE_ORIGIN, "PUT", "authorization"),  # not a method of this route
        (PAGE_ORIGIN, "GET", "x-something-else"),  # not a header we accept
    ],
)
async def test_a_preflight_we_would_not_honour_is_refused(anon, origin, method, asked):
    reply = await anon.options(
        "/api/v1/products",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": asked,
        },
    )
    assert reply.status_code == 403
    assert_no_cors(reply)


async def test_options_answers_allow_and_a_405_carries_it_too(anon):
    listed = await anon.options("/api/v1/products")
    assert listed.status_code == 204
    assert {"GET", "POST", "OPTIONS"} <= {m.strip() for m in listed.headers["allow"].split(",")}
    one = await anon.options("/api/v1/products/42")
    assert one.status_code == 204
    assert {"GET", "PATCH", "DELETE", "OPTIONS"} <= {
        m.strip() for m in one.headers["allow"].split(",")
    }
    wrong = await anon.put("/api/v1/products")
    assert wrong.status_code == 405
    assert "GET" in wrong.headers["allow"]
    assert wrong.headers["content-type"] == "application/problem+json"


def test_origins_are_validated_and_star_refuses_credentials():
    assert load_settings(
        cors_allow_origins="https://a.test, http://127.0.0.1:3000"
    ).cors_allow_origins == [
        "https://a.test",
        "http://127.0.0.1:3000",
    ]
    for bad in (
        "https://a.test/app",
        "a.test",
        "ftp://a.test",
        "https://a.test:0",
        "*,https://a.test",
    ):
        with pytest.raises(SettingsError, match="CORS_ALLOW_ORIGINS"):
            load_settings(cors_allow_origins=bad)
    with pytest.raises(SettingsError, match="CORS_ALLOW_CREDENTIALS"):
        load_settings(cors_allow_origins="*", cors_allow_credentials=True)


def test_star_answers_any_page_without_varying(settings):
    cors = Cors(settings.model_copy(update={"cors_allow_origins": ["*"]}))
    assert cors.allows("https://anyone.test")
    assert cors.allow_origin_value("https://anyone.test") == "*"
    closed = Cors(settings.model_copy(update={"cors_allow_origins": []}))
    assert not closed.enabled
    assert not closed.allows(PAGE_ORIGIN)
    assert "Authorization" in ALLOWED_REQUEST_HEADERS


async def test_credentials_are_announced_only_when_configured(settings, tenant):
    reply = await tenant.client.get("/api/v1/products", headers={"Origin": PAGE_ORIGIN})
    assert "access-control-allow-credentials" not in reply.headers
    cors = Cors(settings.model_copy(update={"cors_allow_credentials": True}))
    request = SimpleNamespace(method="GET", headers={"origin": PAGE_ORIGIN})
    response = HTTPResponse()
    cors.decorate(request, response)  # type: ignore[arg-type]
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-allow-origin"] == PAGE_ORIGIN


async def _handshake(url: str, origin: str | None) -> int:
    protocols = ["graphql-transport-ws"] if url.endswith("/graphql") else None
    try:
        async with websockets.connect(url, origin=origin, subprotocols=protocols, open_timeout=10):  # type: ignore[arg-type]
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


async def test_socket_handshakes_check_the_page_origin(server):
    ws_base = server.base_url.replace("http://", "ws://")
    own = server.base_url
    for path in ("/api/v1/realtime", "/graphql"):
        url = ws_base + path
        assert await _handshake(url, None) == 101  # not a browser
        assert await _handshake(url, PAGE_ORIGIN) == 101  # an allowed page
        assert await _handshake(url, own) == 101  # a page the gateway served (GraphiQL)
        assert await _handshake(url, STRANGER) == 403
        assert await _handshake(url, "null") == 403  # a sandboxed or file page


def _raw(port: int, request_line_target: str, extra: str = "") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"GET {request_line_target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}"
            "Connection: close\r\n\r\n".encode()
        )
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


async def test_an_over_long_url_is_414_and_just_under_the_limit_is_served(server, settings):
    limit = server.app.config.REQUEST_MAX_HEADER_SIZE
    port = settings.port
    head_without_target = len("GET  HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close")

    def target(total: int) -> str:
        return "/healthz?pad=" + "a" * (total - head_without_target - len("/healthz?pad="))

    served = await asyncio.to_thread(_raw, port, target(limit - 1))
    assert served.startswith(b"HTTP/1.1 200"), served[:200]
    refused = await asyncio.to_thread(_raw, port, target(limit))
    assert refused.startswith(b"HTTP/1.1 414"), refused[:200]
    assert b"URI_TOO_LONG" in refused
    crowded = await asyncio.to_thread(_raw, port, "/healthz", "X-Filler: " + "b" * limit + "\r\n")
    assert crowded.startswith(b"HTTP/1.1 431"), crowded[:200]
