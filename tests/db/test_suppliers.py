"""Suppliers' own rules: unique email, a supplier in use stays, products point only at
their organization's suppliers, and ``products.supplier`` resolves without N+1.

What every resource does on every door (CRUD, parity, scopes, tenancy, events) is
proven by ``tests/contract``; this file holds only what is the supplier's own.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Tenant
from tests.factories import assert_problem, error_locs, unique
from tests.statements import counting_reads

API = "/api/v1"


async def _supplier(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    body = {"name": "Acme", "email": f"{unique('s')}@acme.example", "country": "DE", **overrides}
    r = await client.post(f"{API}/suppliers", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json()["data"])


async def _product(client: httpx.AsyncClient, supplier_id: int | None) -> dict[str, Any]:
    body = {"sku": unique("SUP-"), "name": "Bolt", "price_cents": 10, "supplier_id": supplier_id}
    r = await client.post(f"{API}/products", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json()["data"])


async def test_email_is_unique_per_organization(tenant: Tenant, other_tenant: Tenant) -> None:
    first = await _supplier(tenant.client)
    r = await tenant.client.post(
        f"{API}/suppliers", json={"name": "Again", "email": first["email"], "country": "FR"}
    )
    assert_problem(r, 409, "CONFLICT")
    await _supplier(other_tenant.client, email=first["email"])  # another organization may


async def test_country_is_an_iso_code(tenant: Tenant) -> None:
    for bad in ("de", "DEU", "", "D1"):
        r = await tenant.client.post(
            f"{API}/suppliers", json={"name": "X", "email": f"{unique('c')}@x.io", "country": bad}
        )
        assert_problem(r, 422, "VALIDATION_ERROR")
        assert error_locs(r.json()) == [("body", "country")], r.text


async def test_a_supplier_with_products_is_not_deleted(tenant: Tenant) -> None:
    supplier = await _supplier(tenant.client)
    product = await _product(tenant.client, supplier["id"])
    r = await tenant.client.delete(f"{API}/suppliers/{supplier['id']}")
    assert_problem(r, 409, "CONFLICT")
    r = await tenant.client.patch(f"{API}/products/{product['id']}", json={"supplier_id": None})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["supplier_id"] is None
    r = await tenant.client.delete(f"{API}/suppliers/{supplier['id']}")
    assert r.status_code == 204, r.text


async def test_products_point_only_at_their_organizations_suppliers(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    foreign = await _supplier(other_tenant.client)
    for send in (
        lambda: tenant.client.post(
            f"{API}/products",
            json={"sku": unique("F-"), "name": "x", "price_cents": 1, "supplier_id": foreign["id"]},
        ),
        lambda: tenant.client.post(
            f"{API}/products",
            json={"sku": unique("F-"), "name": "x", "price_cents": 1, "supplier_id": 2**31 - 1},
        ),
    ):
        r = await send()
        assert_problem(r, 422, "VALIDATION_ERROR")
        assert error_locs(r.json()) == [("body", "supplier_id")], r.text
    mine = await _product(tenant.client, None)
    r = await tenant.client.patch(
        f"{API}/products/{mine['id']}", json={"supplier_id": foreign["id"]}
    )
    assert_problem(r, 422, "VALIDATION_ERROR")
    for bad in (0, -1, 2**31, "1", True, 1.5):
        r = await tenant.client.patch(f"{API}/products/{mine['id']}", json={"supplier_id": bad})
        assert_problem(r, 422, "VALIDATION_ERROR")


async def test_products_filter_and_expand_by_supplier(tenant: Tenant) -> None:
    a, b = await _supplier(tenant.client), await _supplier(tenant.client)
    mine = [await _product(tenant.client, a["id"]) for _ in range(3)]
    await _product(tenant.client, b["id"])
    r = await tenant.client.get(
        f"{API}/products", params={"filter": f"supplier_id = {a['id']}", "expand": "supplier"}
    )
    data = r.json()["data"]
    assert sorted(p["id"] for p in data) == sorted(p["id"] for p in mine)
    assert {p["supplier"]["email"] for p in data} == {a["email"]}
    r = await tenant.client.get(
        f"{API}/products/{mine[0]['id']}", params={"expand": "supplier", "fields": "name"}
    )
    assert r.json()["data"] == {"name": "Bolt", "supplier_id": a["id"], "supplier": a}
    r = await tenant.client.get(f"{API}/products", params={"expand": "supplier,supplier"})
    assert r.status_code == 200, r.text
    r = await tenant.client.get(
        f"{API}/products", params={"expand": "supplier"}, headers={"Accept": "text/csv"}
    )
    assert_problem(r, 400, "INVALID_ARGUMENT")
    r = await tenant.client.get(f"{API}/suppliers/{a['id']}/products", params={"page_size": 2})
    assert len(r.json()["data"]) == 2
    assert r.json()["metadata"]["pagination"]["next_page_token"]


async def test_an_expanded_get_changes_its_etag_when_the_supplier_changes(tenant: Tenant) -> None:
    supplier = await _supplier(tenant.client)
    product = await _product(tenant.client, supplier["id"])
    path, expand = f"{API}/products/{product['id']}", {"expand": "supplier"}
    first = await tenant.client.get(path, params=expand)
    etag = first.headers["ETag"]
    assert etag != (await tenant.client.get(path)).headers["ETag"]
    again = await tenant.client.get(path, params=expand, headers={"If-None-Match": etag})
    assert again.status_code == 304
    r = await tenant.client.patch(f"{API}/suppliers/{supplier['id']}", json={"name": "Renamed"})
    assert r.status_code == 200, r.text
    after = await tenant.client.get(path, params=expand, headers={"If-None-Match": etag})
    assert after.status_code == 200, after.text
    assert after.json()["data"]["supplier"]["name"] == "Renamed"
    assert after.headers["ETag"] != etag


async def test_graphql_relations_run_a_constant_number_of_statements(tenant: Tenant) -> None:
    suppliers = [await _supplier(tenant.client) for _ in range(4)]
    for n in range(20):
        await _product(tenant.client, suppliers[n % 4]["id"])
    products = "query($n: Int) { products(first: $n) { nodes { supplier { name } } } }"
    nested = (
        "query($n: Int) { suppliers(first: $n) { nodes { name "
        "products(first: 5) { sku supplier { email } } } } }"
    )
    # A soft-deleted product leaves the supplier's lists on both doors, as it leaves /products.
    gone = await _product(tenant.client, suppliers[0]["id"])
    await tenant.client.delete(f"{API}/products/{gone['id']}")
    listed = await tenant.client.get(f"{API}/suppliers/{suppliers[0]['id']}/products")
    assert gone["id"] not in [p["id"] for p in listed.json()["data"]]
    body = await tenant.client.post(
        "/graphql",
        json={
            "query": "query($id: ID!) { supplier(id: $id) "
            "{ products(first: 100) { databaseId } } }",
            "variables": {"id": str(suppliers[0]["id"])},
        },
    )
    assert gone["id"] not in [p["databaseId"] for p in body.json()["data"]["supplier"]["products"]]
    for query in (products, nested):
        counts = {}
        for n in (2, 20):
            with counting_reads() as reads:
                r = await tenant.client.post(
                    "/graphql", json={"query": query, "variables": {"n": n}}
                )
            assert "errors" not in r.json(), r.text
            counts[n] = reads.count
        assert counts[2] == counts[20], (query, counts)
