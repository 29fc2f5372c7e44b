"""GraphQL subscriptions on /graphql over WebSocket, with independent clients.

``gql`` (Python) over both subprotocols, the npm ``graphql-ws`` client, and raw
``websockets`` for the protocol's edges (refused init, errors, close codes).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest
import websockets
from gql import Client, GraphQLRequest, gql
from gql.transport.websockets import WebsocketsTransport

from db import events as change_log
from tests import realtime_clients as rt
from tests.factories import TOKENS, make_customer, make_product, post_order

ORDER_EVENTS = """
subscription ($after: StreamPosition, $filter: String) {
  orderEvents(after: $after, filter: $filter) {
    position type resource
    order { id databaseId status totalCents customer { name } items { quantity product { name } } }
  }
}
"""
CONFORMANCE = Path(__file__).resolve().parents[1] / "conformance"


def token_of(tenant, role: str = "owner", scopes: list[str] | None = None) -> str:
    return TOKENS.mint(tenant.id, role, scopes)


def graphql_ws(server) -> str:
    return rt.ws_url(server.base_url, "/graphql")


async def order_setup(tenant):
    customer = await make_customer(tenant.owner, name="Buyer")
    product = await make_product(tenant.owner, name="Kettle", price_cents=2500, stock=50)
    return customer, product


@pytest.mark.parametrize(
    "subprotocol",
    [WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, WebsocketsTransport.APOLLO_SUBPROTOCOL],
)
async def test_gql_receives_a_rest_write_and_a_graphql_mutation(server, tenant, subprotocol):
    customer, product = await order_setup(tenant)
    head = await change_log.head_position()
    transport = WebsocketsTransport(
        url=graphql_ws(server),
        init_payload={"Authorization": f"Bearer {token_of(tenant)}"},
        subprotocols=[subprotocol],
    )
    async with Client(transport=transport) as session:
        received: list[dict] = []

        async def listen() -> None:
            request = GraphQLRequest(gql(ORDER_EVENTS), variable_values={"after": head})
            async for result in session.subscribe(request):
                received.append(result["orderEvents"])
                if len(received) == 2:
                    return

        listener = asyncio.create_task(listen())
        placed = await post_order(tenant.client, customer["id"], [(product["id"], 2)])
        mutation = await tenant.client.post(
            "/graphql",
            json={
                "query": "mutation ($id: ID!) { payOrder(id: $id) { status } }",
                "variables": {"id": str(placed["id"])},
            },
        )
        assert mutation.json()["data"]["payOrder"]["status"] == "PAID", mutation.text
        await asyncio.wait_for(listener, 15)
    types = [event["type"] for event in received]
    assert types == ["order.created", "order.paid"]
    first = received[0]["order"]
    assert first["databaseId"] == placed["id"]
    assert first["customer"] == {"name": "Buyer"}
    assert first["items"] == [{"quantity": 2, "product": {"name": "Kettle"}}]
    assert received[1]["order"]["status"] == "PAID"
    positions = [event["position"] for event in received]
    assert positions == sorted(positions)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
async def test_the_npm_graphql_ws_client_receives_a_rest_write_and_a_mutation(server, tenant):
    if not (CONFORMANCE / "node_modules" / "graphql-ws").exists():
        pytest.fail("run ops/scripts/install: tests/conformance/node_modules is missing")
    customer, product = await order_setup(tenant)
    head = await change_log.head_position()
    process = await asyncio.create_subprocess_exec(
        "node",
        str(CONFORMANCE / "graphql_ws_client.mjs"),
        graphql_ws(server),
        token_of(tenant),
        ORDER_EVENTS,
        "2",
        json.dumps({"after": head}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 15)
        assert orjson.loads(line) == {"connected": True}
        placed = await post_order(tenant.client, customer["id"], [(product["id"], 1)])
        cancelled = await tenant.client.post(
            "/graphql",
            json={
                "query": "mutation ($id: ID!) { cancelOrder(id: $id) { status } }",
                "variables": {"id": str(placed["id"])},
            },
        )
        assert cancelled.json()["data"]["cancelOrder"]["status"] == "CANCELLED"
        out, err = await asyncio.wait_for(process.communicate(), 15)
    finally:
        if process.returncode is None:
            process.kill()
    lines = [orjson.loads(line) for line in out.splitlines() if line.strip()]
    events = [line["next"]["data"]["orderEvents"] for line in lines if "next" in line]
    assert [e["type"] for e in events] == ["order.created", "order.cancelled"], (lines, err)
    assert {e["order"]["databaseId"] for e in events} == {placed["id"]}


async def raw_socket(server, subprotocol: str = "graphql-transport-ws"):
    return websockets.connect(graphql_ws(server), subprotocols=[subprotocol])


async def test_an_init_without_valid_credentials_is_refused_with_4403(server):
    for payload in ({}, {"Authorization": "Bearer nope"}, {"token": 12}):
        async with await raw_socket(server) as ws:
            await rt.send(ws, type="connection_init", payload=payload)
            with pytest.raises(websockets.ConnectionClosed):
                await rt.frame(ws)
        assert ws.close_code == 4403


async def test_the_legacy_protocol_refuses_with_connection_error(server):
    async with await raw_socket(server, "graphql-ws") as ws:
        await rt.send(ws, type="connection_init", payload={"Authorization": "Bearer nope"})
        refused = await rt.frame(ws)
        assert refused["type"] == "connection_error"
        assert refused["payload"]["code"] == "UNAUTHENTICATED"


async def subscribe_raw(ws, ident: str, query: str, variables: dict | None = None) -> None:
    await rt.send(
        ws, type="subscribe", id=ident, payload={"query": query, "variables": variables or {}}
    )


async def connected(server, tenant, **kwargs):
    ws = await (await raw_socket(server)).__aenter__()
    await rt.send(
        ws,
        type="connection_init",
        payload={"Authorization": f"Bearer {token_of(tenant, **kwargs)}"},
    )
    assert (await rt.frame(ws))["type"] == "connection_ack"
    return ws


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        (
            'subscription { orderEvents(filter: "status = lost") { position } }',
            None,
            "INVALID_ARGUMENT",
        ),
        (
            'subscription { changes(resources: ["invoices"]) { position } }',
            None,
            "INVALID_ARGUMENT",
        ),
        (
            "subscription ($a: StreamPosition) { orderEvents(after: $a) { position } }",
            {"a": 9_000_000_000_000},
            "RESYNC_REQUIRED",
        ),
        ("subscription { orderEvents { nope } }", None, "GRAPHQL_VALIDATION_FAILED"),
    ],
)
async def test_bad_subscriptions_get_an_error_message_with_the_rest_code(
    server, tenant, query, variables, code
):
    ws = await connected(server, tenant)
    try:
        await subscribe_raw(ws, "1", query, variables)
        error = await rt.frame(ws)
        assert error["type"] == "error", error
        assert error["id"] == "1"
        assert error["payload"][0]["extensions"]["code"] == code
        await rt.send(ws, type="ping")
        assert (await rt.frame(ws))["type"] == "pong"
    finally:
        await ws.close()


async def test_a_missing_scope_is_permission_denied(server, tenant):
    ws = await connected(server, tenant, role="viewer", scopes=["products:read"])
    try:
        await subscribe_raw(ws, "1", "subscription { orderEvents { position } }")
        error = await rt.frame(ws)
        assert error["payload"][0]["extensions"]["code"] == "PERMISSION_DENIED"
    finally:
        await ws.close()


async def test_another_organization_receives_nothing(server, tenant, other_tenant):
    theirs = await connected(server, other_tenant)
    mine = await connected(server, tenant)
    try:
        # From the head position: the streams miss nothing written after it, however
        # long the server takes to start them (graphql-transport-ws has no "subscribed").
        query = (
            "subscription ($after: StreamPosition) { changes(after: $after) { position resource } }"
        )
        head = {"after": await change_log.head_position()}
        await subscribe_raw(theirs, "t", query, head)
        await subscribe_raw(mine, "m", query, head)
        await make_product(tenant.owner)
        await make_customer(other_tenant.owner)
        got = await rt.frame(mine)
        assert got["type"] == "next"
        assert got["payload"]["data"]["changes"]["resource"] == "product"
        # Their stream is in position order: their own later write comes first and alone.
        got = await rt.frame(theirs)
        assert got["payload"]["data"]["changes"]["resource"] == "customer"
        assert await rt.quiet(theirs, 0.3) == []
    finally:
        await theirs.close()
        await mine.close()


async def test_queries_and_mutations_run_over_the_socket_too(server, tenant):
    ws = await connected(server, tenant)
    try:
        create = '{ createCustomer(input: {name: "Sock", email: "sock@example.com"}) { name } }'
        await subscribe_raw(ws, "q", "mutation " + create)
        result = await rt.frame(ws)
        assert result["payload"]["data"] == {"createCustomer": {"name": "Sock"}}
        assert (await rt.frame(ws)) == {"id": "q", "type": "complete"}
    finally:
        await ws.close()


@pytest.mark.parametrize("subprotocol", ["graphql-transport-ws", "graphql-ws"])
async def test_token_expiry_closes_the_socket_with_4401(server, tenant, clock, subprotocol):
    token, _ = server.app.ctx.auth.tokens.issue(
        subject="user:short",
        organization_id=tenant.id,
        client_id="tests",
        scopes=["orders:read"],
        roles=["viewer"],
        ttl_seconds=60,
    )
    async with await raw_socket(server, subprotocol) as ws:
        await rt.send(ws, type="connection_init", payload={"token": token})
        assert (await rt.frame(ws))["type"] == "connection_ack"
        clock.advance(50)
        query = {"query": "subscription { orderEvents { position } }"}
        if subprotocol == "graphql-ws":
            await rt.send(ws, type="start", id="1", payload=query)
        else:
            await rt.send(ws, type="subscribe", id="1", payload=query)
        clock.advance(70)  # past the token's expiry, on the server's clock

        async def keepalives_until_closed() -> None:
            while True:
                assert (await rt.frame(ws))["type"] == "ka"  # legacy keep-alives only

        with pytest.raises(websockets.ConnectionClosed):
            await keepalives_until_closed()
    assert ws.close_code == 4401


async def test_a_revoked_api_key_closes_its_graphql_socket_with_4403(server, tenant):
    admin = {"Authorization": f"Bearer {token_of(tenant, 'admin')}"}
    created = await tenant.client.post(
        "/api/v1/api-keys", json={"name": "board", "scopes": ["orders:read"]}, headers=admin
    )
    key = created.json()["data"]
    async with await raw_socket(server) as ws:
        await rt.send(ws, type="connection_init", payload={"X-API-Key": key["key"]})
        assert (await rt.frame(ws))["type"] == "connection_ack"
        await subscribe_raw(ws, "1", "subscription { orderEvents { position } }")
        revoked = await tenant.client.delete(f"/api/v1/api-keys/{key['id']}", headers=admin)
        assert revoked.status_code == 204
        with pytest.raises(websockets.ConnectionClosed):
            await rt.frame(ws, timeout=2)
    assert ws.close_code == 4403


async def test_changes_without_order_scope_carry_no_order_events(server, tenant):
    ws = await connected(server, tenant, role="viewer", scopes=["products:read"])
    try:
        query = "subscription ($after: StreamPosition) { changes(after: $after) { type resource } }"
        await subscribe_raw(ws, "c", query, {"after": await change_log.head_position()})
        customer, product = await order_setup(tenant)
        await post_order(tenant.client, customer["id"], [(product["id"], 1)])
        seen = []
        while len(seen) < 2:  # the product's creation, then its stock change
            message = await rt.frame(ws)
            seen.append(message["payload"]["data"]["changes"])
        assert seen == [
            {"type": "product.created", "resource": "product"},
            {"type": "product.updated", "resource": "product"},
        ]
        assert await rt.quiet(ws, 0.3) == []
    finally:
        await ws.close()
