"""Server-Sent Events at /api/v1/events, read as an EventSource reads them."""

from __future__ import annotations

import asyncio

import pytest

from tests import realtime_clients as rt
from tests.factories import TOKENS, assert_problem, make_customer, make_product


def bearer(tenant, role: str = "owner", scopes: list[str] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS.mint(tenant.id, role, scopes)}"}


async def test_a_rest_write_arrives_with_its_position_as_the_id(server, tenant, anon):
    async with rt.sse(anon, {"topics": "customers"}, bearer(tenant)) as stream:
        assert stream.response.status_code == 200
        headers = stream.response.headers
        assert headers["content-type"].startswith("text/event-stream")
        assert headers["cache-control"] == "no-cache, no-transform"
        assert headers["x-accel-buffering"] == "no"
        response = await tenant.client.post(
            "/api/v1/customers", json={"name": "Grace", "email": "grace@example.com"}
        )
        assert response.status_code == 201
        (event,) = await stream.events(1)
        assert stream.retry is not None
        assert stream.retry > 0
    assert event["event"] == "customer.created"
    assert event["id"] == str(event["data"]["position"])
    assert event["data"]["data"]["email"] == "grace@example.com"


async def test_last_event_id_resumes_without_gaps_or_repeats(server, tenant, anon):
    async with rt.sse(anon, {"topics": "products"}, bearer(tenant)) as stream:
        await make_product(tenant.owner, name="one")
        (first,) = await stream.events(1)
    for n in range(3):
        await make_product(tenant.owner, name=f"missed {n}")
    headers = {**bearer(tenant), "Last-Event-ID": first["id"]}
    async with rt.sse(anon, {"topics": "products"}, headers) as stream:
        got = await stream.events(3)
    assert [e["data"]["data"]["name"] for e in got] == ["missed 0", "missed 1", "missed 2"]


async def test_a_browser_ticket_works_once(server, tenant, anon):
    issued = await tenant.client.post("/api/v1/events/tickets")
    assert issued.status_code == 201
    ticket = issued.json()["ticket"]
    params = {"topics": "customers", "ticket": ticket}
    async with rt.sse(anon, params) as stream:
        assert stream.response.status_code == 200
        await make_customer(tenant.owner, name="via ticket")
        (event,) = await stream.events(1)
        assert event["data"]["data"]["name"] == "via ticket"
    again = await anon.get("/api/v1/events", params=params)
    assert_problem(again, 401, "UNAUTHENTICATED")


async def test_filters_per_topic(server, tenant, anon):
    params = {"topics": "customers,products", "filter.products": 'name = "keep*"'}
    async with rt.sse(anon, params, bearer(tenant)) as stream:
        await make_product(tenant.owner, name="drop me")
        await make_product(tenant.owner, name="keep me")
        await make_customer(tenant.owner, name="always")
        got = await stream.events(2)
    assert [e["event"] for e in got] == ["product.created", "customer.created"]
    assert got[0]["data"]["data"]["name"] == "keep me"


async def test_isolation_between_organizations_and_scopes(server, tenant, other_tenant, anon):
    async with (
        rt.sse(anon, {"topics": "customers"}, bearer(other_tenant)) as stranger,
        rt.sse(anon, {"topics": "customers"}, bearer(tenant)) as owner,
    ):
        await make_customer(tenant.owner, name="private")
        await make_customer(other_tenant.owner, name="theirs")
        (mine,) = await owner.events(1)
        (theirs,) = await stranger.events(1)
    assert mine["data"]["data"]["name"] == "private"
    assert theirs["data"]["data"]["name"] == "theirs"
    narrow = bearer(tenant, "viewer", ["products:read"])
    refused = await anon.get("/api/v1/events", params={"topics": "customers"}, headers=narrow)
    assert_problem(refused, 403, "PERMISSION_DENIED")


@pytest.mark.parametrize(
    ("params", "headers", "status", "code"),
    [
        ({}, {}, 400, "INVALID_ARGUMENT"),
        ({"topics": "invoices"}, {}, 400, "INVALID_ARGUMENT"),
        ({"topics": "orders", "filter": "status = lost"}, {}, 400, "INVALID_ARGUMENT"),
        ({"topics": "orders,products", "filter": "id = 1"}, {}, 400, "INVALID_ARGUMENT"),
        ({"topics": "orders", "filter.products": "id = 1"}, {}, 400, "INVALID_ARGUMENT"),
        ({"topics": "orders", "after": "abc"}, {}, 400, "INVALID_ARGUMENT"),
        ({"topics": "orders", "after": "\uff11\uff12"}, {}, 400, "INVALID_ARGUMENT"),
        ({"topics": "orders"}, {"Last-Event-ID": "x1"}, 400, "INVALID_ARGUMENT"),
        ({"topics": "orders", "after": "99999999999"}, {}, 410, "RESYNC_REQUIRED"),
    ],
)
async def test_bad_requests_are_problems_not_streams(
    server, tenant, anon, params, headers, status, code
):
    response = await anon.get(
        "/api/v1/events", params=params, headers={**bearer(tenant), **headers}
    )
    assert_problem(response, status, code)


async def test_no_credentials_is_401(anon):
    response = await anon.get("/api/v1/events", params={"topics": "orders"})
    assert_problem(response, 401, "UNAUTHENTICATED")


async def test_keepalive_comments_come_before_the_idle_timeout(server, tenant, anon, monkeypatch):
    settings = server.app.ctx.settings
    assert settings.stream_heartbeat_seconds < server.app.config.RESPONSE_TIMEOUT
    monkeypatch.setattr(settings, "stream_heartbeat_seconds", 0.2)

    async def keepalive(stream: rt.SSE) -> list[str]:
        lines = []
        async for line in stream.lines:
            lines.append(line)
            if line == ": keep-alive":
                return lines
        raise EOFError("the stream ended")

    async with rt.sse(anon, {"topics": "orders"}, bearer(tenant)) as stream:
        lines = await asyncio.wait_for(keepalive(stream), 10)
    # Only the stream's opening and comments came before it: no event.
    assert not [line for line in lines if line and not line.startswith((":", "retry:"))], lines


def test_sse_frames_are_built_once_per_event():
    from realtime.hub import StreamEvent

    event = StreamEvent(
        {
            "position": 7,
            "organization_id": 1,
            "resource": "order",
            "type": "order.paid",
            "data": {"id": 1},
            "occurred_at": "2026-01-01T00:00:00Z",
            "actor": "user:1",
        }
    )
    assert event.sse is event.sse
    assert event.sse.startswith(b"id: 7\nevent: order.paid\ndata: {")


async def test_an_expired_token_ends_the_stream_with_a_close_event(server, tenant, anon, clock):
    token, _ = server.app.ctx.auth.tokens.issue(
        subject="user:short",
        organization_id=tenant.id,
        client_id="tests",
        scopes=["orders:read"],
        roles=["viewer"],
        ttl_seconds=60,
    )
    headers = {"Authorization": f"Bearer {token}"}
    async with rt.sse(anon, {"topics": "orders"}, headers) as stream:
        assert stream.response.status_code == 200  # subscribed: its expiry is scheduled
        clock.advance(120)  # past the token's expiry, on the server's clock
        closing = await stream.next(timeout=5)
        assert closing["event"] == "close"
        assert closing["data"]["code"] == 4401
        with pytest.raises(EOFError):
            await stream.next(timeout=5)
