"""The demo's orders cover the 90 days before the clock it is seeded with, so the
default sales chart (the 30 days up to now) is full whenever the demo is made."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from db.models import Customer, Order, Organization, Product
from db.principal import Principal
from db.seed import DEMO_DAYS, DEMO_ORDERS, seed_dataset
from db.stats import DEFAULT_SPAN, sales_stats
from tests.conftest import RunningServer
from tests.factories import unique

# A clock nowhere near the real one: the spread follows the clock it is given.
NOW = datetime(2031, 6, 15, 9, 30, tzinfo=UTC)


async def _seeded(now: datetime) -> int:
    slug = unique("demo-").lower()
    await seed_dataset(
        slug=slug, name="Demo spread", customers=20, products=30, orders=DEMO_ORDERS, until=now
    )
    return int((await Organization.get(slug=slug)).id)


async def test_demo_orders_cover_every_day_of_the_90_before_now(server: RunningServer) -> None:
    org = await _seeded(NOW)
    times = await Order.filter(organization_id=org).values_list("created_at", flat=True)
    assert len(times) == DEMO_ORDERS
    assert min(times) >= NOW - timedelta(days=DEMO_DAYS)
    assert max(times) < NOW
    days = {t.astimezone(UTC).date() for t in times}
    first = (NOW - timedelta(days=DEMO_DAYS)).date()
    wanted = {first + timedelta(days=i) for i in range(1, DEMO_DAYS)}  # whole days
    assert wanted <= days, sorted(wanted - days)
    # Customers and products exist before the first order they appear in.
    for model in (Customer, Product):
        made = await model.filter(organization_id=org).values_list("created_at", flat=True)
        assert max(made) < min(times), model.__name__


async def test_the_default_chart_up_to_now_is_full(server: RunningServer) -> None:
    org = await _seeded(NOW)
    viewer = Principal("demo-test", org, frozenset({"stats:read"}), frozenset({"viewer"}))
    # What GET /stats/sales answers by default, with NOW as its clock.
    buckets = await sales_stats(viewer, start=NOW - DEFAULT_SPAN, end=NOW)
    assert len(buckets) == 31  # a partial day at each end
    assert all(b["order_count"] > 0 for b in buckets), buckets
    paid = [b for b in buckets if b["revenue_cents"] > 0]
    assert len(paid) >= 25, buckets


async def test_without_a_clock_the_data_set_is_the_fixed_benchmark_one(
    server: RunningServer,
) -> None:
    slug = unique("bench-").lower()
    await seed_dataset(slug=slug, name="Bench", customers=3, products=3, orders=5)
    org = await Organization.get(slug=slug)
    times = await Order.filter(organization_id=org.id).values_list("created_at", flat=True)
    assert {t.astimezone(UTC).date() for t in times} == {date(2024, 1, 1)}
