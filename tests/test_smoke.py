from __future__ import annotations


async def test_health(anon):
    r = await anon.get("/healthz")
    assert r.status_code == 200
    r = await anon.get("/readyz")
    assert r.status_code == 200, r.text


async def test_customer_roundtrip(tenant):
    r = await tenant.client.post(
        "/api/v1/customers", json={"name": "Ada", "email": "ada@example.com"}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == f"/api/v1/customers/{body['data']['id']}"
    r = await tenant.client.get(r.headers["location"])
    assert r.status_code == 200, r.text
    r = await tenant.client.get("/api/v1/customers")
    assert r.status_code == 200, r.text
    assert len(r.json()["data"]) == 1
