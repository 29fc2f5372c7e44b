"""A list item is byte for byte the resource a get returns.

On PostgreSQL lists are encoded by the database (``ResourceSpec.json_rows``), gets
and masked lists by orjson: these tests pin the two to the same JSON, times
included (orjson leaves out a zero fraction of a second; the SQL must too).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from db import products
from db.models import Customer, Order, Product
from tests.factories import make_order_in, make_product

API = "/api/v1"
WHOLE = datetime(2024, 8, 24, 2, 40, 0, tzinfo=UTC)
FRACTION = datetime(2024, 8, 24, 2, 40, 0, 511048, tzinfo=UTC)
SMALL_FRACTION = datetime(2024, 8, 24, 2, 40, 0, 1, tzinfo=UTC)


async def _get(client: Any, path: str) -> Any:
    r = await client.get(path)
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def _assert_list_matches_gets(client: Any, collection: str, query: str = "") -> None:
    listed = await _get(client, f"{API}/{collection}?page_size=200{query}")
    assert listed
    for item in listed:
        got = await _get(client, f"{API}/{collection}/{item['id']}")
        assert set(got) - set(item) <= {"items"}  # the basic view leaves computed fields out
        assert item == {key: got[key] for key in item}, item
    # A full field mask takes the other encoder: the same JSON again.
    fields = ",".join(listed[0])
    assert listed == await _get(client, f"{API}/{collection}?page_size=200{query}&fields={fields}")


async def test_list_items_equal_gets_for_every_time_shape(tenant: Any) -> None:
    principal = tenant.owner
    rows = [await make_order_in(principal, status) for status in ("pending", "paid", "cancelled")]
    times = (WHOLE, FRACTION, SMALL_FRACTION)
    for row, when in zip(rows, times, strict=True):
        await Order.filter(id=row["id"]).update(created_at=when, updated_at=when)
        order = await Order.get(id=row["id"])
        await Customer.filter(id=order.customer_id).update(created_at=when)
    deleted = await make_product(principal, description="gone")
    await products.delete_product(principal, deleted["id"])
    await Product.filter(organization_id=tenant.id).update(updated_at=FRACTION)

    await _assert_list_matches_gets(tenant.client, "orders")
    await _assert_list_matches_gets(tenant.client, "customers")
    await _assert_list_matches_gets(tenant.client, "products", "&show_deleted=true")

    listed = await _get(tenant.client, f"{API}/orders?page_size=200&order_by=id")
    assert [o["created_at"] for o in listed] == [
        "2024-08-24T02:40:00Z",
        "2024-08-24T02:40:00.511048Z",
        "2024-08-24T02:40:00.000001Z",
    ]
    full = await _get(tenant.client, f"{API}/orders?page_size=200&view=full")
    for order in full:
        assert order == await _get(tenant.client, f"{API}/orders/{order['id']}")
        assert order["items"]
        assert order["items"][0]["quantity"] == 1


async def test_keyset_pages_over_equal_whole_second_times(tenant: Any) -> None:
    """Tokens built from the database's JSON resume exactly after the last row."""
    made = [await make_order_in(tenant.owner, "pending") for _ in range(7)]
    await Order.filter(id__in=[m["id"] for m in made]).update(created_at=WHOLE)
    seen: list[int] = []
    url = f"{API}/orders?page_size=3"
    while url:
        r = await tenant.client.get(url)
        assert r.status_code == 200, r.text
        seen += [o["id"] for o in r.json()["data"]]
        link = r.headers.get("link")
        url = link[1 : link.index(">")] if link else ""
    assert seen == sorted((m["id"] for m in made), reverse=True)
