"""Every REST operation, walked with four credentials.

For each route of the running app (taken from its router, not from a list kept by
hand), the table below names the scope it needs and how to call it. Each operation
is called with:

- no credentials: 401 with ``WWW-Authenticate``;
- a token of the same organization holding every scope but the needed one: 403,
  and nothing changed;
- a token of another organization holding every scope, against the first
  organization's row: 404 (never 403, so existence does not leak), and nothing
  changed; lists and reports show none of the first organization's rows;
- an API key holding only the needed scope: success (for ``api-keys:admin``, which
  no API key can hold, a token with only that scope).

A route missing from the table fails ``test_every_route_is_in_the_matrix``: no
route ships without a decision about who may call it.
"""

# ruff: noqa: E501  (the matrix reads best as one row per operation)
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from db import api_keys, products
from db.principal import ALL_SCOPES
from tests.conftest import Tenant
from tests.factories import (
    TOKENS,
    assert_problem,
    db_state,
    make_customer,
    make_order_in,
    make_product,
    unique,
)

Request = tuple[str, dict[str, Any] | None]  # path (with query), JSON body


@dataclass(frozen=True)
class Op:
    scope: str
    build: Callable[[Tenant], Awaitable[Request]]
    ok: int = 200
    # Targets a row of the tenant (or references one): another organization gets 404.
    owned: bool = True
    # What another organization gets instead, when the row is referenced from the body
    # (the same answer as for an id that does not exist).
    foreign: tuple[int, str] = (404, "NOT_FOUND")


def const(path: str, body: Any = None) -> Callable[[Tenant], Awaitable[Request]]:
    """A fixed path; ``body`` is a dict, or a function making a fresh one per call."""

    async def build(t: Tenant) -> Request:
        return path, body() if callable(body) else body

    return build


async def _customer(t: Tenant) -> int:
    return int((await make_customer(t.owner))["id"])


async def _product(t: Tenant) -> int:
    return int((await make_product(t.owner))["id"])


async def _order(t: Tenant, status: str = "pending") -> int:
    return int((await make_order_in(t.owner, status))["id"])


def customer_body() -> dict[str, Any]:
    return {"name": unique("Customer "), "email": f"{unique('c')}@example.com"}


def product_body() -> dict[str, Any]:
    return {"sku": unique("SKU-M"), "name": "Matrix", "price_cents": 500, "stock": 5}


async def _deleted_product(t: Tenant) -> Request:
    pid = await _product(t)
    await products.delete_product(t.owner, pid)
    return f"/api/v1/products/{pid}:undelete", None


async def _new_order(t: Tenant) -> Request:
    body = {
        "customer_id": await _customer(t),
        "items": [{"product_id": await _product(t), "quantity": 1}],
    }
    return "/api/v1/orders", body


def _order_op(action: str, status: str) -> Callable[[Tenant], Awaitable[Request]]:
    async def build(t: Tenant) -> Request:
        return f"/api/v1/orders/{await _order(t, status)}:{action}", None

    return build


async def _api_key(t: Tenant) -> int:
    row, _ = await api_keys.create_api_key(
        t.owner, api_keys.ApiKeyInput(name=unique("key "), scopes=["products:read"])
    )
    return int(row["id"])


async def _stats(t: Tenant) -> Request:
    await _order(t, "paid")
    end = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT00:00:00Z")
    return f"/api/v1/stats/sales?end={end}", None


async def _batch(t: Tenant) -> Request:
    return f"/api/v1/orders:batchGet?ids={await _order(t)},{await _order(t)}", None


async def _cancelled(t: Tenant) -> Request:
    return f"/api/v1/orders/{await _order(t, 'cancelled')}", None


def at(prefix: str, make: Callable[[Tenant], Awaitable[int]], suffix: str = "", body: Any = None):  # type: ignore[no-untyped-def]
    async def build(t: Tenant) -> Request:
        return f"{prefix}/{await make(t)}{suffix}", body() if callable(body) else body

    return build


MATRIX: dict[tuple[str, str], Op] = {
    ("customers_list", "GET"): Op("customers:read", const("/api/v1/customers"), owned=False),
    ("customers_create", "POST"): Op("customers:write", const("/api/v1/customers", customer_body), 201, owned=False),
    ("customers_get", "GET"): Op("customers:read", at("/api/v1/customers", _customer)),
    ("customers_update", "PATCH"): Op("customers:write", at("/api/v1/customers", _customer, body={"name": "Renamed"})),
    ("customers_update", "PUT"): Op("customers:write", at("/api/v1/customers", _customer, body=customer_body)),
    ("customers_delete", "DELETE"): Op("customers:write", at("/api/v1/customers", _customer), 204),
    ("customers_orders", "GET"): Op("orders:read", at("/api/v1/customers", _customer, "/orders")),
    ("products_list", "GET"): Op("products:read", const("/api/v1/products"), owned=False),
    ("products_create", "POST"): Op("products:write", const("/api/v1/products", product_body), 201, owned=False),
    ("products_get", "GET"): Op("products:read", at("/api/v1/products", _product)),
    ("products_update", "PATCH"): Op("products:write", at("/api/v1/products", _product, body={"stock": 7})),
    ("products_update", "PUT"): Op("products:write", at("/api/v1/products", _product, body=product_body)),
    ("products_delete", "DELETE"): Op("products:write", at("/api/v1/products", _product), 204),
    ("products_undelete", "POST"): Op("products:write", _deleted_product),
    ("orders_list", "GET"): Op("orders:read", const("/api/v1/orders"), owned=False),
    ("orders_create", "POST"): Op("orders:write", _new_order, 201, foreign=(422, "VALIDATION_ERROR")),
    ("orders_get", "GET"): Op("orders:read", at("/api/v1/orders", _order)),
    ("orders_batch_get", "GET"): Op("orders:read", _batch),
    ("orders_update", "PATCH"): Op("orders:write", at("/api/v1/orders", _order, body={"note": "n"})),
    ("orders_update", "PUT"): Op("orders:write", at("/api/v1/orders", _order, body={"note": "n"})),
    ("orders_delete", "DELETE"): Op("orders:write", _cancelled, 204),
    ("orders_pay", "POST"): Op("orders:write", _order_op("pay", "pending")),
    ("orders_ship", "POST"): Op("orders:write", _order_op("ship", "paid")),
    ("orders_deliver", "POST"): Op("orders:write", _order_op("deliver", "shipped")),
    ("orders_cancel", "POST"): Op("orders:write", _order_op("cancel", "pending")),
    ("stats_sales", "GET"): Op("stats:read", _stats, owned=False),
    ("api_keys_list", "GET"): Op("api-keys:admin", const("/api/v1/api-keys"), owned=False),
    ("api_keys_create", "POST"): Op("api-keys:admin", const("/api/v1/api-keys", {"name": "k", "scopes": ["orders:read"]}), 201, owned=False),
    ("api_keys_get", "GET"): Op("api-keys:admin", at("/api/v1/api-keys", _api_key)),
    ("api_keys_revoke", "DELETE"): Op("api-keys:admin", at("/api/v1/api-keys", _api_key), 204),
}  # fmt: skip

# Reachable without credentials, on purpose.
PUBLIC = {
    "healthz", "readyz", "openapi", "docs_ui", "docs_ui_init", "vendor", "jwks",
    "oauth_metadata", "oauth_token", "oauth_authorize", "oauth_revoke", "oauth_introspect",
}  # fmt: skip


# Doors with their own per-operation checks through the same db/ functions
# (tests/graphql walks them).
OTHER_DOORS = {"graphql"}


def route_operations(app: Any) -> set[tuple[str, str]]:
    ops = set()
    for route in app.router.routes:
        name = route.name.rsplit(".", 1)[-1]
        for method in route.methods:
            if method not in ("HEAD", "OPTIONS"):  # HEAD runs the GET handler
                ops.add((name, method))
    return ops


def test_every_route_is_in_the_matrix(server):
    ops = route_operations(server.app)
    missing = {op for op in ops if op not in MATRIX and op[0] not in PUBLIC | OTHER_DOORS}
    assert not missing, f"routes without an authorization decision: {sorted(missing)}"
    stale = set(MATRIX) - ops
    assert not stale, f"matrix rows for routes that no longer exist: {sorted(stale)}"


async def call(server: Any, method: str, req: Request, headers: dict[str, str]) -> httpx.Response:
    path, body = req
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        return await http.request(method, path, json=body, headers=headers)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def key_with(t: Tenant, scope: str) -> dict[str, str]:
    if scope == "api-keys:admin":  # no API key can manage API keys; a new key's scopes
        # must be the creator's own, hence orders:read beside the admin scope
        return bearer(TOKENS.mint(t.id, "admin", [scope, "orders:read"]))
    _, key = await api_keys.create_api_key(
        t.owner, api_keys.ApiKeyInput(name=unique("matrix "), scopes=[scope])
    )
    return {"X-API-Key": key}


CASES = sorted(MATRIX, key=lambda op: (op[0], op[1]))


@pytest.mark.parametrize(("name", "method"), CASES, ids=[f"{m} {n}" for n, m in CASES])
async def test_operation(server, tenant, other_tenant, name, method):
    op = MATRIX[(name, method)]

    # no credentials
    r = await call(server, method, await op.build(tenant), {})
    assert_problem(r, 401, "UNAUTHENTICATED")
    assert r.headers["www-authenticate"].startswith("Bearer")

    # the same organization, every scope but the one needed
    before = await db_state(tenant.id)
    others = sorted(ALL_SCOPES - {op.scope})
    req = await op.build(tenant)
    before = await db_state(tenant.id)
    r = await call(server, method, req, bearer(TOKENS.mint(tenant.id, "owner", others)))
    assert_problem(r, 403, "PERMISSION_DENIED")
    assert op.scope in r.json()["detail"]
    assert await db_state(tenant.id) == before

    # another organization, every scope
    req = await op.build(tenant)
    before = await db_state(tenant.id)
    stranger = bearer(TOKENS.mint(other_tenant.id, "owner"))
    r = await call(server, method, req, stranger)
    if op.owned:
        assert_problem(r, *op.foreign)
        assert await db_state(tenant.id) == before
    else:
        assert r.status_code == op.ok, r.text
        if method == "GET":
            data = r.json()["data"]
            if isinstance(data, list):  # lists: none of the first organization's rows
                if name == "stats_sales":
                    assert all(b["order_count"] == 0 for b in data), data
                else:
                    assert data == [], data
        assert await db_state(tenant.id) == before

    # an API key (or token) holding only the needed scope
    r = await call(server, method, await op.build(tenant), await key_with(tenant, op.scope))
    assert r.status_code == op.ok, r.text
