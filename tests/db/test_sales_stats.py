"""Sales statistics: per-bucket order counts and revenue, empty buckets, bad ranges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from db import orders
from db.errors import InvalidArgument, PermissionDenied
from db.models import Order
from db.stats import MAX_BUCKETS, sales_stats
from tests.factories import make_customer, make_order, make_product

DAY0 = datetime(2025, 3, 10, tzinfo=UTC)


async def place_at(principal, customer_id, product_id, quantity, when, *actions):
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


async def test_day_buckets_count_orders_and_paid_revenue(shop, other_tenant):
    p, c, prod = shop
    # day 0: pending 1 unit, paid 2 units, delivered 3 units, cancelled (paid) 4 units
    await place_at(p, c, prod, 1, DAY0 + timedelta(hours=1))
    await place_at(p, c, prod, 2, DAY0 + timedelta(hours=5), "pay")
    await place_at(p, c, prod, 3, DAY0 + timedelta(hours=23, minutes=59), "pay", "ship", "deliver")
    await place_at(p, c, prod, 4, DAY0 + timedelta(hours=12), "pay", "cancel")
    # day 1: nothing; day 2: one shipped order of 5 units at midnight exactly
    await place_at(p, c, prod, 5, DAY0 + timedelta(days=2), "pay", "ship")
    # outside the range on both sides
    await place_at(p, c, prod, 7, DAY0 - timedelta(seconds=1), "pay")
    await place_at(p, c, prod, 7, DAY0 + timedelta(days=3), "pay")
    # another organization's paid order inside the range
    o = other_tenant.owner
    oc, op = (await make_customer(o))["id"], (await make_product(o, price_cents=100))["id"]
    await place_at(o, oc, op, 9, DAY0 + timedelta(hours=2), "pay")

    buckets = await sales_stats(p, start=DAY0, end=DAY0 + timedelta(days=3))

    assert buckets == [
        {"start": DAY0, "order_count": 3, "revenue_cents": 500},
        {"start": DAY0 + timedelta(days=1), "order_count": 0, "revenue_cents": 0},
        {"start": DAY0 + timedelta(days=2), "order_count": 1, "revenue_cents": 500},
    ]


async def test_empty_range_is_all_zero_buckets(shop):
    p, _, _ = shop
    buckets = await sales_stats(p, start=DAY0, end=DAY0 + timedelta(days=5))
    assert [b["start"] for b in buckets] == [DAY0 + timedelta(days=i) for i in range(5)]
    assert {(b["order_count"], b["revenue_cents"]) for b in buckets} == {(0, 0)}


async def test_hour_buckets(shop):
    p, c, prod = shop
    await place_at(p, c, prod, 1, DAY0 + timedelta(hours=1, minutes=10), "pay")
    await place_at(p, c, prod, 2, DAY0 + timedelta(hours=1, minutes=50))
    await place_at(p, c, prod, 3, DAY0 + timedelta(hours=3), "pay", "ship")

    buckets = await sales_stats(p, start=DAY0, end=DAY0 + timedelta(hours=4), granularity="hour")

    assert [(b["start"].hour, b["order_count"], b["revenue_cents"]) for b in buckets] == [
        (0, 0, 0),
        (1, 2, 100),
        (2, 0, 0),
        (3, 1, 300),
    ]


async def test_range_start_is_inclusive_end_exclusive_and_floored(shop):
    p, c, prod = shop
    await place_at(p, c, prod, 1, DAY0 + timedelta(hours=10), "pay")
    await place_at(p, c, prod, 2, DAY0 + timedelta(hours=14), "pay")
    buckets = await sales_stats(p, start=DAY0 + timedelta(hours=12), end=DAY0 + timedelta(hours=14))
    assert buckets == [{"start": DAY0, "order_count": 0, "revenue_cents": 0}]
    buckets = await sales_stats(
        p, start=DAY0 + timedelta(hours=10), end=DAY0 + timedelta(hours=14, seconds=1)
    )
    assert buckets == [{"start": DAY0, "order_count": 2, "revenue_cents": 300}]


async def test_bad_ranges_are_invalid_arguments(shop):
    p, _, _ = shop
    naive = datetime(2025, 1, 1)
    cases = [
        (DAY0, DAY0),
        (DAY0, DAY0 - timedelta(days=1)),
        (naive, DAY0),
        (DAY0, naive + timedelta(days=2)),
    ]
    cases += [
        (datetime(1969, 12, 31, tzinfo=UTC), DAY0),
        (DAY0, datetime(9999, 12, 31, tzinfo=UTC)),
        (datetime(1, 1, 1, tzinfo=UTC), datetime(1, 1, 2, tzinfo=UTC)),
    ]
    for start, end in cases:
        with pytest.raises(InvalidArgument) as exc:
            await sales_stats(p, start=start, end=end)
        assert exc.value.code == "INVALID_ARGUMENT"
    with pytest.raises(InvalidArgument):
        await sales_stats(
            p, start=DAY0, end=DAY0 + timedelta(hours=MAX_BUCKETS + 1), granularity="hour"
        )
    assert (
        len(
            await sales_stats(
                p, start=DAY0, end=DAY0 + timedelta(hours=MAX_BUCKETS), granularity="hour"
            )
        )
        == MAX_BUCKETS
    )


async def test_offsets_are_normalised_to_utc(shop):
    p, c, prod = shop
    await place_at(p, c, prod, 1, DAY0 + timedelta(hours=1), "pay")
    plus2 = timezone(timedelta(hours=2))
    buckets = await sales_stats(
        p, start=DAY0.astimezone(plus2), end=(DAY0 + timedelta(days=1)).astimezone(plus2)
    )
    assert [(b["order_count"], b["revenue_cents"]) for b in buckets] == [(1, 100)]


async def test_viewer_may_read_stats_but_not_without_the_scope(tenant):
    assert await sales_stats(
        tenant.principal("viewer"), start=DAY0, end=DAY0 + timedelta(days=1)
    ) == [{"start": DAY0, "order_count": 0, "revenue_cents": 0}]
    with pytest.raises(PermissionDenied):
        await sales_stats(
            tenant.principal("viewer", scopes=frozenset({"orders:read"})),
            start=DAY0,
            end=DAY0 + timedelta(days=1),
        )
