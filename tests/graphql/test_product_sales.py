"""``Product.sales``: units, revenue and orders per product over paid orders, batched."""

from __future__ import annotations

from typing import Any

from tests.factories import TOKENS, make_customer, make_order, make_order_in, make_product
from tests.graphql.test_graphql_basics import codes, gql
from tests.statements import counting_reads

SALES = "sales { unitsSold revenueCents orderCount }"


async def shop(tenant: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two products: one sold in paid, shipped and delivered orders, and in a pending
    and a cancelled one (which do not count); one never sold."""
    sold = await make_product(tenant.owner, price_cents=250)
    idle = await make_product(tenant.owner)
    customer = await make_customer(tenant.owner)
    for status, quantity in (("paid", 2), ("shipped", 3), ("delivered", 1), ("cancelled", 7)):
        await make_order_in(
            tenant.owner,
            status,
            customer_id=customer["id"],
            product_id=sold["id"],
            quantity=quantity,
        )
    await make_order(tenant.owner, customer["id"], [(sold["id"], 5)])  # pending
    return sold, idle


async def test_sales_count_paid_orders_only(tenant):
    sold, idle = await shop(tenant)
    body = await gql(
        tenant.client,
        f"query($a: ID!, $b: ID!) {{ a: product(id: $a) {{ {SALES} }} "
        f"b: product(id: $b) {{ {SALES} }} }}",
        {"a": str(sold["id"]), "b": str(idle["id"])},
    )
    assert "errors" not in body, body
    assert body["data"]["a"]["sales"] == {"unitsSold": 6, "revenueCents": 1500, "orderCount": 3}
    assert body["data"]["b"]["sales"] == {"unitsSold": 0, "revenueCents": 0, "orderCount": 0}


async def test_prefetched_and_loaded_sales_agree_in_constant_statements(tenant):
    sold, _ = await shop(tenant)
    for _ in range(8):
        await make_product(tenant.owner)
    page = f"query($n: Int!) {{ products(first: $n) {{ nodes {{ databaseId {SALES} }} }} }}"
    counts = {}
    for n in (2, 10):
        with counting_reads() as reads:
            body = await gql(tenant.client, page, {"n": n})
        counts[n] = reads.count
        assert "errors" not in body, body
    assert counts[2] == counts[10] == 2, counts  # the page, then every product's sales
    by_id = {p["databaseId"]: p["sales"] for p in body["data"]["products"]["nodes"]}
    # Through orders.items.product: prefetched with the page, and loaded for node(id:).
    nested = await gql(
        tenant.client,
        f"{{ orders(first: 10) {{ nodes {{ items {{ product {{ databaseId {SALES} }} }} }} }} }}",
    )
    assert "errors" not in nested, nested
    for order in nested["data"]["orders"]["nodes"]:
        for item in order["items"]:
            assert item["product"]["sales"] == by_id[item["product"]["databaseId"]]
    gid = (await gql(tenant.client, f'{{ product(id: "{sold["id"]}") {{ id }} }}'))["data"][
        "product"
    ]["id"]
    loaded = await gql(tenant.client, f'{{ node(id: "{gid}") {{ ... on Product {{ {SALES} }} }} }}')
    assert loaded["data"]["node"]["sales"] == by_id[sold["id"]]


async def test_sales_need_stats_read_and_only_that_field_fails(tenant):
    await shop(tenant)
    token = TOKENS.mint(tenant.id, "viewer", ["products:read", "orders:read"])
    headers = {"Authorization": f"Bearer {token}"}
    for query in (
        f"{{ products(first: 5) {{ nodes {{ name {SALES} }} }} }}",
        f"{{ orders(first: 5) {{ nodes {{ items {{ product {{ name {SALES} }} }} }} }} }}",
    ):
        body = await gql(tenant.client, query, headers=headers)
        assert set(codes(body)) == {"PERMISSION_DENIED"}, body
        assert body["data"] is not None  # the rest of the page is there
        assert "name" in str(body["data"])


async def test_other_organizations_sales_are_not_counted(tenant, other_tenant):
    sold, _ = await shop(tenant)
    theirs = await make_product(other_tenant.owner)
    await make_order_in(other_tenant.owner, "paid", product_id=theirs["id"], quantity=4)
    body = await gql(other_tenant.client, f'{{ product(id: "{sold["id"]}") {{ {SALES} }} }}')
    assert codes(body) == ["NOT_FOUND"]
    mine = await gql(tenant.client, f'{{ product(id: "{sold["id"]}") {{ {SALES} }} }}')
    assert mine["data"]["product"]["sales"]["unitsSold"] == 6
