"""The authorization matrix: every REST operation against every kind of caller.

The operations come from the running app's router (every route and method, HEAD
included), not from a list kept by hand. ``MATRIX`` names, for each one under
``/api/v1``, the scope it needs and how to build a valid request for it against a
fresh row of the tenant; ``PUBLIC`` names the routes anyone may call. A route in
neither table fails ``test_every_route_has_an_authorization_decision``, so no route
ships without someone deciding who may call it.

Each operation is then called:

- without credentials: 401, ``WWW-Authenticate: Bearer``, nothing changed;
- by the same organization, with every scope but the needed one (a token, and an
  API key), and by every role that does not grant the scope (a token holding every
  scope): 403 ``PERMISSION_DENIED`` naming the scope, nothing changed;
- by another organization holding every scope: on the tenant's row, 404 (never 403,
  which would confirm the row exists) and nothing changed; on a collection, none of
  the tenant's rows (which the tenant itself does see);
- with an API key holding exactly the needed scope: success, and the write happened.
  No API key may hold a privileged scope (``api-keys:admin``: a key cannot mint keys;
  ``audit:read``: only owners read the audit log), so those operations succeed with a
  token of the least role granting it, holding only that scope (plus the scope the
  new key asks for, when creating one).

Every built request is first resolved through the router, so a matrix row cannot
silently test a different route than the one it names.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from db import api_keys, products
from db.catalog import ALL_SCOPES, CATALOG, role_scopes
from db.declare import Resource
from db.models import ApiKey, AuditEvent, WebhookDeadLetter, WebhookEndpoint
from db.principal import PRIVILEGED, SERVICE_ROLE, USER_ROLES
from tests.conftest import RunningServer, Tenant
from tests.factories import (
    TOKENS,
    assert_problem,
    db_state,
    make_customer,
    make_order_in,
    make_product,
    make_row,
    sample,
    unique,
)
from tests.webhooks.api_kit import add_dead_letter, add_delivery, make_endpoint

ADMIN = "api-keys:admin"


@dataclass(frozen=True)
class Call:
    """One valid request for an operation, against ``row`` (the tenant's) when it has one."""

    path: str
    body: dict[str, Any] | None = None
    row: int | None = None


Builder = Callable[[Tenant], Awaitable[Call]]


@dataclass(frozen=True)
class Op:
    scope: str
    build: Builder
    ok: int = 200
    # "item": the path names one of the tenant's rows (or, for :batchGet, several).
    # "list": a collection of the tenant's rows (``row`` is one of them).
    # "create": a new row; another organization creates it in its own organization.
    kind: str = "item"
    # What another organization gets when the tenant's rows are referenced from the
    # body rather than the path: the answer for ids that do not exist at all.
    foreign: tuple[int, str] = (404, "NOT_FOUND")
    # Scopes the successful caller needs besides ``scope`` (a new API key's own scope).
    also: tuple[str, ...] = ()


# --- rows and requests ------------------------------------------------------------------


async def _customer(t: Tenant) -> int:
    return int((await make_customer(t.owner))["id"])


async def _product(t: Tenant) -> int:
    return int((await make_product(t.owner))["id"])


async def _order(t: Tenant, status: str = "pending") -> int:
    return int((await make_order_in(t.owner, status))["id"])


async def _api_key(t: Tenant) -> int:
    row, _ = await api_keys.create_api_key(
        t.owner, api_keys.ApiKeyInput(name=unique("matrix key "), scopes=["products:read"])
    )
    return int(row["id"])


async def _audit_event(t: Tenant) -> int:
    """An entry of the tenant's audit log (creating a key records one)."""
    key = await _api_key(t)
    entry = await AuditEvent.get(organization_id=t.id, target_type="api_key", target_id=str(key))
    return int(entry.id)


def item(
    collection: str,
    make: Callable[[Tenant], Awaitable[int]],
    suffix: str = "",
    body: Callable[[], dict[str, Any]] | None = None,
) -> Builder:
    async def build(t: Tenant) -> Call:
        ident = await make(t)
        return Call(f"/api/v1/{collection}/{ident}{suffix}", body() if body else None, ident)

    return build


def listing(path: str, make: Callable[[Tenant], Awaitable[int]]) -> Builder:
    async def build(t: Tenant) -> Call:
        return Call(path, None, await make(t))

    return build


def creating(path: str, body: Callable[[], dict[str, Any]]) -> Builder:
    async def build(t: Tenant) -> Call:
        return Call(path, body())

    return build


def transition(action: str, status: str) -> Builder:
    async def build(t: Tenant) -> Call:
        ident = await _order(t, status)
        return Call(f"/api/v1/orders/{ident}:{action}", None, ident)

    return build


def customer_body() -> dict[str, Any]:
    return {"name": unique("Matrix customer "), "email": f"{unique('matrix')}@example.com"}


def product_body() -> dict[str, Any]:
    return {"sku": unique("MATRIX-"), "name": "Matrix product", "price_cents": 500, "stock": 5}


def api_key_body() -> dict[str, Any]:
    return {"name": unique("matrix key "), "scopes": ["orders:read"]}


async def _new_order(t: Tenant) -> Call:
    body = {
        "customer_id": await _customer(t),
        "items": [{"product_id": await _product(t), "quantity": 1}],
    }
    return Call("/api/v1/orders", body)


async def _deleted_product(t: Tenant) -> Call:
    ident = await _product(t)
    await products.delete_product(t.owner, ident)
    return Call(f"/api/v1/products/{ident}:undelete", None, ident)


async def _batch(t: Tenant) -> Call:
    first, second = await _order(t), await _order(t)
    return Call(f"/api/v1/orders:batchGet?ids={first},{second}", None, first)


async def _sales(t: Tenant) -> Call:
    ident = await _order(t, "paid")
    end = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT00:00:00Z")
    return Call(f"/api/v1/stats/sales?end={end}", None, ident)


async def _activity(t: Tenant) -> Call:
    return Call("/api/v1/stats/order-activity", None, await _order(t, "paid"))


async def _cancelled(t: Tenant) -> Call:
    ident = await _order(t, "cancelled")
    return Call(f"/api/v1/orders/{ident}", None, ident)


async def _customer_orders(t: Tenant) -> Call:
    order = await make_order_in(t.owner, "pending")
    return Call(f"/api/v1/customers/{order['customer_id']}/orders", None, order["id"])


def renamed() -> dict[str, Any]:
    return {"name": unique("Renamed ")}


WEBHOOKS = "webhooks:admin"


async def _endpoint(t: Tenant) -> int:
    return int((await make_endpoint(t.owner))["id"])


def endpoint_body() -> dict[str, Any]:
    return {"url": "https://hooks.example.com/matrix", "topics": ["orders"], "enabled": False}


async def _deliveries(t: Tenant) -> Call:
    endpoint = await _endpoint(t)
    row = await add_delivery(t.id, endpoint)
    return Call(f"/api/v1/webhook-endpoints/{endpoint}/deliveries", None, row.id)


async def _dead_letters(t: Tenant) -> Call:
    endpoint = await _endpoint(t)
    row = await add_dead_letter(t.id, endpoint)
    return Call(f"/api/v1/webhook-endpoints/{endpoint}/dead-letters", None, row.id)


async def _replay_one(t: Tenant) -> Call:
    endpoint = await _endpoint(t)
    row = await add_dead_letter(t.id, endpoint)
    return Call(f"/api/v1/webhook-endpoints/{endpoint}/dead-letters/{row.id}:replay", None, row.id)


async def _replay_all(t: Tenant) -> Call:
    endpoint = await _endpoint(t)
    await add_dead_letter(t.id, endpoint)
    return Call(f"/api/v1/webhook-endpoints/{endpoint}:replayDeadLetters", None, endpoint)


# (route name within the api_v1 blueprint, method) -> what it needs and how to call it.
# HEAD runs the GET handler and is checked with the GET row.
MATRIX: dict[tuple[str, str], Op] = {
    ("customers_list", "GET"): Op(
        "customers:read", listing("/api/v1/customers", _customer), kind="list"
    ),
    ("customers_create", "POST"): Op(
        "customers:write", creating("/api/v1/customers", customer_body), 201, kind="create"
    ),
    ("customers_get", "GET"): Op("customers:read", item("customers", _customer)),
    ("customers_update", "PATCH"): Op(
        "customers:write", item("customers", _customer, body=renamed)
    ),
    ("customers_update", "PUT"): Op(
        "customers:write", item("customers", _customer, body=customer_body)
    ),
    ("customers_delete", "DELETE"): Op("customers:write", item("customers", _customer), 204),
    ("customers_orders", "GET"): Op("orders:read", _customer_orders),
    ("products_list", "GET"): Op(
        "products:read", listing("/api/v1/products", _product), kind="list"
    ),
    ("products_create", "POST"): Op(
        "products:write", creating("/api/v1/products", product_body), 201, kind="create"
    ),
    ("products_get", "GET"): Op("products:read", item("products", _product)),
    ("products_update", "PATCH"): Op(
        "products:write", item("products", _product, body=lambda: {"stock": 7})
    ),
    ("products_update", "PUT"): Op("products:write", item("products", _product, body=product_body)),
    ("products_delete", "DELETE"): Op("products:write", item("products", _product), 204),
    ("products_undelete", "POST"): Op("products:write", _deleted_product),
    ("orders_list", "GET"): Op("orders:read", listing("/api/v1/orders", _order), kind="list"),
    ("orders_create", "POST"): Op(
        "orders:write", _new_order, 201, kind="create", foreign=(422, "VALIDATION_ERROR")
    ),
    ("orders_get", "GET"): Op("orders:read", item("orders", _order)),
    ("orders_batch_get", "GET"): Op("orders:read", _batch),
    ("orders_update", "PATCH"): Op(
        "orders:write", item("orders", _order, body=lambda: {"note": "patched"})
    ),
    ("orders_update", "PUT"): Op(
        "orders:write", item("orders", _order, body=lambda: {"note": "replaced"})
    ),
    ("orders_delete", "DELETE"): Op("orders:write", _cancelled, 204),
    ("orders_pay", "POST"): Op("orders:write", transition("pay", "pending")),
    ("orders_ship", "POST"): Op("orders:write", transition("ship", "paid")),
    ("orders_deliver", "POST"): Op("orders:write", transition("deliver", "shipped")),
    ("orders_cancel", "POST"): Op("orders:write", transition("cancel", "pending")),
    ("stats_sales", "GET"): Op("stats:read", _sales, kind="list"),
    ("stats_order_activity", "GET"): Op("stats:read", _activity, kind="list"),
    ("api_keys_list", "GET"): Op(ADMIN, listing("/api/v1/api-keys", _api_key), kind="list"),
    ("api_keys_create", "POST"): Op(
        ADMIN, creating("/api/v1/api-keys", api_key_body), 201, kind="create", also=("orders:read",)
    ),
    ("api_keys_get", "GET"): Op(ADMIN, item("api-keys", _api_key)),
    ("api_keys_revoke", "DELETE"): Op(ADMIN, item("api-keys", _api_key), 204),
    ("audit_events_list", "GET"): Op(
        "audit:read", listing("/api/v1/audit-events", _audit_event), kind="list"
    ),
    ("audit_events_get", "GET"): Op("audit:read", item("audit-events", _audit_event)),
    ("webhook_endpoints_list", "GET"): Op(
        WEBHOOKS, listing("/api/v1/webhook-endpoints", _endpoint), kind="list"
    ),
    ("webhook_endpoints_create", "POST"): Op(  # an endpoint gets what its creator reads
        WEBHOOKS,
        creating("/api/v1/webhook-endpoints", endpoint_body),
        201,
        kind="create",
        also=("orders:read",),
    ),
    ("webhook_endpoints_get", "GET"): Op(WEBHOOKS, item("webhook-endpoints", _endpoint)),
    # Changing an endpoint, or reading or replaying what it sent, needs its topics'
    # read scopes too (its test endpoints send orders).
    ("webhook_endpoints_update", "PATCH"): Op(
        WEBHOOKS,
        item("webhook-endpoints", _endpoint, body=lambda: {"description": unique("Renamed ")}),
        also=("orders:read",),
    ),
    ("webhook_endpoints_update", "PUT"): Op(
        WEBHOOKS, item("webhook-endpoints", _endpoint, body=endpoint_body), also=("orders:read",)
    ),
    ("webhook_endpoints_delete", "DELETE"): Op(WEBHOOKS, item("webhook-endpoints", _endpoint), 204),
    ("webhook_endpoints_rotateSecret", "POST"): Op(
        WEBHOOKS, item("webhook-endpoints", _endpoint, ":rotateSecret"), also=("orders:read",)
    ),
    ("webhook_endpoints_deliveries", "GET"): Op(WEBHOOKS, _deliveries, also=("orders:read",)),
    ("webhook_endpoints_dead_letters", "GET"): Op(WEBHOOKS, _dead_letters, also=("orders:read",)),
    ("webhook_endpoints_dead_letter_replay", "POST"): Op(
        WEBHOOKS, _replay_one, also=("orders:read",)
    ),
    ("webhook_endpoints_replayDeadLetters", "POST"): Op(
        WEBHOOKS, _replay_all, also=("orders:read",)
    ),
}


def _declared_rows(res: Resource) -> dict[tuple[str, str], Op]:
    """The standard routes of a declared resource with no actions, from its declaration
    (a resource with actions, or anything special, needs rows of its own above)."""

    async def make(t: Tenant) -> int:
        return int((await make_row(t.owner, res))["id"])

    read, write, plural = res.read_scope, res.write_scope, res.plural
    rows = {
        (f"{plural}_list", "GET"): Op(read, listing(f"/api/v1/{plural}", make), kind="list"),
        (f"{plural}_create", "POST"): Op(
            write, creating(f"/api/v1/{plural}", lambda: sample(res)), 201, kind="create"
        ),
        (f"{plural}_get", "GET"): Op(read, item(plural, make)),
        (f"{plural}_update", "PATCH"): Op(write, item(plural, make, body=lambda: _renamed(res))),
        (f"{plural}_update", "PUT"): Op(write, item(plural, make, body=lambda: sample(res))),
        (f"{plural}_delete", "DELETE"): Op(write, item(plural, make), 204),
    }
    for rel in res.relations:
        if rel.many:
            target = CATALOG.by_name[rel.target]
            rows[(f"{plural}_{rel.name}", "GET")] = Op(
                target.read_scope, listing_under(res, rel.name, make)
            )
    return rows


def _renamed(res: Resource) -> dict[str, Any]:
    """A patch that changes something: the first text field that is not unique."""
    name = next(k for k, v in res.example.items() if isinstance(v, str) and k not in res.unique)
    return {name: unique("Renamed ")}


def listing_under(
    res: Resource, relation: str, make: Callable[[Tenant], Awaitable[int]]
) -> Builder:
    """``/<plural>/{id}/<relation>`` with one child pointing at a new parent (the row)."""
    rel = res.relation(relation)
    assert rel is not None, relation
    target = CATALOG.by_name[rel.target]

    async def build(t: Tenant) -> Call:
        parent = await make(t)
        assert target.create is not None, target.name
        assert target.create_input is not None, target.name
        body = {**sample(target), rel.key: parent}
        child = await target.create(t.owner, target.create_input.model_validate(body))
        return Call(f"/api/v1/{res.plural}/{parent}/{relation}", None, int(child["id"]))

    return build


for _res in CATALOG.resources:
    if not _res.actions and (f"{_res.plural}_list", "GET") not in MATRIX:
        MATRIX.update(_declared_rows(_res))

# Routes anyone may call (full route name without the app's prefix), with why.
PUBLIC: dict[str, str] = {
    "livez": "liveness probe",
    "healthz": "liveness probe (the former name of /livez)",
    "readyz": "readiness probe",
    "docs_ui": "API docs page",
    "docs_ui_init": "API docs page script",
    "docs_oauth2_redirect": "where Swagger UI receives the authorization code",
    "favicon": "the icon browsers ask every origin for",
    "vendor": "static assets of the docs page",
    "static": "the docs page's own scripts (content-hashed, like /vendor)",
    "api_v1.openapi": "the OpenAPI document",
    "oauth.jwks": ".well-known JWKS (public keys)",
    "oauth.oauth_metadata": ".well-known authorization server metadata",
    "oauth.oauth_token": "OAuth2 token endpoint (authenticates the client itself)",
    "oauth.oauth_authorize": "OAuth2 authorization endpoint (signs the user in)",
    "oauth.oauth_revoke": "OAuth2 revocation (authenticates the client itself)",
    "oauth.oauth_introspect": "OAuth2 introspection (authenticates the client itself)",
    "realtime.asyncapi": "the AsyncAPI document of the real-time channels",
    "dashboard": "the live dashboard page (it signs people in; its data needs their token)",
}
# Doors other than REST: they authenticate every request themselves and check scopes
# through the same db/ functions (their own tests walk their operations); here they are
# only checked to refuse anonymous callers.
OTHER_DOORS: dict[str, str] = {
    "graphql": "GraphQL over HTTP and WebSocket (tests/graphql, tests/realtime)",
    "realtime.events": "Server-Sent Events (tests/realtime/test_sse.py)",
    "realtime.event_tickets": "stream tickets for EventSource (tests/realtime/test_sse.py)",
    "realtime.realtime": "JSON WebSocket channel (tests/realtime/test_json_channel.py)",
    "metrics": "Prometheus metrics: loopback, or METRICS_TOKEN (tests/gateway/test_metrics.py)",
}
# An anonymous HTTP request to each door (the WebSocket doors refuse an anonymous
# connection_init / subscribe with close codes, tested with the channels).
ANONYMOUS_DOOR_CALLS = [
    ("GET", "/graphql", {"query": "{ __typename }"}),
    ("POST", "/graphql", {"query": "{ __typename }"}),
    ("GET", "/api/v1/events", {"topics": "orders"}),
    ("POST", "/api/v1/events/tickets", None),
]
# Public routes a browser or probe fetches anonymously: they answer 200.
ANONYMOUS_200 = {
    "livez": "/livez",
    "healthz": "/healthz",
    "docs_ui": "/docs",
    "docs_ui_init": "/docs/docs-init.js",
    "docs_oauth2_redirect": "/docs/oauth2-redirect.html",
    "favicon": "/favicon.ico",
    "api_v1.openapi": "/api/v1/openapi.json",
    "oauth.jwks": "/.well-known/jwks.json",
    "oauth.oauth_metadata": "/.well-known/oauth-authorization-server",
    "realtime.asyncapi": "/api/v1/asyncapi.json",
}


def _local_name(app: Any, route: Any) -> str:
    return str(route.name).removeprefix(f"{app.name}.")


def route_operations(app: Any) -> dict[tuple[str, str], Any]:
    """(route name without the app prefix, method) -> route, for every route of the app."""
    return {
        (_local_name(app, route), method): route
        for route in app.router.routes
        for method in route.methods
    }


def test_every_route_has_an_authorization_decision(server: RunningServer) -> None:
    ops = route_operations(server.app)
    assert len(ops) > len(MATRIX)  # the router was read (and has the public routes too)
    undecided = []
    for (name, method), route in sorted(ops.items()):
        if name in PUBLIC:
            assert not name.startswith("api_v1.") or name == "api_v1.openapi", name
            continue
        if name in OTHER_DOORS:
            assert not name.startswith("api_v1."), name
            continue
        short = name.removeprefix("api_v1.")
        row = (short, "GET" if method == "HEAD" else method)
        if not name.startswith("api_v1.") or row not in MATRIX:
            undecided.append(f"{method} /{route.path} ({name})")
        else:
            assert str(route.path).startswith("api/v1/"), route.path
    assert not undecided, f"routes with no authorization decision: {undecided}"
    stale = {op for op in MATRIX if (f"api_v1.{op[0]}", op[1]) not in ops}
    assert not stale, f"matrix rows for routes the app no longer has: {sorted(stale)}"
    missing_public = (set(PUBLIC) | set(OTHER_DOORS)) - {name for name, _ in ops}
    assert not missing_public, f"public routes the app no longer has: {missing_public}"


@pytest.mark.parametrize(("name", "path"), sorted(ANONYMOUS_200.items()))
async def test_public_routes_answer_without_credentials(
    anon: httpx.AsyncClient, name: str, path: str
) -> None:
    r = await anon.get(path)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("method", "path", "payload"), ANONYMOUS_DOOR_CALLS)
async def test_other_doors_refuse_anonymous_callers(
    server: RunningServer, anon: httpx.AsyncClient, method: str, path: str, payload: Any
) -> None:
    doors = {name for (name, m) in route_operations(server.app) if name in OTHER_DOORS}
    assert doors == set(OTHER_DOORS)
    if method == "GET":
        r = await anon.get(path, params=payload)
    else:
        r = await anon.post(path, json=payload)
    assert_problem(r, 401, "UNAUTHENTICATED")
    assert r.headers["www-authenticate"].startswith("Bearer")


# --- the walk ---------------------------------------------------------------------------


async def snapshot(organization_id: int) -> dict[str, Any]:
    """Everything the organization owns, API keys included (not when a key was last used)."""
    keys = await ApiKey.filter(organization_id=organization_id).order_by("id").values()
    for key in keys:
        key.pop("last_used_at")
    org = {"organization_id": organization_id}
    return {
        **await db_state(organization_id),
        "api_keys": keys,
        "webhook_endpoints": await WebhookEndpoint.filter(**org).order_by("id").values(),
        "dead_letters": await WebhookDeadLetter.filter(**org).order_by("id").values(),
    }


def bearer(organization_id: int, role: str, scopes: list[str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS.mint(organization_id, role, scopes)}"}


async def key_headers(t: Tenant, scopes: set[str]) -> dict[str, str]:
    _, key = await api_keys.create_api_key(
        t.owner, api_keys.ApiKeyInput(name=unique("matrix caller "), scopes=sorted(scopes))
    )
    return {"X-API-Key": key}


def check_route(server: RunningServer, name: str, method: str, call: Call) -> None:
    route, _, _ = server.app.router.get(call.path.split("?")[0], method, None)
    assert _local_name(server.app, route) == f"api_v1.{name}", (call.path, route.name)


def denied(r: httpx.Response, status: int, code: str, method: str) -> dict[str, Any] | None:
    if method == "HEAD":  # no body: the status (and headers) are what there is
        assert r.status_code == status, r.status_code
        return None
    return assert_problem(r, status, code)


CASES = sorted(
    [(name, method) for name, method in MATRIX]
    + [(name, "HEAD") for name, method in MATRIX if method == "GET"]
)


@pytest.mark.parametrize(("name", "method"), CASES, ids=[f"{m} {n}" for n, m in CASES])
async def test_operation(
    server: RunningServer, tenant: Tenant, other_tenant: Tenant, name: str, method: str
) -> None:
    op = MATRIX[(name, "GET" if method == "HEAD" else method)]
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:

        async def attempt(headers: dict[str, str]) -> tuple[Call, httpx.Response]:
            call = await op.build(tenant)
            check_route(server, name, method, call)
            before = await snapshot(tenant.id)
            r = await http.request(method, call.path, json=call.body, headers=headers)
            if r.status_code >= 400:
                assert await snapshot(tenant.id) == before, f"{r.status_code} changed rows"
            return call, r

        # no credentials
        _, r = await attempt({})
        denied(r, 401, "UNAUTHENTICATED", method)
        assert r.headers["www-authenticate"].startswith("Bearer"), r.headers

        # the same organization without the scope: a token and an API key with every
        # other scope, and every role that does not grant it (holding every scope)
        others = sorted(ALL_SCOPES - {op.scope})
        lacking = [bearer(tenant.id, "owner", others)]
        lacking.append(await key_headers(tenant, set(others) - PRIVILEGED))
        lacking += [
            bearer(tenant.id, role, sorted(ALL_SCOPES))
            for role in USER_ROLES
            if op.scope not in role_scopes(role)
        ]
        for headers in lacking:
            _, r = await attempt(headers)
            problem = denied(r, 403, "PERMISSION_DENIED", method)
            assert problem is None or op.scope in problem["detail"], problem

        # another organization with every scope
        call, r = await attempt(bearer(other_tenant.id, "owner", sorted(ALL_SCOPES)))
        if op.kind == "item":
            denied(r, *op.foreign, method)
        elif op.kind == "create":
            if op.foreign[0] == 404:  # nothing referenced: created in its own organization
                assert r.status_code == op.ok, r.text
            else:
                denied(r, *op.foreign, method)
        else:
            assert r.status_code == op.ok, r.text
            if method == "GET":
                await assert_invisible(http, tenant, name, call, r)

        # an API key with exactly the needed scope (a token, for those no key may hold)
        call = await op.build(tenant)
        check_route(server, name, method, call)
        if op.scope in PRIVILEGED:  # no key may hold it: the least role that grants it
            role = next(r for r in reversed(USER_ROLES) if op.scope in role_scopes(r))
            headers = bearer(tenant.id, role, [op.scope, *op.also])
        else:
            headers = await key_headers(tenant, {op.scope})
        before = await snapshot(tenant.id)
        r = await http.request(method, call.path, json=call.body, headers=headers)
        assert r.status_code == op.ok, r.text
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            assert await snapshot(tenant.id) != before, "the write did not happen"
        elif method == "GET" and op.kind == "item":
            data = r.json()["data"]
            ids = [row["id"] for row in data] if isinstance(data, list) else [data["id"]]
            assert call.row in ids, data


async def assert_invisible(
    http: httpx.AsyncClient, tenant: Tenant, name: str, call: Call, r: httpx.Response
) -> None:
    """Another organization's view of a collection holds none of the tenant's rows,
    while the tenant's own view (same request, the owner's token) does."""
    mine = await http.get(call.path, headers=bearer(tenant.id, "owner", sorted(ALL_SCOPES)))
    assert mine.status_code == 200, mine.text
    theirs, ours = r.json()["data"], mine.json()["data"]
    if name == "stats_sales":
        assert sum(b["order_count"] for b in ours) >= 1, ours
        assert all(b["order_count"] == 0 for b in theirs), theirs
        assert all(b["revenue_cents"] == 0 for b in theirs), theirs
        return
    if name == "stats_order_activity":
        assert sum(c["count"] for c in ours["status_counts"]) >= 1, ours
        assert all(c["count"] == 0 for c in theirs["status_counts"]), theirs
        assert theirs["revenue_today_cents"] == 0, theirs
        return
    assert call.row in {row["id"] for row in ours}, ours
    assert theirs == [], theirs


def test_no_api_key_role_can_administer_keys() -> None:
    """The premise of the api-keys rows above: keys act as a role without the admin scope."""
    assert ADMIN not in role_scopes(SERVICE_ROLE)
    assert ADMIN in ALL_SCOPES


async def test_the_openapi_document_names_the_scope_each_route_enforces(
    server: RunningServer, anon: httpx.AsyncClient
) -> None:
    """Swagger's Authorize asks for the scopes the document names: they are the ones
    this matrix proves each route enforces (and nothing else)."""
    doc = (await anon.get("/api/v1/openapi.json")).json()
    by_operation_path = {}
    for (name, method), route in route_operations(server.app).items():
        row = (name.removeprefix("api_v1."), "GET" if method == "HEAD" else method)
        if row not in MATRIX:
            continue
        path = "/" + str(route.path).removeprefix("api/v1/")
        path = re.sub(r"<method:\(\?P<method>([^)]+)\)>", r"\1", path)
        path = re.sub(  # ``ident`` is ``{id}``; another parameter keeps its name (``{letter}``)
            r"<(\w+):\(\?P<\1>\[\^/:\]\+\)(:\w+)?>",
            lambda m: ("{id}" if m[1] == "ident" else f"{{{m[1]}}}") + (m[2] or ""),
            path,
        )
        by_operation_path[(path, row[1].lower())] = MATRIX[row].scope
    assert by_operation_path
    for (path, method), scope in by_operation_path.items():
        requirements = doc["paths"][path][method]["security"]
        assert requirements[0] == {"oauth2": [scope]}, (path, method)
