"""GraphQL over the same data layer as REST: nested reads, mutations, errors, N+1.

The scenarios every resource runs through both doors (reads, pages, filters,
error codes, permissions per caller) are in ``test_parity.py``; these are the
ones about relations, the order workflow and idempotency.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import TOKENS, make_customer, make_order, make_product, world
from tests.statements import counting_reads

ORDER_FIELDS = "databaseId customerId status totalCents note version createdAt updatedAt"


async def gql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None, **kw: Any
) -> dict[str, Any]:
    r = await client.post("/graphql", json={"query": query, "variables": variables or {}}, **kw)
    assert r.status_code == 200, r.text
    return dict(r.json())


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


def snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def as_rest(node: dict[str, Any]) -> dict[str, Any]:
    out = {snake(k): v for k, v in node.items()}
    out["id"] = out.pop("database_id")
    out["status"] = out["status"].lower() if "status" in out else None
    return {k: v for k, v in out.items() if v is not None}


async def test_an_order_reads_the_same_as_rest(tenant):
    w = await world(tenant.client)
    order_id = w["order"]["id"]
    body = await gql(
        tenant.client,
        f"query($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} "
        "customer { databaseId name email } items { productId quantity unitPriceCents "
        "product { databaseId sku name } } } }",
        {"id": str(order_id)},
    )
    assert "errors" not in body, body
    order = body["data"]["order"]
    rest = (await tenant.client.get(f"/api/v1/orders/{order_id}")).json()["data"]
    customer, items = order.pop("customer"), order.pop("items")
    rest_items = rest.pop("items")
    assert as_rest(order) == rest
    assert customer == {
        "databaseId": w["customer"]["id"],
        "name": w["customer"]["name"],
        "email": w["customer"]["email"],
    }
    assert [(i["productId"], i["quantity"], i["unitPriceCents"]) for i in items] == [
        (i["product_id"], i["quantity"], i["unit_price_cents"]) for i in rest_items
    ]
    assert items[0]["product"]["sku"] == w["product"]["sku"]


async def test_mutations_share_rests_rules_and_codes(server, tenant):
    w = await world(tenant.client)
    order_id = str(w["order"]["id"])
    paid = await gql(
        tenant.client,
        "mutation($id: ID!) { payOrder(id: $id) { status version } }",
        {"id": order_id},
    )
    assert paid["data"]["payOrder"]["status"] == "PAID"
    stale = await gql(
        tenant.client,
        "mutation($id: ID!) { shipOrder(id: $id, expectedVersion: 1) { status } }",
        {"id": order_id},
    )
    assert codes(stale) == ["PRECONDITION_FAILED"]
    again = await gql(
        tenant.client, "mutation($id: ID!) { payOrder(id: $id) { status } }", {"id": order_id}
    )
    assert codes(again) == ["INVALID_TRANSITION"]
    invalid = await gql(
        tenant.client,
        'mutation { createProduct(input: {sku: "bad sku!", name: "x", priceCents: -1, '
        "stock: 0}) { databaseId } }",
    )
    assert codes(invalid) == ["VALIDATION_ERROR"]
    viewer = {"Authorization": f"Bearer {TOKENS.mint(tenant.id, 'viewer')}"}
    denied = await gql(
        tenant.client,
        'mutation { createCustomer(input: {name: "x", email: "x@example.com"}) { databaseId } }',
        headers=viewer,
    )
    assert codes(denied) == ["PERMISSION_DENIED"]


async def test_no_credentials_is_rests_401(anon):
    r = await anon.post("/graphql", json={"query": "{ orders { nodes { databaseId } } }"})
    assert r.status_code == 401
    assert r.json()["code"] == "UNAUTHENTICATED"


async def test_nested_orders_run_a_constant_number_of_statements(tenant):
    customer = await make_customer(tenant.owner)
    product_ids = [(await make_product(tenant.owner))["id"] for _ in range(3)]
    for _ in range(50):
        await make_order(tenant.owner, customer["id"], [(p, 1) for p in product_ids])
    query = (
        "query($n: Int) { orders(first: $n) { nodes { databaseId customer { name } "
        "items { quantity product { name } } } } }"
    )
    counts = {}
    for n in (5, 50):
        with counting_reads() as reads:
            body = await gql(tenant.client, query, {"n": n})
        counts[n] = reads.count
        assert len(body["data"]["orders"]["nodes"]) == n
    assert counts[5] == counts[50] <= 4, counts


async def test_prefetched_and_loaded_relations_agree(tenant):
    """``order`` and the ``orders`` page prefetch relations; ``node`` and mutation results
    load them through DataLoaders. Both paths give the same answer."""
    w = await world(tenant.client)
    nested = "customer { databaseId name } items { quantity product { databaseId sku } }"
    gid = (await gql(tenant.client, f'{{ order(id: "{w["order"]["id"]}") {{ id }} }}'))["data"][
        "order"
    ]["id"]
    body = await gql(
        tenant.client,
        f"query($id: ID!) {{ a: order(id: $id) {{ {nested} }} "
        f"b: node(id: $id) {{ ... on Order {{ {nested} }} }} "
        f"c: orders(first: 1) {{ nodes {{ {nested} }} }} }}",
        {"id": gid},
    )
    assert "errors" not in body, body
    data = body["data"]
    assert data["a"] == data["b"] == data["c"]["nodes"][0]
    assert data["a"]["customer"]["databaseId"] == w["customer"]["id"]
    placed = await gql(
        tenant.client,
        "mutation($c: Int!, $p: Int!) { placeOrder(input: {customerId: $c, items: "
        f"[{{productId: $p, quantity: 2}}]}}) {{ {nested} }} }}",
        {"c": w["customer"]["id"], "p": w["product"]["id"]},
    )
    assert placed["data"]["placeOrder"]["customer"] == data["a"]["customer"]
    assert placed["data"]["placeOrder"]["items"][0]["quantity"] == 2


async def test_idempotent_retries_create_once(tenant):
    w = await world(tenant.client, stock=10)
    place = (
        "mutation($c: Int!, $p: Int!, $q: Int!, $k: String) { placeOrder(input: "
        "{customerId: $c, items: [{productId: $p, quantity: $q}]}, idempotencyKey: $k) "
        "{ databaseId totalCents } }"
    )
    args = {"c": w["customer"]["id"], "p": w["product"]["id"], "q": 2, "k": "retry-1"}
    first = await gql(tenant.client, place, args)
    again = await gql(tenant.client, place, args)
    assert first["data"] == again["data"]
    assert (await tenant.client.get(f"/api/v1/products/{w['product']['id']}")).json()["data"][
        "stock"
    ] == 10 - 1 - 2  # world's order and this one, reserved once
    other = await gql(tenant.client, place, {**args, "q": 3})
    assert codes(other) == ["IDEMPOTENCY_KEY_REUSED"]
    blank = await gql(tenant.client, place, {**args, "k": ""})
    assert codes(blank) == ["INVALID_ARGUMENT"]
    created = await gql(
        tenant.client,
        'mutation { createCustomer(input: {name: "Ada", email: "ada@example.com"}, '
        'idempotencyKey: "c-1") { databaseId } }',
    )
    replay = await gql(
        tenant.client,
        'mutation { createCustomer(input: {name: "Ada", email: "ada@example.com"}, '
        'idempotencyKey: "c-1") { databaseId } }',
    )
    assert created["data"] == replay["data"]


async def test_order_note_updates_and_deletes_follow_rest_rules(tenant):
    w = await world(tenant.client)
    oid = str(w["order"]["id"])
    noted = await gql(
        tenant.client,
        'mutation($id: ID!) { updateOrder(id: $id, input: {note: "gift"}) { note version } }',
        {"id": oid},
    )
    assert noted["data"]["updateOrder"] == {"note": "gift", "version": 2}
    pending = await gql(tenant.client, "mutation($id: ID!) { deleteOrder(id: $id) }", {"id": oid})
    assert codes(pending) == ["CONFLICT"]
    rest = await tenant.client.delete(f"/api/v1/orders/{oid}")
    assert rest.json()["code"] == "CONFLICT"
    await gql(tenant.client, "mutation($id: ID!) { cancelOrder(id: $id) { status } }", {"id": oid})
    gone = await gql(tenant.client, "mutation($id: ID!) { deleteOrder(id: $id) }", {"id": oid})
    assert gone["data"]["deleteOrder"] == oid
    assert (await tenant.client.get(f"/api/v1/orders/{oid}")).status_code == 404


async def test_customer_orders_are_each_customers_newest_like_rest(tenant):
    product = await make_product(tenant.owner)
    people = [await make_customer(tenant.owner) for _ in range(2)]
    for person, count in zip(people, (3, 1), strict=True):
        for _ in range(count):
            await make_order(tenant.owner, person["id"], [(product["id"], 1)])
    body = await gql(
        tenant.client,
        '{ customers(orderBy: "id") { nodes { databaseId orders(first: 2) { databaseId } } } }',
    )
    got = {
        c["databaseId"]: [o["databaseId"] for o in c["orders"]]
        for c in body["data"]["customers"]["nodes"]
    }
    for person in people:
        rest = await tenant.client.get(
            f"/api/v1/customers/{person['id']}/orders", params={"page_size": 2}
        )
        assert got[person["id"]] == [o["id"] for o in rest.json()["data"]]
    assert [len(got[p["id"]]) for p in people] == [2, 1]
    too_many = await gql(tenant.client, "{ customers { nodes { orders(first: 500) { note } } } }")
    assert codes(too_many) == ["INVALID_ARGUMENT"]
