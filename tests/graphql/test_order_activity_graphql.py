"""``orderActivity`` over GraphQL: db.stats.order_activity's numbers, typed, with the
position a subscription resumes after; bad arguments are errors with a code."""

from __future__ import annotations

from db.events import head_position
from tests.factories import bearer, make_order_in
from tests.graphql.test_graphql_basics import codes, gql

QUERY = """query ($minutes: Int!) {
  orderActivity(minutes: $minutes) {
    position asOf ordersToday revenueTodayCents
    statusCounts { status count }
    perMinute { start orderCount }
  }
}"""


async def test_order_activity_counts_what_was_placed_as_of_the_head(tenant):
    await make_order_in(tenant.owner, "pending", quantity=1)
    await make_order_in(tenant.owner, "paid", quantity=2)
    body = await gql(tenant.client, QUERY, {"minutes": 3})
    assert "errors" not in body, body
    found = body["data"]["orderActivity"]
    assert found["position"] == await head_position()
    assert found["ordersToday"] == 2
    assert found["revenueTodayCents"] > 0
    counts = {c["status"]: c["count"] for c in found["statusCounts"]}
    assert counts == {"pending": 1, "paid": 1, "shipped": 0, "delivered": 0, "cancelled": 0}
    assert len(found["perMinute"]) == 3
    assert sum(b["orderCount"] for b in found["perMinute"]) == 2


async def test_bad_minutes_and_a_missing_scope_are_refused_with_codes(tenant):
    body = await gql(tenant.client, QUERY, {"minutes": 0})
    assert codes(body) == ["INVALID_ARGUMENT"], body
    orders_only = bearer(tenant.slug, "staff", ["orders:read"])
    body = await gql(tenant.client, QUERY, {"minutes": 5}, headers=orders_only)
    assert codes(body) == ["PERMISSION_DENIED"], body
