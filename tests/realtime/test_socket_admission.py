"""Unauthenticated sockets: one deadline on every protocol, and a cap per client address.

Three doors let a client authenticate after the upgrade: ``/graphql`` over
``graphql-transport-ws`` and legacy ``graphql-ws`` (``connection_init``) and the JSON
channel ``/api/v1/realtime`` (``auth``). The tests drive the server's clock
(``clock.advance``) and wait for the server's answers, never for time to pass; the one
test on real time runs a gateway process of its own with a short deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import websockets
from gql import Client, gql
from gql.transport.exceptions import TransportConnectionFailed
from gql.transport.websockets import WebsocketsTransport
from websockets.exceptions import InvalidStatus

from realtime.admission import unauthenticated_sockets
from tests import realtime_clients as rt
from tests.factories import TOKENS
from tests.processes import free_port, start_serving

JSON = "json"
TRANSPORT = "graphql-transport-ws"
LEGACY = "graphql-ws"
PROTOCOLS = [JSON, TRANSPORT, LEGACY]
TIMEOUT = 30.0  # REALTIME_AUTH_TIMEOUT_SECONDS in these tests (on the test's clock)
CAP = 3  # REALTIME_UNAUTHENTICATED_PER_ADDRESS in these tests
# How long a test waits for something the server does at once (a close after the clock
# moved, an answer): generous, because a busy machine may be slow, but short of any
# deadline the server would reach on real time.
PROMPTLY = 5.0


@pytest.fixture
def limits(server, monkeypatch) -> None:
    settings = server.app.ctx.settings
    monkeypatch.setattr(settings, "realtime_auth_timeout_seconds", TIMEOUT)
    monkeypatch.setattr(settings, "realtime_unauthenticated_per_address", CAP)


def connect(base_url: str, protocol: str, address: str | None = None, **headers: str) -> Any:
    if address is not None:
        headers["X-Forwarded-For"] = address
    if protocol == JSON:
        return websockets.connect(rt.ws_url(base_url), additional_headers=headers, open_timeout=10)
    return websockets.connect(
        rt.ws_url(base_url, "/graphql"),
        subprotocols=[protocol],
        additional_headers=headers,
        open_timeout=10,
    )


async def open_socket(base_url: str, protocol: str, address: str | None = None, **headers: str):
    return await connect(base_url, protocol, address, **headers).__aenter__()


async def ping(ws, protocol: str) -> None:
    """A frame before authentication that the server answers (not on legacy graphql-ws,
    which answers nothing before ``connection_init``: there a frame it ignores)."""
    if protocol == LEGACY:
        await rt.send(ws, type="keep me open")
        return
    await rt.send(ws, type="ping")
    assert (await rt.frame(ws, PROMPTLY))["type"] == "pong"


async def authenticate(ws, protocol: str, token: str) -> None:
    """Authenticate in band and wait for the server's acknowledgement."""
    if protocol == JSON:
        await rt.send(ws, type="auth", token=token)
        assert (await rt.frame(ws, PROMPTLY))["type"] == "authenticated"
    else:
        await rt.send(ws, type="connection_init", payload={"token": token})
        assert (await rt.frame(ws, PROMPTLY))["type"] == "connection_ack"


async def answers(ws, protocol: str) -> None:
    """The socket is open and served (after authentication)."""
    if protocol == LEGACY:
        query = "subscription { orderEvents { position } }"
        await rt.send(ws, type="start", id="1", payload={"query": query})
        await rt.send(ws, type="stop", id="1")
        message = await rt.frame(ws, PROMPTLY)
        while message["type"] == "ka":
            message = await rt.frame(ws, PROMPTLY)
        assert message == {"type": "complete", "id": "1"}
    else:
        await ping(ws, protocol)


async def close_code(ws, within: float = PROMPTLY) -> int:
    """Wait (at most ``within`` seconds per frame) for the server to close the socket."""

    async def read_all() -> None:
        while True:
            await rt.frame(ws, within)

    with pytest.raises(websockets.ConnectionClosed):
        await read_all()
    assert ws.close_code is not None
    return ws.close_code


async def until(check: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Wait for a condition of the server's state (it follows a client's action at once,
    but on the server's own task)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.01)


def refusal(error: InvalidStatus) -> dict[str, Any]:
    response = error.response
    assert response.status_code == 429
    assert response.headers["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = orjson.loads(response.body)
    assert body["code"] == "RATE_LIMITED"
    assert body["status"] == 429
    return {"retry_after": response.headers["Retry-After"], "body": body}


# -- the deadline ------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_no_authentication_in_time_closes_with_4408_whatever_the_socket_sends(
    server, clock, limits, protocol
):
    async with connect(server.base_url, protocol) as ws:
        await ping(ws, protocol)
        clock.advance(TIMEOUT - 1)
        await ping(ws, protocol)  # neither frame moves the deadline
        clock.advance(1)
        assert await close_code(ws) == 4408
    assert "authenticate within 30 s" in (ws.close_reason or "")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_socket_that_authenticates_in_time_has_no_deadline(
    server, tenant, clock, limits, protocol
):
    async with connect(server.base_url, protocol) as ws:
        clock.advance(TIMEOUT - 1)
        await authenticate(ws, protocol, TOKENS.mint(tenant.id, "owner"))
        clock.advance(10 * TIMEOUT)
        await answers(ws, protocol)


async def test_the_setting_is_read_when_each_socket_opens(server, clock, limits, monkeypatch):
    async with connect(server.base_url, TRANSPORT) as first:
        monkeypatch.setattr(server.app.ctx.settings, "realtime_auth_timeout_seconds", 5.0)
        async with connect(server.base_url, TRANSPORT) as second:
            clock.advance(5)
            assert await close_code(second) == 4408
            await ping(first, TRANSPORT)
            clock.advance(TIMEOUT - 5)
            assert await close_code(first) == 4408


@pytest.fixture(scope="module")
def short_deadline_gateway(tmp_path_factory: pytest.TempPathFactory):
    """A gateway process of its own whose sockets have half a second to authenticate."""
    cwd: Path = tmp_path_factory.mktemp("short-deadline")
    port = free_port()
    process = start_serving(port, cwd, LOG_LEVEL="WARNING", REALTIME_AUTH_TIMEOUT_SECONDS="0.5")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.communicate(timeout=30)


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_on_real_time_the_deadline_closes_every_protocol(short_deadline_gateway, protocol):
    began = time.monotonic()
    async with connect(short_deadline_gateway, protocol) as ws:
        await ping(ws, protocol)
        assert await close_code(ws, within=30) == 4408
    # Never before the deadline; the upper bound is only "it happened at all".
    assert time.monotonic() - began >= 0.5


# -- the cap per address -----------------------------------------------------------------


async def test_over_the_cap_the_upgrade_is_refused_with_429(server, tenant, clock, limits, address):
    sockets = [await open_socket(server.base_url, p, address) for p in PROTOCOLS]
    try:
        assert unauthenticated_sockets(server.app).count(address) == CAP
        clock.advance(10)
        for protocol in PROTOCOLS:
            with pytest.raises(InvalidStatus) as refused:
                await open_socket(server.base_url, protocol, address)
            answer = refusal(refused.value)
            # The oldest pending socket will have authenticated or been closed by then.
            assert answer["retry_after"] == str(int(TIMEOUT - 10))
            assert "REALTIME_UNAUTHENTICATED_PER_ADDRESS" in answer["body"]["detail"]
        # Another address is not affected.
        async with connect(server.base_url, JSON, "203.0.113.77") as other:
            await ping(other, JSON)
        # Credentials on the upgrade request: never pending, never counted.
        bearer = f"Bearer {TOKENS.mint(tenant.id, 'owner')}"
        async with connect(server.base_url, JSON, address, Authorization=bearer) as known:
            assert (await rt.frame(known, PROMPTLY))["type"] == "authenticated"
    finally:
        for ws in sockets:
            await ws.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_socket_stops_counting_once_it_authenticates(
    server, tenant, clock, limits, address, protocol
):
    sockets = [await open_socket(server.base_url, protocol, address) for _ in range(CAP)]
    try:
        with pytest.raises(InvalidStatus) as refused:
            await open_socket(server.base_url, protocol, address)
        refusal(refused.value)
        await authenticate(sockets[0], protocol, TOKENS.mint(tenant.id, "owner"))
        sockets.append(await open_socket(server.base_url, protocol, address))
        await ping(sockets[-1], protocol)
    finally:
        for ws in sockets:
            await ws.close()


async def test_gql_sees_the_refusal_and_connects_once_a_slot_is_free(
    server, tenant, clock, limits, address
):
    token = TOKENS.mint(tenant.id, "owner")
    sockets = [await open_socket(server.base_url, TRANSPORT, address) for _ in range(CAP)]

    def client() -> Client:
        return Client(
            transport=WebsocketsTransport(
                url=rt.ws_url(server.base_url, "/graphql"),
                init_payload={"token": token},
                subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
                headers={"X-Forwarded-For": address},
            )
        )

    try:
        with pytest.raises(TransportConnectionFailed) as failed:
            async with client():
                pass
        assert isinstance(failed.value.__cause__, InvalidStatus)
        refusal(failed.value.__cause__)
        await authenticate(sockets[0], TRANSPORT, token)
        async with client() as session:
            assert await session.execute(gql("{ __typename }")) == {"__typename": "Query"}
    finally:
        for ws in sockets:
            await ws.close()


async def test_every_ending_gives_the_slot_back(server, clock, limits, address):
    """Closed by the client, dropped without a close, closed at the deadline, cancelled
    by the server (as at shutdown), or failed during the handshake: N sockets that end
    make room for N new ones."""
    app = server.app
    pending = unauthenticated_sockets(app)

    async def fill() -> list[Any]:
        sockets = [await open_socket(server.base_url, p, address) for p in PROTOCOLS]
        with pytest.raises(InvalidStatus) as refused:
            await open_socket(server.base_url, JSON, address)
        refusal(refused.value)
        return sockets

    def released() -> bool:
        return pending.count(address) == 0

    # The client closes, or drops the connection without a close frame.
    closing, dropped, last = await fill()
    await closing.close()
    dropped.transport.abort()
    await last.close()
    await until(released, "closed sockets are released")

    # The server closes them at the deadline.
    sockets = await fill()
    clock.advance(TIMEOUT)
    for ws in sockets:
        assert await close_code(ws) == 4408
    await until(released, "timed-out sockets are released")

    # The server cancels their tasks (what it does to every socket when it stops).
    before = set(app.websocket_tasks)
    sockets = await fill()
    await until(lambda: len(set(app.websocket_tasks) - before) == CAP, "the sockets run")
    for task in set(app.websocket_tasks) - before:
        task.cancel()
    for ws in sockets:
        await close_code(ws)
    await until(released, "cancelled sockets are released")

    # Handshakes that fail (a subprotocol the server does not speak) count for no longer.
    for _ in range(2 * CAP):
        with pytest.raises(InvalidStatus) as failed:
            await open_socket(server.base_url, "graphql-unknown", address)
        assert failed.value.response.status_code == 400
    assert released()

    sockets = await fill()
    for ws in sockets:
        await ws.close()
    await until(released, "the last sockets are released")
