"""A real nginx (Debian's) on ops/deploy/nginx/gateway.conf in front of two gateways.

Two ``gateway serve`` processes on one database (services: PostgreSQL and Redis;
embedded: one SQLite file, each process relaying the change log into its own
in-process bus, so events cross between them through the log within a second), with
``TRUSTED_PROXIES=127.0.0.1``: nginx is the only one who may say who the client is.
Through nginx: a token, REST reads and writes, GraphQL, a graphql-transport-ws
subscription, the JSON channel and an SSE stream each receiving a write made through
nginx while they stay open, request ids end to end, and the client's own address (not
nginx's, not one a client writes into X-Forwarded-For) is the one the gateway counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets

from tests import realtime_clients as rt
from tests.conftest import BACKEND, REDIS_URL
from tests.ops.nginx import Nginx, need_nginx, running_nginx
from tests.processes import clean_env, free_port, gateway
from tests.served import Gateway, gateways, own_database

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

ISSUER = "https://api.example.test"
WAIT = 15.0  # seconds: a guard; events cross processes within about a second


@dataclass
class Stage:
    nginx: Nginx
    nodes: list[Gateway]
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, address: str = "127.0.0.1") -> httpx.AsyncClient:
        """A client of nginx whose connections leave from ``address`` (any 127/8 one)."""
        return httpx.AsyncClient(
            base_url=self.nginx.url,
            transport=httpx.AsyncHTTPTransport(local_address=address),
            timeout=WAIT,
        )


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    need_nginx()
    root = tmp_path_factory.mktemp("nginx-stage")
    with own_database(root) as database, gateways(root, database) as start:
        env = clean_env(**database)
        assert gateway("create-org", "edge", env=env, cwd=root).returncode == 0
        made = gateway("create-client", "edge", "dash", "--role", "staff", env=env, cwd=root)
        assert made.returncode == 0, made.stderr
        client = dict(line.split("=", 1) for line in made.stdout.splitlines() if "=" in line)
        settings = {
            "AUTH_ISSUER": ISSUER,
            "TRUSTED_PROXIES": "127.0.0.1",
            "RATE_LIMITS_ENABLED": "true",
            "RATE_LIMIT_AUTH_FAILURES": "2/minute",
        }
        if BACKEND == "services":
            settings["REDIS_URL"] = REDIS_URL
        with ThreadPoolExecutor(2) as pool:  # both start at once: half the wait
            nodes = list(pool.map(lambda _: start(**settings), range(2)))
        with running_nginx(root / "nginx", [n.port for n in nodes], free_port()) as nginx:
            reply = httpx.post(
                f"{nginx.url}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client["client_id"], client["client_secret"]),
                timeout=WAIT,
            )
            assert reply.status_code == 200, reply.text
            yield Stage(nginx, nodes, reply.json()["access_token"])


async def post_product(http: httpx.AsyncClient, stage: Stage) -> dict[str, Any]:
    body = {"sku": f"NGX-{uuid.uuid4().hex[:10]}", "name": "Proxied", "price_cents": 100}
    reply = await http.post("/api/v1/products", json=body, headers=stage.auth)
    assert reply.status_code == 201, reply.text
    product: dict[str, Any] = reply.json()["data"]
    return product


async def test_rest_and_graphql_through_nginx_reach_both_gateways(stage):
    async with stage.client() as http:
        product = await post_product(http, stage)
        seen = set()
        for _ in range(4):  # round robin: two requests per gateway
            reply = await http.get(f"/api/v1/products/{product['id']}", headers=stage.auth)
            assert reply.status_code == 200, reply.text
            assert reply.json()["data"]["sku"] == product["sku"]
            seen.add(reply.headers["x-request-id"])
        query = "query ($f: String) { products(filter: $f) { nodes { databaseId sku } } }"
        reply = await http.post(
            "/graphql",
            json={"query": query, "variables": {"f": f'sku = "{product["sku"]}"'}},
            headers=stage.auth,
        )
        assert reply.status_code == 200, reply.text
        assert reply.json() == {
            "data": {"products": {"nodes": [{"databaseId": product["id"], "sku": product["sku"]}]}}
        }
        # a client's request id passes through; without one, nginx's own is the gateway's
        mine = f"edge-{uuid.uuid4().hex}"
        reply = await http.get("/livez", headers={"X-Request-Id": mine})
        assert reply.headers["x-request-id"] == mine
        # nginx replaces a client's X-Forwarded-Proto with the scheme it saw (http here),
        # so the gateway does not take the client for an https one (HSTS goes to those)
        forged = {"X-Forwarded-Proto": "https"}
        assert "strict-transport-security" not in (await http.get("/livez", headers=forged)).headers
    # the same header from the trusted proxy's own address is believed: the check means something
    direct = httpx.get(f"{stage.nodes[0].url}/livez", headers=forged, timeout=WAIT)
    assert "strict-transport-security" in direct.headers
    log = stage.nginx.access_log()
    upstreams = {line.split(" up=")[1].split()[0] for line in log if " up=" in line}
    assert upstreams >= {f"127.0.0.1:{node.port}" for node in stage.nodes}, log
    logged = {line.rsplit("rid=", 1)[1] for line in log}
    assert seen <= logged  # the id nginx logged is the one the gateway answered with
    assert mine in logged


@contextlib.asynccontextmanager
async def graphql_socket(stage: Stage, after: int) -> AsyncIterator[Any]:
    async with websockets.connect(
        f"{stage.nginx.ws}/graphql", subprotocols=["graphql-transport-ws"], open_timeout=WAIT
    ) as ws:
        await rt.send(
            ws, type="connection_init", payload={"Authorization": f"Bearer {stage.token}"}
        )
        assert (await rt.frame(ws, WAIT))["type"] == "connection_ack"
        query = (
            "subscription ($after: StreamPosition) "
            "{ productEvents(after: $after) { position type product { databaseId } } }"
        )
        await rt.send(
            ws, type="subscribe", id="p", payload={"query": query, "variables": {"after": after}}
        )
        yield ws


async def next_product(ws: Any) -> tuple[int, int]:
    """(position, product id) of the subscription's next event."""
    message = await rt.frame(ws, WAIT)
    assert message["type"] == "next", message
    event = message["payload"]["data"]["productEvents"]
    return int(event["position"]), int(event["product"]["databaseId"])


async def test_sockets_and_sse_receive_writes_made_through_nginx(stage):
    async with stage.client() as http:
        first = await post_product(http, stage)
        # each stream resumes from the start of the log, so it holds ``first`` however
        # long it took to open; then it must stay open and receive ``second`` live
        async with (
            graphql_socket(stage, after=0) as gql,
            rt.realtime(stage.nginx.url, stage.token) as channel,
            rt.sse(http, {"topics": "products", "after": "0"}, stage.auth) as sse,
        ):
            assert sse.response.headers["content-type"].startswith("text/event-stream")
            await rt.subscribe(channel, "s", ["products"], after=0)

            async def until(product_id: int) -> None:
                while (await next_product(gql))[1] != product_id:
                    pass
                while (await rt.events(channel, 1, WAIT))[0]["data"]["id"] != product_id:
                    pass
                while (await sse.next(WAIT))["data"]["data"]["id"] != product_id:
                    pass

            await asyncio.wait_for(until(first["id"]), WAIT)
            second = await post_product(http, stage)
            await asyncio.wait_for(until(second["id"]), WAIT)
            assert not sse.response.is_closed


def _address() -> str:
    """A loopback address of its own: counters left in a shared Redis by another run
    (they live a minute) never meet this one's."""
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"


async def test_the_gateway_counts_the_client_s_address_not_nginx_s_nor_a_forged_one(stage):
    """Refused credentials are counted per client address (RATE_LIMIT_AUTH_FAILURES=2/minute):
    one client writing a new X-Forwarded-For on every request still runs out, and a second
    client behind the same nginx does not share its count."""
    noisy, quiet = _address(), _address()
    bad = {"Authorization": "Bearer not-a-token"}
    statuses = []
    async with stage.client(noisy) as http:
        for n in range(12):  # each gateway counts on its own on the embedded pass
            forged = {**bad, "X-Forwarded-For": f"198.51.100.{n + 1}"}
            reply = await http.get("/api/v1/products", headers=forged)
            statuses.append(reply.status_code)
            if reply.status_code == 429:
                assert reply.json()["code"] == "RATE_LIMITED"
                break
    assert statuses[-1] == 429, statuses
    assert set(statuses[:-1]) == {401}, statuses
    async with stage.client(quiet) as http:
        assert (await http.get("/api/v1/products", headers=bad)).status_code == 401
        assert (await http.get("/api/v1/products", headers=stage.auth)).status_code == 200


async def test_websocket_upgrades_pass_only_with_a_subprotocol_the_gateway_knows(stage):
    """The Upgrade and Connection headers reach the gateway, which answers the handshake."""
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(f"{stage.nginx.ws}/graphql", open_timeout=WAIT):
            pass
    assert refused.value.response.status_code == 400
    async with websockets.connect(
        f"{stage.nginx.ws}/graphql", subprotocols=["graphql-transport-ws"], open_timeout=WAIT
    ) as ws:
        assert ws.subprotocol == "graphql-transport-ws"
        await ws.send(orjson.dumps({"type": "ping"}).decode())
        assert (await rt.frame(ws, WAIT))["type"] == "pong"


def test_nginx_logged_no_errors(stage):
    """Upstream errors (a refused or reset connection, a timeout) would show here."""
    text = stage.nginx.error_log()
    assert "[error]" not in text
    assert "[crit]" not in text
    assert "[emerg]" not in text
    assert Path(stage.nginx.directory / "nginx.pid").exists()
