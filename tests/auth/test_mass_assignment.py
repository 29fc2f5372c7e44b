"""Mass assignment: fields the server owns cannot be written through a request.

For customers, products and orders, a create (POST), replace (PUT) or partial update
(PATCH) whose body also carries an id, organization, owner, timestamp, version,
status or other server-owned field is either refused with a 4xx problem naming the
field, or has that field ignored. Either way the stored rows never take the value:
checked through the API (GET) and in the database, for the tenant and for the
organization the body tried to move the row to. Today every such body is refused
with 422 (input models forbid unknown fields), and the fields sent alongside are not
applied either.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from db.models import Customer, Order, OrderItem, Product
from tests.conftest import Tenant
from tests.factories import assert_problem, db_state, post_customer, post_product, unique, world

MODELS = {"customers": Customer, "products": Product, "orders": Order}
OLD = "2000-01-01T00:00:00Z"


def server_owned(other_org: int) -> dict[str, Any]:
    """Field -> a value an attacker would like stored (another organization's id...)."""
    return {
        "id": 999_999,
        "organization_id": other_org,
        "organization": other_org,
        "organizationId": other_org,
        "owner": "mallory",
        "owner_id": 1,
        "created_by": "mallory",
        "created_at": OLD,
        "updated_at": OLD,
        "deleted_at": OLD,
        "version": 42,
        "status": "delivered",
        "total_cents": 1,
    }


FIELDS = sorted(server_owned(0))


def valid_body(resource: str, method: str, w: dict[str, Any]) -> dict[str, Any]:
    if resource == "customers":
        return {"name": unique("Mass "), "email": f"{unique('mass')}@example.com"}
    if resource == "products":
        body = {"sku": unique("MASS-"), "name": "Mass", "price_cents": 1, "stock": 1}
        return {"stock": 3} if method == "PATCH" else body
    if method == "POST":
        return {
            "customer_id": w["customer"]["id"],
            "items": [{"product_id": w["product"]["id"], "quantity": 1}],
            "note": "mass",
        }
    return {"note": "mass"}


async def snapshot(t: Tenant, other: Tenant) -> tuple[Any, Any]:
    return await db_state(t.id), await db_state(other.id)


async def check_refused_or_ignored(
    r: httpx.Response,
    field: str | tuple[Any, ...],
    value: Any,
    tenant: Tenant,
    other_tenant: Tenant,
    before: tuple[Any, Any],
    resource: str,
) -> None:
    """A 422 naming ``field`` and nothing changed, or success without ``value`` stored."""
    if r.status_code >= 400:
        problem = assert_problem(r, 422, "VALIDATION_ERROR")
        loc = (field,) if isinstance(field, str) else field
        locs = [tuple(e["loc"]) for e in problem["errors"]]
        assert any(found[-len(loc) :] == loc for found in locs), (loc, locs)
        assert await snapshot(tenant, other_tenant) == before
        return
    assert r.status_code in (200, 201), r.text
    assert isinstance(field, str)
    row = r.json()["data"]
    got = (await tenant.client.get(f"/api/v1/{resource}/{row['id']}")).json()["data"]
    stored = (await MODELS[resource].filter(id=row["id"]).values())[0]
    assert stored["organization_id"] == tenant.id
    for view in (row, got, stored):
        if field in view:
            assert view[field] != value, (field, view)
    assert (await db_state(other_tenant.id)) == before[1]


@pytest.mark.parametrize("resource", ["customers", "products", "orders"])
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
@pytest.mark.parametrize("field", FIELDS)
async def test_server_owned_fields_are_never_stored(
    tenant: Tenant, other_tenant: Tenant, resource: str, method: str, field: str
) -> None:
    w = await world(tenant.client)
    target = {"customers": w["customer"], "products": w["product"], "orders": w["order"]}
    value = server_owned(other_tenant.id)[field]
    body = {**valid_body(resource, method, w), field: value}
    path = f"/api/v1/{resource}"
    if method != "POST":
        path += f"/{target[resource]['id']}"
    before = await snapshot(tenant, other_tenant)
    shown = (await tenant.client.get(path)).json()["data"] if method != "POST" else None
    r = await tenant.client.request(method, path, json=body)
    await check_refused_or_ignored(r, field, value, tenant, other_tenant, before, resource)
    if shown is not None and r.status_code >= 400:  # the API shows the same row
        again = (await tenant.client.get(path)).json()["data"]
        assert again == shown


@pytest.mark.parametrize(
    "extra",
    [{"id": 999_999}, {"order_id": 1}, {"unit_price_cents": 1}, {"organization_id": 1}],
    ids=lambda e: next(iter(e)),
)
async def test_order_items_take_no_server_owned_fields(
    tenant: Tenant, other_tenant: Tenant, extra: dict[str, Any]
) -> None:
    customer = await post_customer(tenant.client)
    product = await post_product(tenant.client, price_cents=5_000)
    body = {
        "customer_id": customer["id"],
        "items": [{"product_id": product["id"], "quantity": 2, **extra}],
    }
    before = await snapshot(tenant, other_tenant)
    r = await tenant.client.post("/api/v1/orders", json=body)
    field = next(iter(extra))
    if r.status_code >= 400:
        await check_refused_or_ignored(
            r, ("items", 0, field), extra[field], tenant, other_tenant, before, "orders"
        )
        return
    assert r.status_code == 201, r.text
    items = await OrderItem.filter(order_id=r.json()["data"]["id"]).values()
    assert [(i["product_id"], i["quantity"], i["unit_price_cents"]) for i in items] == [
        (product["id"], 2, 5_000)
    ]


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize("field", ["customer_id", "items"])
async def test_a_placed_order_keeps_its_customer_and_items(
    tenant: Tenant, other_tenant: Tenant, method: str, field: str
) -> None:
    w = await world(tenant.client)
    other = await post_customer(tenant.client)
    value: Any = (
        other["id"]
        if field == "customer_id"
        else [{"product_id": w["product"]["id"], "quantity": 9}]
    )
    before = await snapshot(tenant, other_tenant)
    path = f"/api/v1/orders/{w['order']['id']}"
    r = await tenant.client.request(method, path, json={"note": "n", field: value})
    await check_refused_or_ignored(r, field, value, tenant, other_tenant, before, "orders")
    order = await Order.get(id=w["order"]["id"])
    assert order.customer_id == w["customer"]["id"]  # type: ignore[attr-defined]
    assert await OrderItem.filter(order_id=order.id).count() == 1


@pytest.mark.parametrize("resource", ["customers", "products"])
async def test_the_query_string_does_not_choose_the_organization(
    tenant: Tenant, other_tenant: Tenant, resource: str
) -> None:
    body = valid_body(resource, "POST", {})
    params = {"organization_id": other_tenant.id, "organization": other_tenant.slug}
    before_other = await db_state(other_tenant.id)
    r = await tenant.client.post(f"/api/v1/{resource}", json=body, params=params)
    if r.status_code >= 400:
        assert r.status_code in (400, 422), r.text
    else:
        assert r.status_code == 201, r.text
        stored = (await MODELS[resource].filter(id=r.json()["data"]["id"]).values())[0]
        assert stored["organization_id"] == tenant.id
    assert await db_state(other_tenant.id) == before_other
