"""``GET /api/v1/stats/order-activity``: the same numbers as GraphQL ``orderActivity``
(one function in db/stats.py serves both), with its errors as problem documents."""

from __future__ import annotations

import pytest

from tests.factories import bearer, make_order_in
from tests.graphql.test_graphql_basics import gql
from tests.graphql.test_order_activity_graphql import QUERY


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _as_graphql(value: object) -> object:
    if isinstance(value, dict):
        return {_camel(k): _as_graphql(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_graphql(v) for v in value]
    return value


async def test_rest_and_graphql_give_the_same_numbers(tenant):
    await make_order_in(tenant.owner, "pending", quantity=1)
    await make_order_in(tenant.owner, "paid", quantity=2)
    reply = await tenant.client.get("/api/v1/stats/order-activity", params={"minutes": 4})
    assert reply.status_code == 200, reply.text
    rest = reply.json()["data"]
    assert rest["orders_today"] == 2
    assert len(rest["per_minute"]) == 4
    body = await gql(tenant.client, QUERY, {"minutes": 4})
    assert "errors" not in body, body
    graphql = body["data"]["orderActivity"]
    # Read a moment apart: compare all but the clock; the minutes may have turned.
    for found in (rest, graphql):
        found.pop("as_of", None)
        found.pop("asOf", None)
    rest_minutes = rest.pop("per_minute")
    graphql_minutes = graphql.pop("perMinute")
    assert _as_graphql(rest) == graphql
    assert sum(b["order_count"] for b in rest_minutes) == 2
    assert sum(b["orderCount"] for b in graphql_minutes) == 2


async def test_the_default_is_thirty_minutes(tenant):
    reply = await tenant.client.get("/api/v1/stats/order-activity")
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["data"]["per_minute"]) == 30


@pytest.mark.parametrize("minutes", ["0", "181", "-1", "ten", "1.5", "99999999999999999999"])
async def test_bad_minutes_are_invalid_argument(tenant, minutes):
    reply = await tenant.client.get("/api/v1/stats/order-activity", params={"minutes": minutes})
    assert reply.status_code == 400, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.json()["code"] == "INVALID_ARGUMENT"


async def test_it_needs_stats_read(tenant):
    orders_only = bearer(tenant.slug, "staff", ["orders:read"])
    reply = await tenant.client.get("/api/v1/stats/order-activity", headers=orders_only)
    assert reply.status_code == 403, reply.text
    assert reply.json()["code"] == "PERMISSION_DENIED"
