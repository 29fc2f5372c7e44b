"""Rate limits on every door, as clients meet them (``gateway.throttling``).

The session's server is shared; each test tightens the limit it checks for itself
(``tight``) and acts from a credential or a client address of its own, so no other
test's traffic counts against it. The two-worker test runs real ``gateway serve``
processes on PostgreSQL with a private Redis, to show that the count is global.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import itertools
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from db.principal import Principal
from gateway.ratelimit import Rate
from gateway.settings import Settings
from gateway.throttling import Throttle
from tests.factories import TOKENS
from tests.gateway.test_health import start_redis
from tests.processes import free_port, gateway
from tests.realtime.test_delivery_faults import POSTGRES_URL, Stage

_addresses = itertools.count(1)


@pytest.fixture
def tight(server, monkeypatch):
    """``tight("read", "3/minute")``: this test's rate for one limit."""

    def set_rate(policy: str, rate: str) -> None:
        monkeypatch.setitem(server.app.ctx.throttle.rates, policy, Rate.parse(rate))

    return set_rate


@pytest.fixture
def address(server, monkeypatch) -> str:
    """A client address of this test's own, sent through a trusted proxy (127.0.0.1)."""
    monkeypatch.setattr(
        server.app.ctx.settings, "trusted_proxies", [ipaddress.ip_network("127.0.0.1/32")]
    )
    n = next(_addresses)
    return f"203.0.{n // 250}.{n % 250 + 1}"


def fields(header: str) -> dict[str, str]:
    """``"read";q=5;w=60`` -> {"name": "read", "q": "5", "w": "60"}."""
    name, *params = header.split(";")
    return {"name": name.strip('"'), **dict(p.split("=", 1) for p in params)}


async def test_reads_are_limited_per_credential_with_the_ietf_fields(tenant, other_tenant, tight):
    tight("read", "3/minute")
    seen = []
    for _ in range(3):
        r = await tenant.client.get("/api/v1/customers")
        assert r.status_code == 200
        seen.append(fields(r.headers["ratelimit"]))
        assert fields(r.headers["ratelimit-policy"]) == {"name": "read", "q": "3", "w": "60"}
    assert [int(f["r"]) for f in seen] == [2, 1, 0]
    refused = await tenant.client.get("/api/v1/customers")
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    body = refused.json()
    assert body["code"] == "RATE_LIMITED"
    assert body["request_id"] == refused.headers["x-request-id"]
    retry = int(refused.headers["retry-after"])
    assert 1 <= retry <= 20  # one unit comes back every 20 s
    assert fields(refused.headers["ratelimit"])["r"] == "0"
    # another credential is not affected, and writes have a limit of their own
    assert (await other_tenant.client.get("/api/v1/customers")).status_code == 200
    created = await tenant.client.post(
        "/api/v1/customers", json={"name": "Ada", "email": f"{uuid.uuid4().hex}@example.com"}
    )
    assert created.status_code == 201
    assert fields(created.headers["ratelimit"])["name"] == "write"


async def test_writes_are_limited_and_a_refused_write_changes_nothing(tenant, tight):
    tight("write", "2/minute")
    emails = [f"{uuid.uuid4().hex}@example.com" for _ in range(3)]
    codes = [
        (await tenant.client.post("/api/v1/customers", json={"name": "A", "email": e})).status_code
        for e in emails
    ]
    assert codes == [201, 201, 429]
    listed = (await tenant.client.get("/api/v1/customers")).json()["data"]
    assert sorted(c["email"] for c in listed) == sorted(emails[:2])


async def test_graphql_spends_its_estimated_cost(tenant, tight):
    tight("graphql", "100/minute")
    query = "{ orders(first: 20) { nodes { databaseId } } }"  # 1 + 20 * (1 + 1) = 41
    first = await tenant.client.post("/graphql", json={"query": query})
    assert first.status_code == 200
    assert fields(first.headers["ratelimit"]) == {"name": "graphql", "r": "59", "t": "25"}
    second = await tenant.client.post("/graphql", json={"query": query})
    assert fields(second.headers["ratelimit"])["r"] == "18"
    third = await tenant.client.post("/graphql", json={"query": query})
    assert third.status_code == 429
    assert third.json()["code"] == "RATE_LIMITED"
    # a cheap query still fits in what is left
    cheap = await tenant.client.post("/graphql", json={"query": "{ __typename }"})
    assert cheap.status_code == 200
    assert fields(cheap.headers["ratelimit"])["r"] == "17"


async def test_a_refused_graphql_document_costs_one(tenant, tight):
    tight("graphql", "10/minute")
    too_costly = "{ customers(first: 100) { nodes { orders(first: 100) { items { quantity } } } } }"
    r = await tenant.client.post("/graphql", json={"query": too_costly})
    assert r.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert fields(r.headers["ratelimit"])["r"] == "9"


async def test_refused_credentials_block_their_address(anon, tight, address):
    tight("auth-failures", "3/minute")
    bad = {"Authorization": "Bearer not-a-token", "X-Forwarded-For": address}
    codes = [(await anon.get("/api/v1/customers", headers=bad)).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    # now even a good credential from that address waits, without being checked
    token = TOKENS.mint(1, "owner")
    good = {"Authorization": f"Bearer {token}", "X-Forwarded-For": address}
    blocked = await anon.get("/api/v1/customers", headers=good)
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1
    # GraphQL and API keys meet the same block
    assert (
        await anon.post("/graphql", json={"query": "{ __typename }"}, headers=good)
    ).status_code == 429
    # another address is not affected
    elsewhere = {**bad, "X-Forwarded-For": "192.0.2.77"}
    assert (await anon.get("/api/v1/customers", headers=elsewhere)).status_code == 401


async def test_forwarded_for_cannot_dodge_a_limit_without_a_trusted_proxy(
    anon, tight, server, monkeypatch
):
    monkeypatch.setattr(server.app.ctx.settings, "trusted_proxies", [])
    monkeypatch.setattr(server.app.ctx.throttle, "_blocked", {})
    tight("auth-failures", "2/minute")
    fresh = Rate.parse("2/minute")
    # the peer (127.0.0.1) is the key whatever X-Forwarded-For says: use a fresh policy
    # rate so earlier tests' failures from 127.0.0.1 do not count here
    monkeypatch.setitem(server.app.ctx.throttle.rates, "auth-failures", fresh)
    monkeypatch.setattr(server.app.ctx.throttle.limiter, "_prefix", f"test:{uuid.uuid4().hex}:")
    monkeypatch.setattr(
        server.app.ctx.throttle.limiter,
        "_local",
        type(server.app.ctx.throttle.limiter._local)(1000),
    )
    codes = [
        (
            await anon.get(
                "/api/v1/customers",
                headers={"Authorization": "Bearer x", "X-Forwarded-For": f"198.18.0.{i}"},
            )
        ).status_code
        for i in range(3)
    ]
    assert codes == [401, 401, 429]


async def test_websocket_upgrades_are_limited_per_address_before_the_upgrade(
    server, tight, address
):
    tight("ws-connect", "2/minute")
    url = server.base_url.replace("http", "ws") + "/api/v1/realtime"
    headers = {"X-Forwarded-For": address}
    for _ in range(2):
        async with websockets.connect(url, additional_headers=headers) as ws:
            await ws.send('{"type": "ping"}')
            assert "pong" in await ws.recv()
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url, additional_headers=headers):
            pass
    response = refused.value.response
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    # the GraphQL socket path is the same door
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(
            server.base_url.replace("http", "ws") + "/graphql",
            additional_headers=headers,
            subprotocols=["graphql-transport-ws"],
        ):
            pass


async def machine_client(tenant) -> tuple[str, str]:
    from db.accounts import create_client

    new = await create_client(
        tenant.id,
        f"Machine {uuid.uuid4().hex[:6]}",
        grant_types=["client_credentials"],
        scopes=["products:read"],
    )
    assert new.secret is not None
    return new.client.client_id, new.secret


async def test_the_token_endpoint_is_limited_per_client(anon, tenant, tight, address):
    tight("token", "3/minute")
    one, other = await machine_client(tenant), await machine_client(tenant)
    grant = {"grant_type": "client_credentials"}
    forwarded = {"X-Forwarded-For": address}
    codes = []
    for _ in range(4):
        r = await anon.post("/oauth/token", data=grant, auth=one, headers=forwarded)
        codes.append(r.status_code)
    assert codes == [200, 200, 200, 429]
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "RATE_LIMITED"
    assert fields(r.headers["ratelimit-policy"]) == {"name": "token", "q": "3", "w": "60"}
    assert fields(r.headers["ratelimit"])["r"] == "0"
    assert 1 <= int(r.headers["retry-after"]) <= 20
    # revocation and introspection spend the same limit of the same client
    introspected = await anon.post(
        "/oauth/introspect", data={"token": "x"}, auth=one, headers=forwarded
    )
    assert introspected.status_code == 429
    # a client named in the form is the same client as in HTTP Basic
    posted = await anon.post(
        "/oauth/token",
        data={**grant, "client_id": one[0], "client_secret": one[1]},
        headers=forwarded,
    )
    assert posted.status_code == 429
    # another client (same address) has a quota of its own
    fine = await anon.post("/oauth/token", data=grant, auth=other, headers=forwarded)
    assert fine.status_code == 200
    assert fields(fine.headers["ratelimit"]) == {"name": "token", "r": "2", "t": "20"}


async def test_wrong_client_secrets_block_the_address(anon, tenant, tight, address):
    tight("auth-failures", "2/minute")
    client_id, secret = await machine_client(tenant)
    grant = {"grant_type": "client_credentials"}
    forwarded = {"X-Forwarded-For": address}
    codes = [
        (
            await anon.post(
                "/oauth/token", data=grant, auth=(client_id, f"guess-{i}"), headers=forwarded
            )
        ).status_code
        for i in range(3)
    ]
    assert codes == [401, 401, 429]
    # the right secret from that address now waits too, without being checked
    blocked = await anon.post(
        "/oauth/token", data=grant, auth=(client_id, secret), headers=forwarded
    )
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "RATE_LIMITED"
    # from elsewhere, the client is not locked out
    elsewhere = {"X-Forwarded-For": "192.0.2.78"}
    ok = await anon.post("/oauth/token", data=grant, auth=(client_id, secret), headers=elsewhere)
    assert ok.status_code == 200


async def test_a_token_request_naming_no_client_is_limited_per_address(anon, tight, address):
    tight("token", "2/minute")
    forwarded = {"X-Forwarded-For": address}
    codes = [
        (
            await anon.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, headers=forwarded
            )
        ).status_code
        for _ in range(3)
    ]
    assert codes == [401, 401, 429]


def test_overrides_give_a_client_a_key_or_a_role_its_own_rate():
    settings = Settings(
        environment="test",
        rate_limit_read="100/minute",
        rate_limit_overrides={
            "client:erp": {"read": "5000/minute"},
            "api-key:abc": {"read": "7/minute"},
            "role:viewer": {"read": "10/minute"},
            "role:staff": {"read": "20/minute"},
        },
    )
    throttle = Throttle(settings, None, None)  # type: ignore[arg-type]

    def caller(subject: str, *roles: str) -> Principal:
        return Principal(subject=subject, organization_id=1, roles=frozenset(roles))

    assert throttle.rate("read", caller("client:erp", "viewer")).limit == 5000
    assert throttle.rate("read", caller("api-key:abc", "service")).limit == 7
    assert throttle.rate("read", caller("user:1", "viewer")).limit == 10
    assert throttle.rate("read", caller("user:2", "viewer", "staff")).limit == 20  # most generous
    assert throttle.rate("read", caller("user:3", "admin")).limit == 100
    assert throttle.rate("write", caller("client:erp")).limit == 300


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"team:x": {"read": "5/minute"}}, "role:<role>, client:<client id>"),
        ({"role:viewer": {"reads": "5/minute"}}, "unknown limit 'reads'"),
        ({"role:viewer": {"read": "5 a minute"}}, "not understood"),
    ],
)
def test_bad_overrides_stop_startup_with_a_clear_line(overrides, message):
    from gateway.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match=message):
        load_settings(rate_limit_overrides=overrides)


# -- shared by every worker, and surviving Redis ---------------------------------------


class LimitedStage(Stage):
    """A database of its own, gateways with a tight read limit, on a private Redis."""

    def env(self, redis_url: str) -> dict[str, str]:
        return {
            **super().env(redis_url),
            "RATE_LIMIT_READ": "12/minute",
            "RATE_LIMIT_TOKEN": "6/minute",
            "LOG_LEVEL": "WARNING",
        }


def at_most(limit: int, period: float, elapsed: float) -> int:
    """What a limit of ``limit`` per ``period`` may allow in ``elapsed`` seconds (GCRA:
    the burst, plus one unit per interval that went by), so that a slow machine does
    not fail a test that counts."""
    return limit + int(elapsed * limit / period)


@pytest.fixture
def limited(repo_root: Path, tmp_path: Path) -> Iterator[tuple[LimitedStage, str, Any]]:
    port = free_port()
    redis = start_redis(port, tmp_path)
    redis_url = f"redis://127.0.0.1:{port}/0"
    name = f"gateway_limits_{uuid.uuid4().hex[:10]}"
    admin = POSTGRES_URL.rsplit("/", 1)[0] + "/postgres"
    subprocess.run(["psql", "-q", admin, "-c", f'CREATE DATABASE "{name}"'], check=True)
    stage = LimitedStage(repo_root, f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}")
    for command in (("migrate",), ("create-org", "acme")):
        done = gateway(*command, env=stage.env(redis_url), cwd=repo_root)
        assert done.returncode == 0, done.stderr
    try:
        yield stage, redis_url, redis
    finally:
        for node in stage.nodes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.proc.pid, signal.SIGKILL)
            node.proc.wait(timeout=10)
        redis.kill()
        redis.wait(timeout=10)
        subprocess.run(
            ["psql", "-q", admin, "-c", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
            check=False,
        )


async def spread(
    call: Callable[[], Awaitable[tuple[int, int]]], batch: int
) -> tuple[list[int], float]:
    """Run ``call`` (a request on a connection of its own: its status and the pid of the
    worker that answered) in concurrent batches until both workers have answered (the
    kernel may hand one batch to one worker); every status, and the seconds it took."""
    started = time.monotonic()
    results: list[tuple[int, int]] = []
    for _ in range(20):
        results += await asyncio.gather(*(call() for _ in range(batch)))
        if len({pid for _, pid in results}) == 2:
            break
    assert len({pid for _, pid in results}) == 2, "both workers answered"
    return [code for code, _ in results], time.monotonic() - started


@pytest.mark.postgres_only
async def test_two_workers_share_one_limit_and_survive_redis_going_away(limited, tmp_path):
    stage, redis_url, redis = limited
    log = tmp_path / "limited.log"
    node = stage.start(workers=2, redis_url=redis_url, log=log)
    stage.login(node)
    headers = {"Authorization": f"Bearer {stage.token}"}

    async def one() -> tuple[int, int]:
        # a connection of its own, so that requests spread over both workers
        async with httpx.AsyncClient(base_url=node.url, timeout=10) as client:
            r = await client.get("/api/v1/customers", headers=headers)
            pid = (await client.get("/readyz")).json()["worker"]["pid"]
            return r.status_code, pid

    codes, elapsed = await spread(one, 40)
    # the limit, not 12 per worker
    assert 12 <= codes.count(200) <= at_most(12, 60, elapsed), codes
    assert set(codes) == {200, 429}

    # Redis goes away: limits are counted per worker, with a warning, and nothing fails.
    redis.kill()
    redis.wait(timeout=10)
    time.sleep(0.1)
    async with httpx.AsyncClient(base_url=node.url, timeout=10, headers=headers) as client:
        statuses = {(await client.get("/api/v1/customers")).status_code for _ in range(10)}
        assert statuses <= {200, 429}, statuses
        # Writes and GraphQL (its cost limit, persisted queries) go on too, each at once.
        took: list[float] = []

        async def timed(method: str, url: str, **kw: Any) -> httpx.Response:
            began = time.monotonic()
            reply = await client.request(method, url, **kw)
            took.append(time.monotonic() - began)
            return reply

        wrote = await timed("POST", "/api/v1/customers", json={"name": "R", "email": "r@x.io"})
        assert wrote.status_code == 201, wrote.text
        query = "{ customers(first: 5) { totalCount } }"
        read = await timed("POST", "/graphql", json={"query": query})
        assert read.status_code == 200, read.text
        assert read.json()["data"]["customers"]["totalCount"] == 1
        mutation = 'mutation { createCustomer(input: {name: "G", email: "g@x.io"}) { id } }'
        made = await timed("POST", "/graphql", json={"query": mutation})
        assert "errors" not in made.json(), made.text
        digest = hashlib.sha256(query.encode()).hexdigest()
        apq = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
        stored = await timed("POST", "/graphql", json={"query": query, "extensions": apq})
        assert stored.json()["data"]["customers"]["totalCount"] == 2, stored.text
        assert max(took) < 3.0, took  # a bound, not a speed test: nothing waits for Redis
    said = log.read_text()
    assert "rate limits are counted per worker until it answers again" in said, said


@pytest.mark.postgres_only
async def test_two_workers_share_the_token_and_sign_in_limits(limited, repo_root):
    stage, redis_url, _ = limited
    node = stage.start(workers=2, redis_url=redis_url)
    stage.login(node)  # one token request of the six a minute

    async def token() -> tuple[int, int]:
        async with httpx.AsyncClient(base_url=node.url, timeout=10) as client:
            r = await client.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=stage.client
            )
            return r.status_code, (await client.get("/readyz")).json()["worker"]["pid"]

    codes, elapsed = await spread(token, 20)
    assert set(codes) == {200, 429}
    assert 5 <= codes.count(200) <= at_most(6, 60, elapsed) - 1, codes

    # sign-in: five wrong guesses a minute for an email, whichever worker checks them
    email = f"u{uuid.uuid4().hex[:10]}@example.com"
    env = {**stage.env(redis_url), "GATEWAY_PASSWORD": "a long enough password"}
    made = gateway("create-user", "acme", email, env=env, cwd=repo_root)
    assert made.returncode == 0, made.stderr
    redirect = "https://app.example.com/callback"
    made = gateway(
        "create-client",
        "acme",
        "web",
        "--public",
        "--grant",
        "authorization_code",
        "--redirect-uri",
        redirect,
        "--scope",
        "products:read",
        env=env,
        cwd=repo_root,
    )
    assert made.returncode == 0, made.stderr
    client_id = dict(line.split("=", 1) for line in made.stdout.splitlines() if "=" in line)[
        "client_id"
    ]
    query = str(
        httpx.QueryParams(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect,
                "scope": "products:read",
                "state": "s",
                "code_challenge_method": "S256",
                "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            }
        )
    )

    async def guess() -> tuple[int, int]:
        async with httpx.AsyncClient(base_url=node.url, timeout=30) as browser:
            page = await browser.get(f"/oauth/authorize?{query}")
            assert page.status_code == 200, page.text
            form = dict(
                re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)
            )
            form.update(email=email, password="wrong password!", decision="allow")
            r = await browser.post("/oauth/authorize", data=form)
            return r.status_code, (await browser.get("/readyz")).json()["worker"]["pid"]

    codes, elapsed = await spread(guess, 20)
    assert set(codes) == {401, 429}
    assert 5 <= codes.count(401) <= at_most(5, 60, elapsed), codes  # not five per worker


# -- sockets: messages per connection, and GraphQL's cost over WebSocket ----------------


async def test_the_json_channel_closes_1008_after_an_error_frame_over_its_message_budget(
    server, tenant, tight
):
    from tests import realtime_clients as rt

    tight("ws-messages", "5/minute")
    async with rt.realtime(server.base_url, TOKENS.mint(tenant.id, "owner")) as ws:  # auth: 1
        for _ in range(4):
            await rt.send(ws, type="ping")
            assert (await rt.frame(ws))["type"] == "pong"
        await rt.send(ws, type="ping")  # the sixth message
        refused = await rt.frame(ws)
        assert refused["type"] == "error"
        assert refused["code"] == "RATE_LIMITED"
        with pytest.raises(websockets.ConnectionClosed):
            await rt.frame(ws)
    assert ws.close_code == 1008


async def message(ws: Any) -> dict[str, Any]:
    """The next GraphQL socket message, keep-alives (legacy ``ka``) left out."""
    import orjson

    while True:
        decoded: dict[str, Any] = orjson.loads(await ws.recv())
        if decoded.get("type") != "ka":
            return decoded


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_a_graphql_socket_closes_1008_after_an_error_over_its_message_budget(
    server, tenant, tight, protocol
):
    import orjson

    tight("ws-messages", "3/minute")
    url = server.base_url.replace("http", "ws") + "/graphql"
    token = TOKENS.mint(tenant.id, "owner")
    legacy = protocol == "graphql-ws"
    async with websockets.connect(url, subprotocols=[protocol]) as ws:
        await ws.send(
            orjson.dumps({"type": "connection_init", "payload": {"token": token}}).decode()
        )
        assert (await message(ws))["type"] == "connection_ack"
        start = "start" if legacy else "subscribe"
        query = {"query": "{ __typename }"}
        for ident in ("q1", "q2"):
            await ws.send(orjson.dumps({"id": ident, "type": start, "payload": query}).decode())
            assert (await message(ws))["type"] == ("data" if legacy else "next")
            assert (await message(ws))["type"] == "complete"
        await ws.send(orjson.dumps({"id": "q3", "type": start, "payload": query}).decode())
        refused = await message(ws)
        assert refused["id"] == "q3"
        assert refused["type"] == "error"
        payload = refused["payload"] if legacy else refused["payload"][0]
        assert payload["extensions"]["code"] == "RATE_LIMITED"
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 1008


async def test_graphql_over_a_socket_spends_the_same_cost_budget_as_over_http(
    server, tenant, tight
):
    import orjson

    tight("graphql", "100/minute")
    query = "{ orders(first: 20) { nodes { databaseId } } }"  # costs 41
    http = await tenant.client.post("/graphql", json={"query": query})
    assert http.status_code == 200
    url = server.base_url.replace("http", "ws") + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
        init = {"type": "connection_init", "payload": {"token": TOKENS.mint(tenant.id, "owner")}}
        await ws.send(orjson.dumps(init).decode())
        assert (await message(ws))["type"] == "connection_ack"
        await ws.send(
            orjson.dumps({"id": "a", "type": "subscribe", "payload": {"query": query}}).decode()
        )
        assert orjson.loads(await ws.recv())["type"] == "next"
        assert orjson.loads(await ws.recv())["type"] == "complete"
        # 100 - 41 - 41 = 18 left: the third costs more
        await ws.send(
            orjson.dumps({"id": "b", "type": "subscribe", "payload": {"query": query}}).decode()
        )
        refused = orjson.loads(await ws.recv())
        assert refused == {
            "id": "b",
            "type": "error",
            "payload": [refused["payload"][0]],
        }
        assert refused["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 1008
