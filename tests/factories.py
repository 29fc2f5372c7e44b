"""Small factories and assertions shared by the test modules.

Service-layer helpers (``make_*``) call ``db/`` directly with a Principal; HTTP
helpers (``post_*``) go through the real server with a tenant's client. Every
helper returns the row as the caller sees it (a dict), and fails loudly when
the write does not succeed, so a test never continues on a half-built world.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx

from db import customers, orders, products
from db.declare import Resource
from db.models import Customer, Event, Order, OrderItem, Product
from db.principal import Principal

ON_POSTGRES = os.environ.get("GATEWAY_TEST_BACKEND", "embedded") == "services"
PROBLEM_JSON = "application/problem+json"
PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "request_id"}

_seq = itertools.count(1)


def unique(prefix: str) -> str:
    """A name no other call in this process returns."""
    return f"{prefix}{next(_seq)}"


def sample(res: Resource) -> dict[str, Any]:
    """A valid create body for a declared resource: its example, unique fields made unique."""

    def fresh(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if "@" in value:
            local, _, domain = value.partition("@")
            return f"{local}.{unique('u')}@{domain}"
        return f"{value}-{unique('u')}"

    return {k: fresh(v) if k in res.unique else v for k, v in res.example.items()}


async def make_row(principal: Principal, res: Resource) -> dict[str, Any]:
    """A new row of a declared resource through its ``db`` create (its example)."""
    create, model = res.create, res.create_input
    assert create is not None, res.name
    assert model is not None, res.name
    return await create(principal, model.model_validate(sample(res)))


# --- service layer ----------------------------------------------------------------------


async def make_customer(principal: Principal, **overrides: Any) -> dict[str, Any]:
    n = next(_seq)
    data = {"name": f"Customer {n}", "email": f"customer{n}@example.com", **overrides}
    return await customers.create_customer(principal, customers.CustomerInput(**data))


async def make_product(principal: Principal, **overrides: Any) -> dict[str, Any]:
    n = next(_seq)
    data = {"sku": f"SKU-{n}", "name": f"Product {n}", "price_cents": 1000, "stock": 100}
    data.update(overrides)
    return await products.create_product(principal, products.ProductInput(**data))


def order_input(
    customer_id: int, lines: Iterable[tuple[int, int]], note: str = ""
) -> orders.OrderInput:
    return orders.OrderInput(
        customer_id=customer_id,
        items=[orders.OrderItemInput(product_id=p, quantity=q) for p, q in lines],
        note=note,
    )


async def make_order(
    principal: Principal,
    customer_id: int,
    lines: Iterable[tuple[int, int]],
    note: str = "",
) -> dict[str, Any]:
    return await orders.place_order(principal, order_input(customer_id, lines, note))


PATH_TO: dict[str, tuple[orders.Action, ...]] = {
    "pending": (),
    "paid": ("pay",),
    "shipped": ("pay", "ship"),
    "delivered": ("pay", "ship", "deliver"),
    "cancelled": ("cancel",),
}


async def make_order_in(principal: Principal, status: str, **kwargs: Any) -> dict[str, Any]:
    """A one-line order (new customer and product unless given) moved to ``status``."""
    customer_id = kwargs.get("customer_id") or (await make_customer(principal))["id"]
    product_id = kwargs.get("product_id") or (await make_product(principal))["id"]
    row = await make_order(principal, customer_id, [(product_id, kwargs.get("quantity", 1))])
    for action in PATH_TO[status]:
        row = await orders.transition_order(principal, row["id"], action)
    assert row["status"] == status
    return row


async def stock_of(product_id: int) -> int:
    return (await Product.get(id=product_id)).stock


async def events_of(organization_id: int, after: int = 0) -> list[Event]:
    """The organization's change-log rows with id > ``after``, oldest first."""
    return await Event.filter(organization_id=organization_id, id__gt=after).order_by("id")


async def last_event_id() -> int:
    last = await Event.all().order_by("-id").first()
    return int(last.id) if last else 0


async def db_state(organization_id: int) -> dict[str, Any]:
    """Everything an organization owns, for "nothing changed" assertions."""
    org = {"organization_id": organization_id}
    order_rows = await Order.filter(**org).order_by("id").values()
    order_ids = [o["id"] for o in order_rows]
    return {
        "customers": await Customer.filter(**org).order_by("id").values(),
        "products": await Product.filter(**org).order_by("id").values(),
        "orders": order_rows,
        "items": await OrderItem.filter(order_id__in=order_ids).order_by("id").values(),
        "events": await Event.filter(**org).count(),
    }


# --- HTTP -------------------------------------------------------------------------------


class _Tokens:
    """Mints access tokens for the test server (conftest installs ``mint``)."""

    def __init__(self) -> None:
        self.orgs: dict[str, int] = {}
        self.mint: Callable[..., str] = _no_server

    def for_slug(self, slug: str, role: str, scopes: list[str] | None = None) -> str:
        return self.mint(self.orgs[slug], role, scopes)


def _no_server(*args: Any) -> str:
    raise RuntimeError("the server fixture has not started")


TOKENS = _Tokens()


def bearer(slug: str, role: str, scopes: list[str] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS.for_slug(slug, role, scopes)}"}


def client_as(
    client: httpx.AsyncClient, slug: str, role: str, scopes: list[str] | None = None
) -> httpx.AsyncClient:
    """A new client on the same server acting as ``role`` in ``slug`` (use ``async with``)."""
    return httpx.AsyncClient(
        base_url=client.base_url,
        headers=bearer(slug, role, scopes),
        timeout=30,
    )


async def post_customer(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    n = next(_seq)
    body = {"name": f"Customer {n}", "email": f"customer{n}@example.com", **overrides}
    r = await client.post("/api/v1/customers", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json()["data"])


async def post_product(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    n = next(_seq)
    body = {"sku": f"SKU-{n}", "name": f"Product {n}", "price_cents": 1000, "stock": 100}
    body.update(overrides)
    r = await client.post("/api/v1/products", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json()["data"])


async def post_order(
    client: httpx.AsyncClient, customer_id: int, lines: Iterable[tuple[int, int]], note: str = ""
) -> dict[str, Any]:
    body = {
        "customer_id": customer_id,
        "items": [{"product_id": p, "quantity": q} for p, q in lines],
        "note": note,
    }
    r = await client.post("/api/v1/orders", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json()["data"])


async def world(client: httpx.AsyncClient, *, stock: int = 100) -> dict[str, Any]:
    """A customer, a product and a pending order of 1 unit, made through the API."""
    customer = await post_customer(client)
    product = await post_product(client, stock=stock)
    order = await post_order(client, customer["id"], [(product["id"], 1)])
    return {"customer": customer, "product": product, "order": order}


def assert_problem(
    r: httpx.Response, status: int, code: str, *, request_id: str | None = None
) -> dict[str, Any]:
    """``r`` is an RFC 9457 problem with ``status`` and ``code``; returns its body."""
    assert r.status_code == status, f"{r.status_code} != {status}: {r.text}"
    assert r.headers["content-type"].split(";")[0] == PROBLEM_JSON, r.headers
    body: dict[str, Any] = r.json()
    assert body.keys() >= PROBLEM_KEYS, body
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["type"] == "/problems/" + code.lower().replace("_", "-")
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["request_id"], body
    assert body["request_id"] == r.headers["x-request-id"]
    if request_id is not None:
        assert body["request_id"] == request_id
    return body


def error_locs(body: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    return [tuple(e["loc"]) for e in body.get("errors", [])]


async def list_all(client: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every row of a collection, following next_page_token."""
    rows: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        query = {**params, "page_size": 100, **({"page_token": token} if token else {})}
        r = await client.get(path, params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        rows.extend(body["data"])
        token = body["metadata"]["pagination"]["next_page_token"]
        if not token:
            return rows
