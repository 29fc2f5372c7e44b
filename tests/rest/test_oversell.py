"""50 concurrent REST orders for the last 10 units: exactly 10 placed, 40 conflicts."""

from __future__ import annotations

import asyncio
from collections import Counter

from tests.factories import post_customer, post_product


async def test_concurrent_orders_never_oversell(tenant):
    customer = await post_customer(tenant.client)
    product = await post_product(tenant.client, stock=10, price_cents=250)
    body = {"customer_id": customer["id"], "items": [{"product_id": product["id"], "quantity": 1}]}

    responses = await asyncio.gather(
        *(tenant.client.post("/api/v1/orders", json=body) for _ in range(50))
    )

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 10, 409: 40}
    codes = {r.json()["code"] for r in responses if r.status_code == 409}
    assert codes == {"INSUFFICIENT_STOCK"}
    after = (await tenant.client.get(f"/api/v1/products/{product['id']}")).json()["data"]
    assert after["stock"] == 0
    orders = (await tenant.client.get("/api/v1/orders", params={"page_size": 100})).json()
    assert len(orders["data"]) == 10
    assert all(o["total_cents"] == 250 for o in orders["data"])
