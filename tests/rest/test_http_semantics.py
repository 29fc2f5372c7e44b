"""HTTP semantics: ETags, conditional requests, idempotency keys, request ids."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from db.models import Customer, IdempotencyRecord, Order
from tests.factories import (
    assert_problem,
    client_as,
    db_state,
    events_of,
    post_customer,
    post_product,
    world,
)

API = "/api/v1"
STRONG = re.compile(r'^"[^"]+"$')


# --- ETags and If-None-Match -------------------------------------------------------------


async def test_single_resource_has_a_strong_version_etag(tenant):
    c = tenant.client
    customer = await post_customer(c)
    url = f"{API}/customers/{customer['id']}"
    r = await c.get(url)
    assert r.headers["etag"] == '"v1"'
    await c.patch(url, json={"name": "New"})
    assert (await c.get(url)).headers["etag"] == '"v2"'


@pytest.mark.parametrize("collection", ["customers", "products", "orders"])
async def test_if_none_match_on_single_resources(tenant, collection):
    c = tenant.client
    w = await world(c)
    url = f"{API}/{collection}/{w[collection[:-1]]['id']}"
    r = await c.get(url)
    etag = r.headers["etag"]
    assert STRONG.match(etag)

    for header in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        r = await c.get(url, headers={"If-None-Match": header})
        assert r.status_code == 304, header
        assert r.content == b""
        assert r.headers["etag"] == etag
    r = await c.get(url, headers={"If-None-Match": '"v999"'})
    assert r.status_code == 200
    assert r.json()["data"]["id"]


async def test_list_etag_changes_with_content_and_honours_if_none_match(tenant):
    c = tenant.client
    await post_customer(c)
    r = await c.get(f"{API}/customers")
    etag = r.headers["etag"]
    assert STRONG.match(etag)
    assert not etag.startswith("W/")
    again = await c.get(f"{API}/customers")
    assert again.headers["etag"] == etag  # request id and timestamp do not change it
    assert again.json()["metadata"]["request_id"] != r.json()["metadata"]["request_id"]

    r = await c.get(f"{API}/customers", headers={"If-None-Match": etag})
    assert r.status_code == 304
    assert r.content == b""

    await post_customer(c)
    r = await c.get(f"{API}/customers", headers={"If-None-Match": etag})
    assert r.status_code == 200
    assert r.headers["etag"] != etag
    assert len(r.json()["data"]) == 2
    masked = await c.get(f"{API}/customers", params={"fields": "id"})
    assert masked.headers["etag"] != r.headers["etag"]


async def test_masked_etag_is_not_the_full_etag(tenant):
    c = tenant.client
    customer = await post_customer(c)
    url = f"{API}/customers/{customer['id']}"
    r = await c.get(url, headers={"If-None-Match": '"v1"'}, params={"fields": "id"})
    assert r.status_code == 200
    masked = r.headers["etag"]
    r = await c.get(url, headers={"If-None-Match": masked}, params={"fields": "id"})
    assert r.status_code == 304


# --- If-Match -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Conditional:
    """A conditional write: ``prepare`` sets the stage and returns the governing URL."""

    prepare: Callable[[httpx.AsyncClient, dict[str, Any]], Awaitable[str]]
    method: str
    suffix: str = ""
    body: dict[str, Any] | None = None
    ok: int = 200


async def _customer(c, w):
    return f"{API}/customers/{w['customer']['id']}"


async def _spare_customer(c, w):
    return f"{API}/customers/{(await post_customer(c))['id']}"


async def _product(c, w):
    return f"{API}/products/{w['product']['id']}"


async def _deleted_product(c, w):
    url = await _product(c, w)
    assert (await c.delete(url)).status_code == 204
    return url


async def _order(c, w):
    return f"{API}/orders/{w['order']['id']}"


async def _cancelled_order(c, w):
    url = await _order(c, w)
    assert (await c.post(f"{url}:cancel")).status_code == 200
    return url


WRITES = {
    "PATCH customer": Conditional(_customer, "PATCH", body={"name": "Z"}),
    "PUT customer": Conditional(_customer, "PUT", body={"name": "Z", "email": "z@example.com"}),
    "DELETE customer": Conditional(_spare_customer, "DELETE", ok=204),
    "PATCH product": Conditional(_product, "PATCH", body={"stock": 1}),
    "PUT product": Conditional(_product, "PUT", body={"sku": "P", "name": "P", "price_cents": 1}),
    "DELETE product": Conditional(_product, "DELETE", ok=204),
    "POST product:undelete": Conditional(_deleted_product, "POST", ":undelete"),
    "PATCH order": Conditional(_order, "PATCH", body={"note": "n"}),
    "PUT order": Conditional(_order, "PUT", body={"note": "n"}),
    "POST order:pay": Conditional(_order, "POST", ":pay"),
    "POST order:cancel": Conditional(_order, "POST", ":cancel"),
    "DELETE order": Conditional(_cancelled_order, "DELETE", ok=204),
}


async def _send(c, write: Conditional, url: str, if_match: str) -> httpx.Response:
    return await c.request(
        write.method, url + write.suffix, json=write.body, headers={"If-Match": if_match}
    )


@pytest.mark.parametrize("name", list(WRITES))
async def test_if_match_mismatch_is_412_and_changes_nothing(tenant, name):
    c = tenant.client
    write = WRITES[name]
    url = await write.prepare(c, await world(c))
    etag = (await c.get(url)).headers["etag"]
    version = int(etag[2:-1])
    before = await db_state(tenant.id)

    for if_match in (
        f'"v{version + 1}"',  # not yet
        f'"v{version - 1}"' if version > 1 else '"v0"',  # stale
        f"W/{etag}",  # weak validators never match for writes
        f'"v{version}-0a1b2c3d"',  # a masked representation's tag
        '"0123abcd"',  # a list tag
        f"v{version}",  # unquoted
    ):
        r = await _send(c, write, url, if_match)
        body = assert_problem(r, 412, "PRECONDITION_FAILED")
        assert "If-Match" in body["detail"], body

    assert await db_state(tenant.id) == before
    assert (await c.get(url)).headers["etag"] == etag


@pytest.mark.parametrize("name", list(WRITES))
async def test_if_match_with_the_current_etag_succeeds(tenant, name):
    c = tenant.client
    write = WRITES[name]
    url = await write.prepare(c, await world(c))
    etag = (await c.get(url)).headers["etag"]

    r = await _send(c, write, url, f'"v9999", {etag}')

    assert r.status_code == write.ok, r.text
    if write.ok == 200:
        assert r.headers["etag"] == f'"v{int(etag[2:-1]) + 1}"'


async def test_if_match_star_and_absent_mean_unconditional(tenant):
    c = tenant.client
    customer = await post_customer(c)
    url = f"{API}/customers/{customer['id']}"
    assert (await c.patch(url, json={"name": "A"}, headers={"If-Match": "*"})).status_code == 200
    assert (await c.patch(url, json={"name": "B"})).status_code == 200
    r = await c.patch(url, json={"name": "C"}, headers={"If-Match": '"v3"'})
    assert r.status_code == 200
    assert r.headers["etag"] == '"v4"'
    r = await c.patch(url, json={"name": "D"}, headers={"If-Match": '"v3"'})  # lost update
    assert_problem(r, 412, "PRECONDITION_FAILED")
    assert (await c.get(url)).json()["data"]["name"] == "C"


async def test_if_match_on_missing_resource_is_404(tenant):
    r = await tenant.client.patch(
        f"{API}/customers/999999", json={"name": "x"}, headers={"If-Match": '"v1"'}
    )
    assert_problem(r, 404, "NOT_FOUND")


# --- Idempotency-Key ----------------------------------------------------------------------


async def test_idempotent_retry_replays_the_first_response(tenant):
    c = tenant.client
    body = {"name": "Once", "email": "once@example.com"}
    headers = {"Idempotency-Key": "create-once-1"}
    first = await c.post(f"{API}/customers", json=body, headers=headers)
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    events = len(await events_of(tenant.id))

    second = await c.post(f"{API}/customers", json=body, headers=headers)

    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["etag"] == first.headers["etag"]
    assert second.json()["data"] == first.json()["data"]
    assert second.json()["metadata"]["request_id"] == second.headers["x-request-id"]
    listed = (await c.get(f"{API}/customers")).json()["data"]
    assert [row["id"] for row in listed] == [first.json()["data"]["id"]]
    assert len(await events_of(tenant.id)) == events


async def test_idempotent_order_is_placed_once(tenant):
    c = tenant.client
    w = await world(c, stock=10)
    body = {
        "customer_id": w["customer"]["id"],
        "items": [{"product_id": w["product"]["id"], "quantity": 2}],
    }
    headers = {"Idempotency-Key": "order-1"}
    first = await c.post(f"{API}/orders", json=body, headers=headers)
    again = await c.post(f"{API}/orders", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["data"] == first.json()["data"]
    assert await Order.filter(organization_id=tenant.id).count() == 2  # world's + this one
    stock = (await c.get(f"{API}/products/{w['product']['id']}")).json()["data"]["stock"]
    assert stock == 10 - 1 - 2


async def test_same_key_with_another_body_is_422(tenant):
    c = tenant.client
    headers = {"Idempotency-Key": "reused"}
    r = await c.post(
        f"{API}/customers", json={"name": "A", "email": "a@example.com"}, headers=headers
    )
    assert r.status_code == 201
    before = await db_state(tenant.id)
    r = await c.post(
        f"{API}/customers", json={"name": "B", "email": "b@example.com"}, headers=headers
    )
    assert_problem(r, 422, "IDEMPOTENCY_KEY_REUSED")
    r = await c.post(
        f"{API}/products", json={"sku": "K", "name": "K", "price_cents": 1}, headers=headers
    )
    assert_problem(r, 422, "IDEMPOTENCY_KEY_REUSED")
    assert await db_state(tenant.id) == before


async def test_failed_requests_are_not_stored_and_may_be_retried(tenant):
    c = tenant.client
    customer = await post_customer(c)
    product = await post_product(c, stock=0)
    body = {"customer_id": customer["id"], "items": [{"product_id": product["id"], "quantity": 1}]}
    headers = {"Idempotency-Key": "retry-after-restock"}
    assert_problem(
        await c.post(f"{API}/orders", json=body, headers=headers), 409, "INSUFFICIENT_STOCK"
    )
    assert await IdempotencyRecord.filter(organization_id=tenant.id).count() == 0
    await c.patch(f"{API}/products/{product['id']}", json={"stock": 1})
    r = await c.post(f"{API}/orders", json=body, headers=headers)
    assert r.status_code == 201
    assert "idempotent-replayed" not in r.headers


async def test_keys_are_scoped_to_the_caller(tenant, other_tenant):
    body = {"name": "A", "email": "a@example.com"}
    headers = {"Idempotency-Key": "shared-key"}
    a = await tenant.client.post(f"{API}/customers", json=body, headers=headers)
    b = await other_tenant.client.post(f"{API}/customers", json=body, headers=headers)
    assert (a.status_code, b.status_code) == (201, 201)
    assert "idempotent-replayed" not in b.headers
    assert b.json()["data"]["id"] != a.json()["data"]["id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
async def test_invalid_keys_are_400(tenant, key):
    before = await db_state(tenant.id)
    r = await tenant.client.post(
        f"{API}/customers",
        json={"name": "A", "email": "a@example.com"},
        headers={"Idempotency-Key": key},
    )
    assert_problem(r, 400, "INVALID_ARGUMENT")
    assert await db_state(tenant.id) == before


@pytest.mark.parametrize("resource", ["customers", "orders"])
async def test_concurrent_requests_with_one_key_write_once(tenant, resource):
    c = tenant.client
    if resource == "customers":
        body: dict[str, Any] = {"name": "Race", "email": "race@example.com"}
        stock = None
    else:
        w = await world(c, stock=5)
        body = {
            "customer_id": w["customer"]["id"],
            "items": [{"product_id": w["product"]["id"], "quantity": 4}],
        }
        stock = w["product"]["id"]
    before_events = len(await events_of(tenant.id))
    before_orders = await Order.filter(organization_id=tenant.id).count()

    responses = await asyncio.gather(
        *(
            c.post(f"{API}/{resource}", json=body, headers={"Idempotency-Key": "race"})
            for _ in range(10)
        )
    )

    assert [r.status_code for r in responses] == [201] * 10, [r.text for r in responses]
    assert len({r.json()["data"]["id"] for r in responses}) == 1
    assert len({r.headers["location"] for r in responses}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in responses) == 1
    new_events = len(await events_of(tenant.id)) - before_events
    if resource == "customers":
        assert await Customer.filter(organization_id=tenant.id).count() == 1
        assert new_events == 1
    else:
        assert await Order.filter(organization_id=tenant.id).count() == before_orders + 1
        assert new_events == 2  # order.created + product.updated (stock)
        r = await c.get(f"{API}/products/{stock}")
        assert r.json()["data"]["stock"] == 5 - 1 - 4


# --- request ids --------------------------------------------------------------------------


async def test_request_id_is_echoed_everywhere(tenant):
    c = tenant.client
    rid = "client-req_1.2:3"
    r = await c.get(f"{API}/customers", headers={"X-Request-ID": rid})
    assert r.headers["x-request-id"] == rid
    assert r.json()["metadata"]["request_id"] == rid
    r = await c.get(f"{API}/customers/999999", headers={"X-Request-ID": rid})
    assert_problem(r, 404, "NOT_FOUND", request_id=rid)
    r = await c.get(f"{API}/no-such-route", headers={"X-Request-ID": rid})
    assert_problem(r, 404, "NOT_FOUND", request_id=rid)
    headers = {"X-Request-ID": rid, "Content-Type": "application/json"}
    r = await c.post(f"{API}/customers", content=b"{", headers=headers)
    assert_problem(r, 400, "MALFORMED_JSON", request_id=rid)


async def test_request_id_is_generated_when_absent(tenant):
    r1 = await tenant.client.get(f"{API}/customers")
    r2 = await tenant.client.get(f"{API}/customers")
    for r in (r1, r2):
        assert re.fullmatch(r"[A-Za-z0-9._:-]{16,128}", r.headers["x-request-id"])
        assert r.json()["metadata"]["request_id"] == r.headers["x-request-id"]
    assert r1.headers["x-request-id"] != r2.headers["x-request-id"]


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "semi;colon", "ünï", "<script>"])
async def test_invalid_request_id_is_replaced(tenant, bad):
    r = await tenant.client.get(f"{API}/customers", headers={"X-Request-ID": bad.encode()})
    rid = r.headers["x-request-id"]
    assert rid != bad
    assert re.fullmatch(r"[A-Za-z0-9._:-]{16,128}", rid)
    assert r.json()["metadata"]["request_id"] == rid


async def test_request_id_on_401_and_viewer_403(tenant, anon):
    r = await anon.get(f"{API}/customers", headers={"X-Request-ID": "anon-1"})
    assert_problem(r, 401, "UNAUTHENTICATED", request_id="anon-1")
    async with client_as(tenant.client, tenant.slug, "viewer") as viewer:
        r = await viewer.post(
            f"{API}/customers",
            json={"name": "A", "email": "a@example.com"},
            headers={"X-Request-ID": "viewer-1"},
        )
    assert_problem(r, 403, "PERMISSION_DENIED", request_id="viewer-1")


async def test_idempotency_key_on_an_order_action_replays_the_first_answer(tenant):
    c = tenant.client
    w = await world(c)
    url = f"/api/v1/orders/{w['order']['id']}:pay"
    first = await c.post(url, headers={"Idempotency-Key": "pay-once"})
    assert first.status_code == 200
    again = await c.post(url, headers={"Idempotency-Key": "pay-once"})
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["data"] == first.json()["data"]
    assert again.headers["ETag"] == first.headers["ETag"]
    # Without the key a second pay is what it is: an invalid transition.
    assert_problem(await c.post(url), 409, "INVALID_TRANSITION")


async def test_head_answers_like_get_without_a_body(tenant):
    c = tenant.client
    w = await world(c)
    for path in (f"/api/v1/orders/{w['order']['id']}", "/api/v1/orders", "/healthz"):
        get, head = await c.get(path), await c.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b""
        assert head.headers.get("ETag") == get.headers.get("ETag")
