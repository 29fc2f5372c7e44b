"""The live dashboard's numbers (``db.stats.order_activity``): counts as of a stream
position, read in one statement; a subscriber applies the events after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tortoise.transactions import in_transaction

from db import orders
from db.errors import InvalidArgument, PermissionDenied, Unavailable
from db.events import events_after, head_position
from db.models import Order
from db.stats import MAX_MINUTES, order_activity
from tests.factories import make_customer, make_order, make_product


async def place(principal, customer_id, product_id, quantity, when, *actions):
    row = await make_order(principal, customer_id, [(product_id, quantity)])
    for action in actions:
        row = await orders.transition_order(principal, row["id"], action)
    await Order.filter(id=row["id"]).update(created_at=when)
    return row


@pytest.fixture
async def shop(tenant):
    p = tenant.owner
    customer = await make_customer(p)
    product = await make_product(p, price_cents=100, stock=1000)
    return p, customer["id"], product["id"]


async def test_counts_today_statuses_and_minutes_as_of_the_head(shop, other_tenant):
    p, c, prod = shop
    # Noon today: every time below is today but yesterday's, whatever the clock says.
    now = datetime.now(UTC).replace(hour=12, minute=0, second=30, microsecond=0)
    midnight = now.replace(hour=0, minute=0, second=0)
    await place(p, c, prod, 1, now)  # pending, this minute
    await place(p, c, prod, 2, now - timedelta(minutes=2), "pay")
    await place(p, c, prod, 3, now - timedelta(minutes=2), "pay", "ship", "deliver")
    await place(p, c, prod, 4, now - timedelta(minutes=40), "pay", "cancel")  # off the chart
    await place(p, c, prod, 5, midnight - timedelta(seconds=1), "pay")  # yesterday
    o = other_tenant.owner
    oc, op = (await make_customer(o))["id"], (await make_product(o, price_cents=100))["id"]
    await place(o, oc, op, 9, now, "pay")  # another organization's

    found = await order_activity(p, minutes=5, now=now)

    assert found["position"] == await head_position()
    assert found["orders_today"] == 4
    paid_today = 200 + 300
    assert found["revenue_today_cents"] == paid_today
    assert found["status_counts"] == {
        "pending": 1,
        "paid": 2,
        "shipped": 0,
        "delivered": 1,
        "cancelled": 1,
    }
    first = now.replace(second=0) - timedelta(minutes=4)
    assert found["per_minute"] == [
        {"start": first + timedelta(minutes=m), "order_count": n}
        for m, n in enumerate([0, 0, 2, 0, 1])
    ]


async def test_the_events_after_its_position_are_the_orders_it_did_not_count(shop):
    p, c, prod = shop
    await make_order(p, c, [(prod, 1)])
    before = await order_activity(p)
    placed = [(await make_order(p, c, [(prod, 1)]))["id"] for _ in range(3)]
    after = await order_activity(p)
    assert after["orders_today"] == before["orders_today"] + 3
    assert after["status_counts"]["pending"] == before["status_counts"]["pending"] + 3
    later = await events_after(
        before["position"], organization_id=p.organization_id, resources=["order"]
    )
    created = [e["data"]["id"] for e in later if e["type"] == "order.created"]
    assert created == placed
    assert max(e["position"] for e in later) == after["position"]


async def test_it_waits_while_an_order_event_of_its_organization_is_unnumbered(shop):
    p, c, prod = shop

    # Read inside the placing transaction: the order is there, its event not numbered
    # yet (the relay numbers committed rows only). Counting it would count it twice
    # for a subscriber resuming after the position, so the read waits, then says so.
    async def place_and_read() -> None:
        async with in_transaction():
            await make_order(p, c, [(prod, 1)])
            await order_activity(p, wait=0.05)

    with pytest.raises(Unavailable):
        await place_and_read()
    await order_activity(p, wait=0.05)  # rolled back: nothing to wait for


@pytest.mark.parametrize("minutes", [0, MAX_MINUTES + 1, True])
async def test_bad_minutes_are_refused(shop, minutes):
    with pytest.raises(InvalidArgument):
        await order_activity(shop[0], minutes=minutes)


async def test_it_needs_stats_read(tenant):
    with pytest.raises(PermissionDenied):
        await order_activity(tenant.principal("staff", scopes=frozenset({"orders:read"})))
