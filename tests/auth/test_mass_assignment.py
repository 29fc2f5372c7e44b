"""Mass assignment: fields the server owns cannot be written through request bodies.

For customers, products and orders, every create, full replace and partial update
that also sends an owner, organization, id, timestamp, version or status field is
refused with 422 ``VALIDATION_ERROR`` naming the field, and the stored rows do not
change (not even the fields that were legitimately sent alongside).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import assert_problem, db_state, world

SERVER_OWNED = {
    "id": 999_999,
    "organization_id": 1,
    "organization": 1,
    "owner": "someone",
    "created_at": "2000-01-01T00:00:00Z",
    "updated_at": "2000-01-01T00:00:00Z",
    "version": 42,
    "status": "delivered",
    "total_cents": 1,
    "deleted_at": None,
}

VALID = {
    "customers": lambda w: {"name": "Renamed", "email": "renamed@example.com"},
    "products": lambda w: {"sku": "MASS-1", "name": "Renamed", "price_cents": 1, "stock": 1},
    "orders": lambda w: {"note": "n"},
}
NEW_ORDER = lambda w: {  # noqa: E731
    "customer_id": w["customer"]["id"],
    "items": [{"product_id": w["product"]["id"], "quantity": 1}],
}


@pytest.mark.parametrize("resource", ["customers", "products", "orders"])
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
@pytest.mark.parametrize("field", sorted(SERVER_OWNED))
async def test_server_owned_fields_cannot_be_written(tenant, resource, method, field):
    w = await world(tenant.client)
    target = {"customers": w["customer"], "products": w["product"], "orders": w["order"]}[resource]
    body: dict[str, Any] = (
        NEW_ORDER(w) if (resource, method) == ("orders", "POST") else VALID[resource](w)
    )
    body[field] = SERVER_OWNED[field]
    path = f"/api/v1/{resource}" if method == "POST" else f"/api/v1/{resource}/{target['id']}"
    before = await db_state(tenant.id)
    r = await tenant.client.request(method, path, json=body)
    problem = assert_problem(r, 422, "VALIDATION_ERROR")
    assert any(field in map(str, error["loc"]) for error in problem["errors"]), problem
    assert await db_state(tenant.id) == before
