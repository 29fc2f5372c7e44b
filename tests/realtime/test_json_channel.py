"""The JSON WebSocket channel at /api/v1/realtime, with the ``websockets`` client."""

from __future__ import annotations

import asyncio
import math
import time

import orjson
import pytest
import websockets

from tests import realtime_clients as rt
from tests.factories import TOKENS, make_customer, make_product


def token_of(tenant, role: str = "owner", scopes: list[str] | None = None) -> str:
    return TOKENS.mint(tenant.id, role, scopes)


async def test_a_rest_write_reaches_a_subscriber(server, tenant):
    async with rt.realtime(server.base_url, token_of(tenant)) as ws:
        reply = await rt.subscribe(ws, "s1", ["customers"])
        assert reply["position"] >= 0
        response = await tenant.client.post(
            "/api/v1/customers", json={"name": "Ada", "email": "ada@example.com"}
        )
        assert response.status_code == 201, response.text
        (event,) = await rt.events(ws, 1)
    assert event["type"] == "customer.created"
    assert event["resource"] == "customer"
    assert event["data"]["email"] == "ada@example.com"
    assert event["resource_id"] == str(response.json()["data"]["id"])
    assert event["position"] > reply["position"]


async def test_authentication_by_header_on_the_upgrade(server, tenant):
    headers = {"Authorization": f"Bearer {token_of(tenant)}"}
    async with websockets.connect(rt.ws_url(server.base_url), additional_headers=headers) as ws:
        assert (await rt.frame(ws))["type"] == "authenticated"
        await rt.subscribe(ws, "s", ["products"])
        await make_product(tenant.owner, name="Lamp")
        (event,) = await rt.events(ws, 1)
        assert event["data"]["name"] == "Lamp"


async def test_resume_after_a_position_misses_nothing_and_repeats_nothing(server, tenant):
    async with rt.realtime(server.base_url, token_of(tenant)) as ws:
        await rt.subscribe(ws, "s", ["customers"])
        await make_customer(tenant.owner, name="first")
        (first,) = await rt.events(ws, 1)
    # Disconnected: writes go on.
    for n in range(3):
        await make_customer(tenant.owner, name=f"missed {n}")
    async with rt.realtime(server.base_url, token_of(tenant)) as ws:
        await rt.subscribe(ws, "s", ["customers"], after=first["position"])
        await make_customer(tenant.owner, name="live")
        got = await rt.events(ws, 4)
        assert await rt.quiet(ws, 0.3) == []
    assert [e["data"]["name"] for e in got] == ["missed 0", "missed 1", "missed 2", "live"]
    positions = [e["position"] for e in got]
    assert positions == sorted(positions)
    assert positions[0] > first["position"]


async def test_filters_use_the_rest_grammar_on_the_snapshot(server, tenant):
    async with rt.realtime(server.base_url, token_of(tenant)) as ws:
        await rt.subscribe(ws, "cheap", ["products"], filter="price_cents < 500")
        await make_product(tenant.owner, name="dear", price_cents=900)
        await make_product(tenant.owner, name="cheap", price_cents=100)
        (event,) = await rt.events(ws, 1)
        assert event["data"]["name"] == "cheap"


async def test_another_organization_and_a_missing_scope_see_nothing(server, tenant, other_tenant):
    no_orders = [s for s in ("customers:read", "products:read")]
    async with (
        rt.realtime(server.base_url, token_of(other_tenant)) as stranger,
        rt.realtime(server.base_url, token_of(tenant, "viewer", no_orders)) as narrow,
        rt.realtime(server.base_url, token_of(tenant)) as owner,
    ):
        await rt.subscribe(stranger, "s", ["customers", "products", "orders"])
        await rt.subscribe(owner, "s", ["customers"])
        await rt.send(narrow, type="subscribe", id="o", topics=["orders"])
        refused = await rt.frame(narrow)
        assert refused["type"] == "error"
        assert (refused["code"], refused["id"]) == ("PERMISSION_DENIED", "o")
        await make_customer(tenant.owner)
        await rt.events(owner, 1)
        assert await rt.quiet(stranger, 0.3) == []
        assert await rt.quiet(narrow, 0.1) == []


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("not json", "INVALID_ARGUMENT"),
        ('["a list"]', "INVALID_ARGUMENT"),
        ('{"type": "teleport"}', "INVALID_ARGUMENT"),
        ('{"type": "subscribe", "id": "x", "topics": ["invoices"]}', "INVALID_ARGUMENT"),
        (
            '{"type": "subscribe", "id": "x", "topics": "orders", "filter": "nope ="}',
            "INVALID_ARGUMENT",
        ),
        ('{"type": "subscribe", "id": "x", "topics": ["orders"], "after": -1}', "INVALID_ARGUMENT"),
        (
            '{"type": "subscribe", "id": "x", "topics": ["orders"], "after": "12"}',
            "INVALID_ARGUMENT",
        ),
        ('{"type": "subscribe", "topics": ["orders"]}', "INVALID_ARGUMENT"),
        ('{"type": "unsubscribe", "id": "never"}', "INVALID_ARGUMENT"),
        (
            '{"type": "subscribe", "id": "x", "topics": ["orders"], "after": 999999999999}',
            "RESYNC_REQUIRED",
        ),
    ],
)
async def test_bad_messages_get_an_error_and_the_connection_lives_on(server, tenant, message, code):
    async with rt.realtime(server.base_url, token_of(tenant)) as ws:
        await ws.send(message)
        error = await rt.frame(ws)
        assert error["type"] == "error", error
        assert error["code"] == code
        assert error["message"]
        await rt.send(ws, type="ping")
        assert (await rt.frame(ws))["type"] == "pong"
        await rt.subscribe(ws, "ok", ["customers"])
        await make_customer(tenant.owner)
        assert len(await rt.events(ws, 1)) == 1


async def test_a_duplicate_subscription_id_is_refused(server, tenant):
    async with rt.realtime(server.base_url, token_of(tenant)) as ws:
        await rt.subscribe(ws, "s", ["customers"])
        await rt.send(ws, type="subscribe", id="s", topics=["products"])
        error = await rt.frame(ws)
        assert (error["code"], error["id"]) == ("INVALID_ARGUMENT", "s")


async def test_unsubscribe_stops_the_stream(server, tenant):
    async with rt.realtime(server.base_url, token_of(tenant)) as ws:
        await rt.subscribe(ws, "s", ["customers"])
        await rt.send(ws, type="unsubscribe", id="s")
        assert await rt.frame(ws) == {"type": "unsubscribed", "id": "s"}
        await make_customer(tenant.owner)
        assert await rt.quiet(ws, 0.3) == []


async def test_bad_credentials_are_refused_with_4403(server):
    async with websockets.connect(rt.ws_url(server.base_url)) as ws:
        await rt.send(ws, type="auth", token="not-a-token")
        with pytest.raises(websockets.ConnectionClosed):
            await rt.frame(ws)
    assert ws.close_code == 4403


async def test_a_subscribe_before_auth_closes_with_4401(server):
    async with websockets.connect(rt.ws_url(server.base_url)) as ws:
        await rt.send(ws, type="subscribe", id="s", topics=["orders"])
        with pytest.raises(websockets.ConnectionClosed):
            await rt.frame(ws)
    assert ws.close_code == 4401


async def test_a_revoked_credential_closes_its_sockets_with_4403(server, tenant):
    admin = {"Authorization": f"Bearer {token_of(tenant, 'admin')}"}
    created = await tenant.client.post(
        "/api/v1/api-keys", json={"name": "wallboard", "scopes": ["customers:read"]}, headers=admin
    )
    assert created.status_code == 201, created.text
    key = created.json()["data"]
    url = rt.ws_url(server.base_url)
    async with websockets.connect(url, additional_headers={"X-API-Key": key["key"]}) as ws:
        assert (await rt.frame(ws))["type"] == "authenticated"
        await rt.subscribe(ws, "s", ["customers"])
        loop = asyncio.get_running_loop()
        began = loop.time()
        revoked = await tenant.client.delete(f"/api/v1/api-keys/{key['id']}", headers=admin)
        assert revoked.status_code == 204
        with pytest.raises(websockets.ConnectionClosed):
            await rt.frame(ws, timeout=1.0)
        assert loop.time() - began < 1.0
    assert ws.close_code == 4403


async def test_an_expired_token_closes_with_4401_unless_renewed_in_band(server, tenant, clock):
    issue = server.app.ctx.auth.tokens.issue

    def token(ttl: int) -> str:
        """A token that expires ``ttl`` seconds from now on the server's clock."""
        ahead = max(0, math.ceil(clock.now - time.time()))
        token, _ = issue(
            subject="user:short",
            organization_id=tenant.id,
            client_id="tests",
            scopes=["customers:read"],
            roles=["viewer"],
            ttl_seconds=ahead + ttl,
        )
        return token

    async with rt.realtime(server.base_url, token(60)) as ws:
        await rt.subscribe(ws, "s", ["customers"])
        clock.advance(120)  # past the token's expiry, on the server's clock
        with pytest.raises(websockets.ConnectionClosed):
            await rt.frame(ws)
    assert ws.close_code == 4401

    async with rt.realtime(server.base_url, token(60)) as ws:
        await rt.subscribe(ws, "s", ["customers"])
        await rt.send(ws, type="auth", token=token(3600))
        assert (await rt.frame(ws))["type"] == "authenticated"
        clock.advance(120)  # past the first token's expiry: the renewed one counts
        await make_customer(tenant.owner)
        assert len(await rt.events(ws, 1)) == 1
        clock.advance(3600)
        with pytest.raises(websockets.ConnectionClosed):
            await rt.frame(ws)
    assert ws.close_code == 4401


async def test_the_asyncapi_document_describes_the_channels(anon):
    response = await anon.get("/api/v1/asyncapi.json")
    assert response.status_code == 200
    doc = orjson.loads(response.content)
    assert doc["asyncapi"].startswith("3.")
    assert doc["channels"]["realtime"]["address"] == "/api/v1/realtime"
    assert doc["channels"]["events"]["address"] == "/api/v1/events"
    assert {"subscribe", "event", "error"} <= set(doc["channels"]["realtime"]["messages"])


async def test_a_frame_larger_than_the_body_limit_closes_with_1009(server, tenant):
    limit = server.app.ctx.settings.max_body_bytes
    async with rt.realtime(server.base_url, token_of(tenant)) as ws:
        await rt.send(ws, type="ping", payload="x" * (limit + 1))
        with pytest.raises(websockets.ConnectionClosed):
            await rt.frame(ws)
    assert ws.close_code == 1009
