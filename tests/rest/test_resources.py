"""Every REST v1 endpoint: status codes, envelopes, Location, field masks, custom methods."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from db.models import Order
from tests.factories import (
    assert_problem,
    post_customer,
    post_order,
    post_product,
    world,
)

API = "/api/v1"
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
CUSTOMER_FIELDS = {"id", "name", "email", "version", "created_at", "updated_at"}
PRODUCT_FIELDS = {
    "id",
    "sku",
    "name",
    "description",
    "price_cents",
    "stock",
    "supplier_id",
    "version",
    "created_at",
    "updated_at",
    "deleted_at",
}
ORDER_FIELDS = {
    "id",
    "customer_id",
    "status",
    "total_cents",
    "note",
    "version",
    "created_at",
    "updated_at",
    "items",
}
ITEM_FIELDS = {"id", "product_id", "quantity", "unit_price_cents"}


def assert_snake_case(value: Any) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            assert SNAKE.match(key), key
            assert_snake_case(inner)
    elif isinstance(value, list):
        for inner in value:
            assert_snake_case(inner)


def envelope(r: httpx.Response, status: int = 200, *, paginated: bool = False) -> Any:
    """Check the success envelope and return ``data``."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"data", "metadata"}
    meta = body["metadata"]
    assert set(meta) == (
        {"request_id", "timestamp", "pagination"} if paginated else {"request_id", "timestamp"}
    )
    assert meta["request_id"] == r.headers["x-request-id"]
    assert ISO_Z.match(meta["timestamp"]), meta["timestamp"]
    assert_snake_case(body)
    return body["data"]


def assert_times(row: dict[str, Any], *names: str) -> None:
    for name in names:
        assert ISO_Z.match(row[name]), (name, row[name])


# --- customers --------------------------------------------------------------------------


async def test_customer_crud(tenant):
    c = tenant.client
    r = await c.post(f"{API}/customers", json={"name": " Ada ", "email": "ada@example.com"})
    created = envelope(r, 201)
    assert set(created) == CUSTOMER_FIELDS
    assert created["name"] == "Ada"  # whitespace stripped
    assert created["version"] == 1
    assert_times(created, "created_at", "updated_at")
    url = f"{API}/customers/{created['id']}"
    assert r.headers["location"] == url
    assert r.headers["etag"] == '"v1"'

    assert envelope(await c.get(url)) == created

    patched = envelope(await c.patch(url, json={"name": "Ada L."}))
    assert (patched["name"], patched["email"], patched["version"]) == (
        "Ada L.",
        "ada@example.com",
        2,
    )

    r = await c.put(url, json={"name": "Grace", "email": "grace@example.com"})
    replaced = envelope(r)
    assert (replaced["name"], replaced["email"], replaced["version"]) == (
        "Grace",
        "grace@example.com",
        3,
    )
    assert r.headers["etag"] == '"v3"'

    listed = envelope(await c.get(f"{API}/customers"), paginated=True)
    assert listed == [replaced]

    r = await c.delete(url)
    assert r.status_code == 204
    assert r.content == b""
    assert_problem(await c.get(url), 404, "NOT_FOUND")
    assert_problem(await c.delete(url), 404, "NOT_FOUND")
    assert envelope(await c.get(f"{API}/customers"), paginated=True) == []


async def test_put_requires_every_field_and_patch_does_not(tenant):
    c = tenant.client
    customer = await post_customer(c)
    url = f"{API}/customers/{customer['id']}"
    body = assert_problem(await c.put(url, json={"name": "Only"}), 422, "VALIDATION_ERROR")
    assert [e["loc"] for e in body["errors"]] == [["body", "email"]]
    assert envelope(await c.patch(url, json={}))["name"] == customer["name"]


async def test_customer_email_conflict_is_409(tenant):
    c = tenant.client
    await post_customer(c, email="dup@example.com")
    other = await post_customer(c)
    r = await c.post(f"{API}/customers", json={"name": "X", "email": "dup@example.com"})
    assert "dup@example.com" in assert_problem(r, 409, "CONFLICT")["detail"]
    r = await c.patch(f"{API}/customers/{other['id']}", json={"email": "dup@example.com"})
    assert_problem(r, 409, "CONFLICT")


async def test_customer_with_orders_cannot_be_deleted(tenant):
    c = tenant.client
    w = await world(c)
    r = await c.delete(f"{API}/customers/{w['customer']['id']}")
    assert_problem(r, 409, "CONFLICT")
    assert envelope(await c.get(f"{API}/customers/{w['customer']['id']}"))["id"]


async def test_customer_orders(tenant):
    c = tenant.client
    ada = await post_customer(c)
    bob = await post_customer(c)
    product = await post_product(c)
    first = await post_order(c, ada["id"], [(product["id"], 1)])
    second = await post_order(c, ada["id"], [(product["id"], 2)])
    await post_order(c, bob["id"], [(product["id"], 1)])

    url = f"{API}/customers/{ada['id']}/orders"
    data = envelope(await c.get(url), paginated=True)
    assert [o["id"] for o in data] == [second["id"], first["id"]]
    # Lists default to the basic view (AIP-157): everything but the items.
    assert data[1] == {k: v for k, v in first.items() if k != "items"}
    full = envelope(await c.get(url, params={"view": "full"}), paginated=True)
    assert full[1] == first
    assert_problem(await c.get(url, params={"view": "everything"}), 400, "INVALID_ARGUMENT")

    data = envelope(await c.get(url, params={"filter": "total_cents > 1000"}), paginated=True)
    assert [o["id"] for o in data] == [second["id"]]

    data = envelope(await c.get(url, params={"fields": "id,status"}), paginated=True)
    assert data == [
        {"id": second["id"], "status": "pending"},
        {"id": first["id"], "status": "pending"},
    ]
    empty = await post_customer(c)
    assert envelope(await c.get(f"{API}/customers/{empty['id']}/orders"), paginated=True) == []
    assert_problem(await c.get(f"{API}/customers/999999/orders"), 404, "NOT_FOUND")
    assert_problem(await c.get(f"{API}/customers/abc/orders"), 400, "INVALID_ARGUMENT")


# --- products ---------------------------------------------------------------------------


async def test_product_crud_and_soft_delete(tenant):
    c = tenant.client
    r = await c.post(
        f"{API}/products",
        json={"sku": "MUG-1", "name": "Mug", "price_cents": 1250, "stock": 4},
    )
    product = envelope(r, 201)
    assert set(product) == PRODUCT_FIELDS
    assert product["description"] == ""
    assert product["deleted_at"] is None
    url = f"{API}/products/{product['id']}"
    assert r.headers["location"] == url

    assert envelope(await c.patch(url, json={"stock": 9}))["stock"] == 9
    replaced = envelope(
        await c.put(url, json={"sku": "MUG-2", "name": "Big mug", "price_cents": 1500})
    )
    assert (replaced["sku"], replaced["stock"], replaced["version"]) == ("MUG-2", 0, 3)

    r = await c.delete(url)
    assert r.status_code == 204
    deleted = envelope(await c.get(url))
    assert ISO_Z.match(deleted["deleted_at"])
    assert envelope(await c.get(f"{API}/products"), paginated=True) == []
    listed = envelope(await c.get(f"{API}/products?show_deleted=true"), paginated=True)
    assert [p["id"] for p in listed] == [product["id"]]

    assert_problem(await c.patch(url, json={"name": "x"}), 409, "CONFLICT")
    assert (await c.delete(url)).status_code == 204  # deleting again is a no-op

    r = await c.post(f"{url}:undelete")
    restored = envelope(r)
    assert restored["deleted_at"] is None
    assert r.headers["etag"] == f'"v{restored["version"]}"'
    assert_problem(await c.post(f"{url}:undelete"), 409, "CONFLICT")
    assert [p["id"] for p in envelope(await c.get(f"{API}/products"), paginated=True)] == [
        product["id"]
    ]
    assert_problem(await c.post(f"{API}/products/999999:undelete"), 404, "NOT_FOUND")


async def test_duplicate_sku_is_409(tenant, other_tenant):
    await post_product(tenant.client, sku="SAME-1")
    r = await tenant.client.post(
        f"{API}/products", json={"sku": "SAME-1", "name": "x", "price_cents": 1}
    )
    assert_problem(r, 409, "CONFLICT")
    assert (await post_product(other_tenant.client, sku="SAME-1"))["sku"] == "SAME-1"


# --- orders -----------------------------------------------------------------------------


async def test_order_crud_and_actions(tenant):
    c = tenant.client
    customer = await post_customer(c)
    mug = await post_product(c, price_cents=300, stock=5)
    pen = await post_product(c, price_cents=50, stock=5)
    body = {
        "customer_id": customer["id"],
        "items": [
            {"product_id": mug["id"], "quantity": 2},
            {"product_id": pen["id"], "quantity": 1},
        ],
        "note": "ring twice",
    }
    r = await c.post(f"{API}/orders", json=body)
    order = envelope(r, 201)
    assert set(order) == ORDER_FIELDS
    assert all(set(item) == ITEM_FIELDS for item in order["items"])
    assert (order["status"], order["total_cents"], order["note"]) == ("pending", 650, "ring twice")
    url = f"{API}/orders/{order['id']}"
    assert r.headers["location"] == url
    assert envelope(await c.get(url)) == order
    assert envelope(await c.get(f"{API}/products/{mug['id']}"))["stock"] == 3

    assert envelope(await c.patch(url, json={"note": "knock"}))["note"] == "knock"
    assert envelope(await c.put(url, json={"note": "call"}))["note"] == "call"
    assert_problem(await c.put(url, json={}), 422, "VALIDATION_ERROR")
    assert_problem(await c.patch(url, json={"status": "paid"}), 422, "VALIDATION_ERROR")

    versions = []
    for action, status in (("pay", "paid"), ("ship", "shipped"), ("deliver", "delivered")):
        r = await c.post(f"{url}:{action}")
        moved = envelope(r)
        assert moved["status"] == status
        assert r.headers["etag"] == f'"v{moved["version"]}"'
        versions.append(moved["version"])
    assert versions == sorted(versions)

    body = assert_problem(await c.post(f"{url}:cancel"), 409, "INVALID_TRANSITION")
    assert "delivered" in body["detail"]
    assert_problem(await c.post(f"{url}:pay"), 409, "INVALID_TRANSITION")
    assert_problem(await c.delete(url), 409, "CONFLICT")
    assert_problem(await c.post(f"{API}/orders/999999:pay"), 404, "NOT_FOUND")
    assert_problem(await c.post(f"{API}/orders/abc:pay"), 400, "INVALID_ARGUMENT")
    assert_problem(await c.post(f"{url}:refund"), 404, "NOT_FOUND")
    assert_problem(await c.get(f"{url}:pay"), 405, "METHOD_NOT_ALLOWED")


async def test_cancel_returns_stock_and_cancelled_orders_can_be_deleted(tenant):
    c = tenant.client
    w = await world(c, stock=3)
    url = f"{API}/orders/{w['order']['id']}"
    product_url = f"{API}/products/{w['product']['id']}"
    assert envelope(await c.get(product_url))["stock"] == 2
    assert envelope(await c.post(f"{url}:pay"))["status"] == "paid"
    assert envelope(await c.post(f"{url}:cancel"))["status"] == "cancelled"
    assert envelope(await c.get(product_url))["stock"] == 3
    r = await c.delete(url)
    assert r.status_code == 204
    assert_problem(await c.get(url), 404, "NOT_FOUND")


async def test_order_rule_errors(tenant):
    c = tenant.client
    customer = await post_customer(c)
    product = await post_product(c, stock=1)
    r = await c.post(
        f"{API}/orders",
        json={
            "customer_id": customer["id"],
            "items": [{"product_id": product["id"], "quantity": 2}],
        },
    )
    assert_problem(r, 409, "INSUFFICIENT_STOCK")
    r = await c.post(
        f"{API}/orders",
        json={"customer_id": 999999, "items": [{"product_id": 888888, "quantity": 1}]},
    )
    body = assert_problem(r, 422, "VALIDATION_ERROR")
    assert [e["loc"] for e in body["errors"]] == [["body", "customer_id"]]
    r = await c.post(
        f"{API}/orders",
        json={"customer_id": customer["id"], "items": [{"product_id": 888888, "quantity": 1}]},
    )
    body = assert_problem(r, 422, "VALIDATION_ERROR")
    assert [e["loc"] for e in body["errors"]] == [["body", "items", 0, "product_id"]]
    r = await c.post(f"{API}/orders", json={"customer_id": customer["id"], "items": []})
    body = assert_problem(r, 422, "VALIDATION_ERROR")
    assert [e["loc"] for e in body["errors"]] == [["body", "items"]]


async def test_order_list_filter_and_mask(tenant):
    c = tenant.client
    w = await world(c)
    second = await post_order(c, w["customer"]["id"], [(w["product"]["id"], 3)])
    await c.post(f"{API}/orders/{second['id']}:pay")

    data = envelope(await c.get(f"{API}/orders"), paginated=True)
    assert [o["id"] for o in data] == [second["id"], w["order"]["id"]]
    data = envelope(
        await c.get(f"{API}/orders", params={"filter": "status = paid"}), paginated=True
    )
    assert [o["id"] for o in data] == [second["id"]]
    data = envelope(
        await c.get(f"{API}/orders", params={"fields": "id,items", "order_by": "id"}),
        paginated=True,
    )
    assert [set(o) for o in data] == [{"id", "items"}] * 2
    assert data[1]["items"][0]["quantity"] == 3


# --- batchGet ---------------------------------------------------------------------------


async def test_batch_get(tenant):
    c = tenant.client
    w = await world(c)
    a = w["order"]
    b = await post_order(c, w["customer"]["id"], [(w["product"]["id"], 2)])

    data = envelope(await c.get(f"{API}/orders:batchGet", params={"ids": f"{b['id']},{a['id']}"}))
    assert data == [b, a]
    data = envelope(await c.get(f"{API}/orders:batchGet?ids={a['id']}&ids={b['id']}"))
    assert [o["id"] for o in data] == [a["id"], b["id"]]
    data = envelope(
        await c.get(f"{API}/orders:batchGet", params={"ids": f"{a['id']}", "fields": "id,status"})
    )
    assert data == [{"id": a["id"], "status": "pending"}]

    body = assert_problem(
        await c.get(f"{API}/orders:batchGet", params={"ids": f"{a['id']},999999"}),
        404,
        "NOT_FOUND",
    )
    assert "999999" in body["detail"]
    ids = ",".join(str(a["id"]) for _ in range(101))
    assert_problem(
        await c.get(f"{API}/orders:batchGet", params={"ids": ids}), 400, "INVALID_ARGUMENT"
    )
    ids = ",".join(str(a["id"]) for _ in range(100))
    assert len(envelope(await c.get(f"{API}/orders:batchGet", params={"ids": ids}))) == 100
    assert_problem(await c.get(f"{API}/orders:batchGet"), 400, "INVALID_ARGUMENT")
    assert_problem(await c.get(f"{API}/orders:batchGet?ids=1,x"), 400, "INVALID_ARGUMENT")
    assert_problem(
        await c.get(f"{API}/orders:batchGet", params={"ids": a["id"], "fields": "nope"}),
        400,
        "INVALID_ARGUMENT",
    )


# --- field masks ------------------------------------------------------------------------


async def test_field_mask_on_get_and_list(tenant):
    c = tenant.client
    customer = await post_customer(c, name="Masked")
    url = f"{API}/customers/{customer['id']}"

    r = await c.get(url, params={"fields": "id,name"})
    assert envelope(r) == {"id": customer["id"], "name": "Masked"}
    assert r.headers["etag"] != '"v1"'
    assert r.headers["etag"].startswith('"v1-')
    assert (await c.get(url, params={"fields": " name , id "})).headers["etag"] == r.headers["etag"]
    data = envelope(await c.get(f"{API}/customers", params={"fields": "email"}), paginated=True)
    assert data == [{"email": customer["email"]}]
    assert envelope(await c.get(url, params={"fields": ""})) == customer

    for path in (url, f"{API}/customers"):
        body = assert_problem(
            await c.get(path, params={"fields": "id,password"}), 400, "INVALID_ARGUMENT"
        )
        assert "password" in body["detail"]
        assert body["errors"][0]["loc"] == ["query", "fields"]


# --- stats ------------------------------------------------------------------------------


async def test_sales_stats_endpoint(tenant):
    c = tenant.client
    w = await world(c)
    day = datetime(2025, 6, 1, tzinfo=UTC)
    paid = await post_order(c, w["customer"]["id"], [(w["product"]["id"], 2)])
    await c.post(f"{API}/orders/{paid['id']}:pay")
    await Order.filter(id=w["order"]["id"]).update(created_at=day + timedelta(hours=3))
    await Order.filter(id=paid["id"]).update(created_at=day + timedelta(days=1, hours=1))

    r = await c.get(
        f"{API}/stats/sales",
        params={"start": "2025-06-01T00:00:00Z", "end": "2025-06-03T00:00:00Z"},
    )
    assert envelope(r) == [
        {"start": "2025-06-01T00:00:00Z", "order_count": 1, "revenue_cents": 0},
        {"start": "2025-06-02T00:00:00Z", "order_count": 1, "revenue_cents": 2000},
    ]
    assert r.headers["etag"].startswith('"')

    r = await c.get(
        f"{API}/stats/sales",
        params={
            "start": "2025-06-02T02:00:00+02:00",
            "end": "2025-06-02T03:00:00+00:00",
            "granularity": "hour",
        },
    )
    assert [(b["start"], b["order_count"]) for b in envelope(r)] == [
        ("2025-06-02T00:00:00Z", 0),
        ("2025-06-02T01:00:00Z", 1),
        ("2025-06-02T02:00:00Z", 0),
    ]

    data = envelope(await c.get(f"{API}/stats/sales"))
    assert len(data) in (30, 31)  # default: the last 30 days up to now
    assert sum(b["order_count"] for b in data) == 0


@pytest.mark.parametrize(
    "params",
    [
        {"granularity": "week"},
        {"start": "yesterday"},
        {"start": "2025-01-01T00:00:00"},  # no zone
        {"start": "2025-01-02T00:00:00Z", "end": "2025-01-01T00:00:00Z"},
        {"start": "2025-01-01T00:00:00Z", "end": "2025-01-01T00:00:00Z"},
        {"start": "2020-01-01T00:00:00Z", "end": "2025-01-01T00:00:00Z"},  # > 1000 days
        {"start": "2025-01-01T00:00:00Z", "end": "2025-03-01T00:00:00Z", "granularity": "hour"},
    ],
)
async def test_sales_stats_bad_arguments(tenant, params):
    assert_problem(
        await tenant.client.get(f"{API}/stats/sales", params=params), 400, "INVALID_ARGUMENT"
    )
