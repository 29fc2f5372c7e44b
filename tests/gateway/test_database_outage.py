"""The database goes away and comes back: 503 within a second, no restart, no gap.

PostgreSQL: a ``gateway serve`` process reaches a migrated database of its own
through a TCP proxy (tests/tcp_proxy.py). The test stops the proxy (every
connection closed, new ones refused, as when PostgreSQL stops) or makes it swallow
new connections (a network that drops packets), and starts it again; the shared
PostgreSQL itself is never touched. Every request during the outage must be
answered 503 ``DATABASE_UNAVAILABLE`` with ``Retry-After`` within ``PROMISE`` of
being sent (a promise, not a speed test: a stopped database refuses at once, and
a silent one is given ``DATABASE_CONNECT_TIMEOUT_SECONDS``, 0.5 s).

SQLite: a file another process holds locked answers 503 too, never 500. And the
classification itself: only a database that is away is a 503; a statement the
database refused keeps its own answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import websockets
from tortoise.exceptions import IntegrityError, OperationalError
from websockets.typing import Subprotocol

from gateway.errors import DatabaseUnavailable, database_unavailable
from tests import realtime_clients as rt
from tests.conftest import BACKEND, POSTGRES_URL
from tests.processes import free_port, gateway
from tests.served import Gateway, gateways, migrated_postgres, migrated_sqlite
from tests.tcp_proxy import TcpProxy

PROMISE = 1.0  # seconds: every request is answered this soon during an outage
GRAPHQL_RESPONSE = "application/graphql-response+json"
postgres_only = pytest.mark.postgres_only


@dataclass
class Stage:
    """A gateway behind a proxy to its database, and a token of its organization."""

    node: Gateway
    proxy: TcpProxy
    database_url: str  # straight to PostgreSQL, for the test's own checks
    token: str
    client_auth: tuple[str, str]  # the organization's OAuth client (id, secret)
    timings: dict[str, list[float]] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.node.url, headers=self.auth, timeout=30)

    async def rows(self, sql: str) -> Any:
        conn = await asyncpg.connect(self.database_url.replace("postgres://", "postgresql://"))
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()


def _organization_and_client(env: dict[str, str], cwd: Path) -> tuple[str, str]:
    done = gateway("create-org", "acme", env=env, cwd=cwd)
    assert done.returncode == 0, done.stderr
    made = gateway("create-client", "acme", "outage", "--role", "owner", env=env, cwd=cwd)
    assert made.returncode == 0, made.stderr
    fields = dict(line.split("=", 1) for line in made.stdout.splitlines() if "=" in line)
    return fields["client_id"], fields["client_secret"]


def _token(node: Gateway, client: tuple[str, str]) -> str:
    reply = httpx.post(
        f"{node.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=client,
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    token: str = reply.json()["access_token"]
    return token


@pytest.fixture
def stage(tmp_path: Path) -> Iterator[Stage]:
    host_port = POSTGRES_URL.split("@", 1)[1].split("/", 1)[0]
    host, _, pg_port = host_port.partition(":")
    proxy = TcpProxy(free_port(), (host, int(pg_port or 5432)))
    proxy.start()
    with contextlib.ExitStack() as stack:
        stack.callback(proxy.close)
        direct = stack.enter_context(migrated_postgres())
        user, name = direct.split("://", 1)[1].split("@", 1)[0], direct.rsplit("/", 1)[1]
        env = {"DATABASE_URL": direct, "AUTO_MIGRATE": "false", "SEED_DEMO": "false"}
        client = _organization_and_client(env, tmp_path)
        proxied = {
            "DATABASE_URL": f"postgres://{user}@127.0.0.1:{proxy.port}/{name}",
            "AUTO_MIGRATE": "false",
            "AUTH_ISSUER": "http://gateway.test",
            "ACCESS_TOKEN_TTL_SECONDS": "3600",
            "LOG_LEVEL": "WARNING",
        }
        node = stack.enter_context(gateways(tmp_path, proxied))()
        yield Stage(node, proxy, direct, _token(node, client), client)


async def timed(
    stage: Stage, client: httpx.AsyncClient, what: str, method: str, url: str, **kw: Any
) -> httpx.Response:
    began = time.monotonic()
    reply = await client.request(method, url, **kw)
    took = time.monotonic() - began
    stage.timings.setdefault(what, []).append(took)
    assert took < PROMISE, f"{what}: answered after {took:.2f} s"
    return reply


def assert_outage_problem(reply: httpx.Response) -> None:
    assert reply.status_code == 503, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["code"] == "DATABASE_UNAVAILABLE"
    assert int(reply.headers["retry-after"]) >= 1


def assert_outage_graphql(reply: httpx.Response, content_type: str) -> None:
    assert reply.status_code == 503, reply.text
    assert reply.headers["content-type"] == content_type
    assert int(reply.headers["retry-after"]) >= 1
    body = reply.json()
    assert "data" not in body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["DATABASE_UNAVAILABLE"]


def _customer(name: str) -> dict[str, str]:
    return {"name": name, "email": f"{name}@example.com"}


async def _create(client: httpx.AsyncClient, name: str, key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else None
    return await client.post("/api/v1/customers", json=_customer(name), headers=headers)


async def _during_the_outage(stage: Stage, client: httpx.AsyncClient, key: str) -> None:
    """Every door answers 503 in time; ``key``'s write is refused."""
    assert_outage_problem(await timed(stage, client, "rest read", "GET", "/api/v1/customers"))
    refused = await timed(
        stage,
        client,
        "rest write",
        "POST",
        "/api/v1/customers",
        json=_customer("refused"),
        headers={"Idempotency-Key": key},
    )
    assert_outage_problem(refused)
    query = {"query": "{ customers(first: 5) { totalCount } }"}
    assert_outage_graphql(
        await timed(stage, client, "graphql query", "POST", "/graphql", json=query),
        "application/json",
    )
    mutation = {
        "query": 'mutation { createCustomer(input: {name: "gql", email: "gql@example.com"})'
        " { id } }"
    }
    assert_outage_graphql(
        await timed(
            stage,
            client,
            "graphql mutation",
            "POST",
            "/graphql",
            json=mutation,
            headers={"Accept": GRAPHQL_RESPONSE},
        ),
        GRAPHQL_RESPONSE,
    )
    ready = await timed(stage, client, "readyz", "GET", "/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"].startswith("error")
    assert (await client.get("/healthz")).status_code == 200


async def _back(client: httpx.AsyncClient, timeout: float = 15) -> float:
    """Seconds until a read works again (no restart)."""
    began = time.monotonic()
    while (await client.get("/api/v1/customers")).status_code != 200:
        assert time.monotonic() - began < timeout, "the gateway did not recover"
        await asyncio.sleep(0.05)
    return time.monotonic() - began


@contextlib.asynccontextmanager
async def follower(stage: Stage, after: int | None = None) -> AsyncIterator[Any]:
    """A JSON-channel socket following ``customers`` (resuming after ``after``)."""
    async with rt.realtime(stage.node.url, stage.token) as ws:
        options = {} if after is None else {"after": after}
        await rt.subscribe(ws, "c", ["customers"], **options)
        yield ws


def _positions(events: list[dict[str, Any]]) -> list[int]:
    return [event["position"] for event in events]


GRAPHQL_EVENTS = "subscription ($a: StreamPosition) { customerEvents(after: $a) { position } }"


@contextlib.asynccontextmanager
async def graphql_follower(stage: Stage, after: int | None = None) -> AsyncIterator[Any]:
    """A graphql-transport-ws subscription to ``customerEvents`` (resuming after ``after``)."""
    url = rt.ws_url(stage.node.url, "/graphql")
    async with websockets.connect(url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        await rt.send(ws, type="connection_init", payload=stage.auth)
        assert (await rt.frame(ws))["type"] == "connection_ack"
        payload = {"query": GRAPHQL_EVENTS, "variables": {"a": after}}
        await rt.send(ws, type="subscribe", id="1", payload=payload)
        yield ws


async def graphql_positions(ws: Any, count: int, timeout: float = 20) -> list[int]:
    got: list[int] = []
    while len(got) < count:
        message = await rt.frame(ws, timeout)
        assert message["type"] == "next", message
        got.append(int(message["payload"]["data"]["customerEvents"]["position"]))
    return got


@postgres_only
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_a_stopped_database_is_a_503_within_a_second_then_nothing_is_lost(stage):
    async with stage.client() as client, contextlib.AsyncExitStack() as streams:
        socket = await streams.enter_async_context(follower(stage))
        sse = await streams.enter_async_context(rt.sse(client, {"topics": "customers"}))
        assert sse.response.status_code == 200
        subscription = await streams.enter_async_context(graphql_follower(stage))
        assert (await _create(client, "before")).status_code == 201
        (first,) = await rt.events(socket, 1)
        (first_sse,) = await sse.events(1)
        assert first_sse["id"] == str(first["position"])
        assert await graphql_positions(subscription, 1) == [first["position"]]

        cut = time.monotonic()
        stage.proxy.stop()
        first_503 = await client.get("/api/v1/customers")
        to_first_503 = time.monotonic() - cut
        assert_outage_problem(first_503)
        assert to_first_503 < PROMISE
        for round_ in range(3):
            await _during_the_outage(stage, client, key=f"refused-{round_}")

        stage.proxy.start()
        recovered = await _back(client)
        # Nothing of the refused writes was half-written; a retry with the same key works.
        assert await stage.rows("SELECT count(*) FROM customers") == 1
        assert await stage.rows("SELECT count(*) FROM events") == 1
        retried = await _create(client, "refused", key="refused-0")
        assert retried.status_code == 201, retried.text
        for name in ("after-1", "after-2"):
            assert (await _create(client, name)).status_code == 201
        committed = await _committed(stage)
        assert len(committed) == 4

        # Connected throughout: every committed event once, in order.
        rest = await rt.events(socket, 3, timeout=20)
        assert _positions([first, *rest]) == committed
        rest_sse = await sse.events(3, timeout=20)
        assert [int(e["id"]) for e in [first_sse, *rest_sse]] == committed
        assert await graphql_positions(subscription, 3) == committed[1:]
        assert await rt.quiet(socket, 0.3) == []
        assert await rt.quiet(subscription, 0.3) == []

    # Reconnecting with the last position held before the outage: the rest, once.
    async with follower(stage, after=first["position"]) as resumed:
        assert _positions(await rt.events(resumed, 3, timeout=20)) == committed[1:]
        assert await rt.quiet(resumed, 0.3) == []
    async with (
        stage.client() as client,
        rt.sse(client, {"topics": "customers"}, {"Last-Event-ID": first_sse["id"]}) as again,
    ):
        assert [int(e["id"]) for e in await again.events(3, timeout=20)] == committed[1:]
    async with graphql_follower(stage, after=first["position"]) as resumed_graphql:
        assert await graphql_positions(resumed_graphql, 3) == committed[1:]
    # Requests were answered, not failed: no 500's traceback, one warning per 10 s.
    records = stage.node.records()
    said = [record.get("message", "") for record in records]
    assert "unhandled error" not in said
    assert "unhandled error in a resolver" not in said
    warned = [m for m in said if m.startswith("database unavailable")]
    assert 1 <= len(warned) <= 2, warned
    _report(stage, to_first_503=to_first_503, recovered=recovered)


async def _committed(stage: Stage, timeout: float = 15) -> list[int]:
    """Every committed event's position, in order, once the relay has numbered them."""
    deadline = time.monotonic() + timeout
    while await stage.rows("SELECT count(*) FROM events WHERE position IS NULL"):
        assert time.monotonic() < deadline, "the relay left committed events unnumbered"
        await asyncio.sleep(0.05)
    conn = await asyncpg.connect(stage.database_url.replace("postgres://", "postgresql://"))
    try:
        return [row[0] for row in await conn.fetch("SELECT position FROM events ORDER BY 1")]
    finally:
        await conn.close()


@postgres_only
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_a_database_behind_a_dead_network_is_a_503_within_a_second(stage):
    async with stage.client() as client:
        assert (await _create(client, "before")).status_code == 201
        stage.proxy.stop()  # the pool's connections end...
        stage.proxy.hang()  # ...and new ones are never answered
        for round_ in range(2):
            await _during_the_outage(stage, client, key=f"silent-{round_}")
        # Many at once: those behind the one trying to connect do not wait in line.
        many = await asyncio.gather(
            *(timed(stage, client, "30 at once", "GET", "/api/v1/customers") for _ in range(30))
        )
        for reply in many:
            assert_outage_problem(reply)
        assert stage.proxy.connections > 1, "the gateway never tried to connect"
        stage.proxy.stop()
        stage.proxy.start()
        recovered = await _back(client)
        assert (await _create(client, "after")).status_code == 201
        assert await stage.rows("SELECT count(*) FROM customers") == 2
        # The relay (a connection of its own) is back too: the new event is numbered.
        began = time.monotonic()
        assert len(await _committed(stage, timeout=10)) == 2
        relay_back = time.monotonic() - began
    _report(stage, recovered=recovered, relay_back=relay_back)


def _report(stage: Stage, **figures: float) -> None:
    """The measured figures, for the record (``pytest -s``)."""
    worst = {what: round(max(took), 3) for what, took in stage.timings.items()}
    print(orjson.dumps({**{k: round(v, 3) for k, v in figures.items()}, "worst": worst}))


@pytest.mark.skipif(BACKEND == "services", reason="the embedded SQLite file")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_a_locked_sqlite_file_is_a_503_not_a_500(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite3"
    migrated_sqlite(path)
    env = {"DATABASE_URL": f"sqlite://{path}", "SEED_DEMO": "false"}
    client = _organization_and_client(env, tmp_path)
    with gateways(tmp_path, {**env, "AUTH_ISSUER": "http://gateway.test"}) as start:
        node = start()
        token = _token(node, client)
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")  # another process writes and does not let go
            reply = httpx.post(
                f"{node.url}/api/v1/customers",
                json=_customer("locked"),
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
            assert_outage_problem(reply)
            assert reply.headers["retry-after"] == "1"
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        reply = httpx.post(
            f"{node.url}/api/v1/customers",
            json=_customer("unlocked"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert reply.status_code == 201, reply.text


def _raised(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as caught:
        return caught


def _wrapped(outer: type[Exception], inner: BaseException) -> BaseException:
    """As Tortoise wraps a driver's error: raised while handling it."""
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer(exc)  # noqa: B904 (Tortoise's way: the driver's error as context)
    except BaseException as caught:
        return caught


async def _refused_by_asyncpg() -> BaseException:
    port = free_port()  # nothing listens there
    try:
        await asyncpg.connect(f"postgresql://nobody@127.0.0.1:{port}/none", timeout=2)
    except BaseException as exc:
        return exc
    raise AssertionError("connected to nothing")


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("connection is closed"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        sqlite3.OperationalError("database is locked"),
        sqlite3.OperationalError("unable to open database file"),
    ],
    ids=repr,
)
def test_a_database_that_is_away_is_database_unavailable(error: BaseException) -> None:
    found = database_unavailable(_raised(error))
    assert isinstance(found, DatabaseUnavailable)
    assert (found.code, found.status) == ("DATABASE_UNAVAILABLE", 503)
    wrapped = database_unavailable(_wrapped(OperationalError, error))
    assert isinstance(wrapped, DatabaseUnavailable)


async def test_a_refused_connection_from_the_driver_is_database_unavailable() -> None:
    assert isinstance(database_unavailable(await _refused_by_asyncpg()), DatabaseUnavailable)


@pytest.mark.parametrize(
    "error",
    [
        _wrapped(IntegrityError, asyncpg.UniqueViolationError("duplicate key value")),
        _wrapped(OperationalError, asyncpg.PostgresSyntaxError("syntax error at or near")),
        _wrapped(OperationalError, sqlite3.OperationalError("no such table: widgets")),
        _raised(asyncpg.InterfaceError("cannot call Connection.fetch(): connection released")),
        _raised(ConnectionRefusedError("not from a database driver")),
        _raised(TimeoutError()),
        _raised(ValueError(uuid.uuid4().hex)),
    ],
    ids=repr,
)
def test_a_statement_the_database_refused_is_not_an_outage(error: BaseException) -> None:
    assert database_unavailable(error) is None


def _outage(stage: Stage, mode: str) -> None:
    stage.proxy.stop()  # the pool's connections end, new ones are refused...
    if mode == "hang":
        stage.proxy.hang()  # ...or accepted and never answered (packets dropped)


async def _oauth_during_the_outage(stage: Stage, client_auth: tuple[str, str]) -> None:
    """The OAuth endpoints (authlib, in worker threads) answer 503 too, never 500."""
    async with httpx.AsyncClient(base_url=stage.node.url, timeout=30) as client:
        form = {"grant_type": "client_credentials"}
        many = await asyncio.gather(
            *(
                timed(
                    stage,
                    client,
                    "oauth token",
                    "POST",
                    "/oauth/token",
                    data=form,
                    auth=client_auth,
                )
                for _ in range(4)
            )
        )
        for reply in many:
            assert_outage_problem(reply)
        for path in ("/oauth/revoke", "/oauth/introspect"):
            reply = await timed(
                stage, client, path, "POST", path, data={"token": stage.token}, auth=client_auth
            )
            assert_outage_problem(reply)
        query = {"client_id": client_auth[0], "response_type": "code", "redirect_uri": "x"}
        for method in ("GET", "POST"):
            reply = await timed(
                stage,
                client,
                "authorize",
                method,
                "/oauth/authorize",
                params=query,
                data={"email": "a@example.com", "password": "p", "csrf_token": "t"},
            )
            assert reply.status_code == 503, reply.text


async def _closed(ws: Any) -> tuple[int | None, str | None]:
    """The close code and reason the server ended ``ws`` with (any frames before it dropped)."""
    with contextlib.suppress(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), PROMISE * 5)
    return ws.close_code, ws.close_reason


DATABASE_AWAY = (1013, "database unavailable: reconnect and resume")
FAKE_KEY = "gwk_nosuchkey_" + "s" * 32


async def _sockets_during_the_outage(stage: Stage) -> None:
    """A socket the outage ends closes 1013 "reconnect and resume", never 1000 after a
    traceback; a GraphQL operation it fails gets its ``error`` on a socket that stays."""
    url = rt.ws_url(stage.node.url)
    async with websockets.connect(url, additional_headers={"X-API-Key": FAKE_KEY}) as ws:
        assert await _closed(ws) == DATABASE_AWAY
    async with rt.realtime(stage.node.url, stage.token) as ws:
        await rt.send(ws, type="subscribe", id="a", topics=["customers"], after=1)
        assert await _closed(ws) == DATABASE_AWAY
    graphql = rt.ws_url(stage.node.url, "/graphql")
    protocol = [Subprotocol("graphql-transport-ws")]
    async with websockets.connect(graphql, subprotocols=protocol) as ws:
        await rt.send(ws, type="connection_init", payload={"X-API-Key": FAKE_KEY})
        assert await _closed(ws) == DATABASE_AWAY
    async with websockets.connect(graphql, subprotocols=protocol) as ws:
        await rt.send(ws, type="connection_init", payload=stage.auth)
        assert (await rt.frame(ws))["type"] == "connection_ack"
        payload = {"query": GRAPHQL_EVENTS, "variables": {"a": 1}}
        await rt.send(ws, type="subscribe", id="1", payload=payload)
        # An operation's failure is that operation's error; the socket's others go on.
        refused = await rt.frame(ws)
        assert refused["type"] == "error", refused
        assert [e["extensions"]["code"] for e in refused["payload"]] == ["DATABASE_UNAVAILABLE"]
        await rt.send(ws, type="ping")
        assert (await rt.frame(ws))["type"] == "pong"


@postgres_only
@pytest.mark.parametrize("mode", ["stop", "hang"])
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_oauth_and_sockets_end_with_an_outage_answer_not_an_error(
    stage: Stage, mode: str
) -> None:
    async with stage.client() as client:
        assert (await _create(client, "before")).status_code == 201
        (before,) = await _committed(stage)
        lines = len(stage.node.lines())
        _outage(stage, mode)
        await _oauth_during_the_outage(stage, stage.client_auth)
        await _sockets_during_the_outage(stage)
        stage.proxy.stop()
        stage.proxy.start()
        await _back(client)
        assert (await _create(client, "after")).status_code == 201
    # Reconnecting after the outage resumes with no gap.
    async with follower(stage, after=before) as resumed:
        (event,) = await rt.events(resumed, 1, timeout=20)
        assert [before, event["position"]] == await _committed(stage)
    records = stage.node.records(lines)
    errors = [r for r in records if r.get("level") in ("error", "critical")]
    assert errors == [], errors
    warned = [r.get("message", "") for r in records if r.get("level") == "warning"]
    assert any(m.startswith("database unavailable") for m in warned), warned
