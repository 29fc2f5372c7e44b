"""API keys: created by admins over REST, shown once, stored as a hash, scoped, revocable.

``POST /api/v1/api-keys`` needs ``api-keys:admin`` and answers the key once
(``gwk_<key_id>_<secret>``); lists and gets never show it or its hash, and the
database holds only a SHA-256 of it. A key acts with exactly its scopes, never
more than its creator holds, stops at its expiry and, once revoked, at once on the
same server (even after it was cached). Bad input is a 4xx problem with a stable
code, never a 500, and creates nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from db.models import ApiKey
from tests.conftest import RunningServer, Tenant
from tests.factories import TOKENS, assert_problem, make_order_in, make_product

PATH = "/api/v1/api-keys"


def token(tenant: Tenant, role: str = "admin", scopes: list[str] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS.mint(tenant.id, role, scopes)}"}


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        yield client


async def create(
    http: httpx.AsyncClient, tenant: Tenant, scopes: list[str], **extra: Any
) -> dict[str, Any]:
    body = {"name": "warehouse sync", "scopes": scopes, **extra}
    r = await http.post(PATH, json=body, headers=token(tenant))
    assert r.status_code == 201, r.text
    return dict(r.json()["data"])


async def test_the_key_is_shown_once_and_only_its_hash_is_stored(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    r = await http.post(
        PATH, json={"name": "sync", "scopes": ["products:read"]}, headers=token(tenant)
    )
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    created = r.json()["data"]
    key = created["key"]
    prefix = f"gwk_{created['key_id']}_"
    assert key.startswith(prefix)
    secret = key.removeprefix(prefix)
    assert len(secret) >= 40  # 256 random bits, URL-safe base64
    assert created["scopes"] == ["products:read"]  # the name and shape it was written with
    assert created["name"] == "sync"
    assert "secret_hash" not in created

    # never again: not by Location, not in the list (not even as part of any value)
    assert r.headers["location"] == f"{PATH}/{created['id']}"
    got = await http.get(r.headers["location"], headers=token(tenant))
    listed = await http.get(PATH, headers=token(tenant))
    assert got.json()["data"]["scopes"] == ["products:read"]
    assert {"scopes"} <= set(listed.json()["data"][0])
    assert "scope" not in listed.json()["data"][0]
    for later in (got, listed):
        assert later.status_code == 200, later.text
        assert secret not in later.text
        rows = later.json()["data"]
        for row in rows if isinstance(rows, list) else [rows]:
            assert "key" not in row
            assert "secret_hash" not in row
            assert row["key_id"] == created["key_id"]

    # the database: a SHA-256 of the key, and the secret in no column
    stored = (await ApiKey.filter(id=created["id"]).values())[0]
    assert stored["secret_hash"] == hashlib.sha256(key.encode()).hexdigest()
    for column, value in stored.items():
        assert secret not in str(value), column
    assert stored["organization_id"] == tenant.id

    # and the key works
    ok = await http.get("/api/v1/products", headers={"X-API-Key": key})
    assert ok.status_code == 200, ok.text


async def test_a_key_has_exactly_its_scopes(http: httpx.AsyncClient, tenant: Tenant) -> None:
    product = await make_product(tenant.owner)
    order = await make_order_in(tenant.owner, "pending")
    key = {"X-API-Key": (await create(http, tenant, ["products:read", "orders:read"]))["key"]}

    for path in (f"/api/v1/products/{product['id']}", f"/api/v1/orders/{order['id']}"):
        r = await http.get(path, headers=key)
        assert r.status_code == 200, r.text
    refused = [
        await http.get("/api/v1/customers", headers=key),
        await http.patch(f"/api/v1/products/{product['id']}", json={"stock": 1}, headers=key),
        await http.post(f"/api/v1/orders/{order['id']}:pay", headers=key),
        await http.get("/api/v1/stats/sales", headers=key),
        await http.get(PATH, headers=key),  # no key manages keys
        await http.post(PATH, json={"name": "k", "scopes": ["orders:read"]}, headers=key),
    ]
    for r in refused:
        assert_problem(r, 403, "PERMISSION_DENIED")
    assert (await http.get(f"/api/v1/products/{product['id']}", headers=key)).json()["data"][
        "stock"
    ] == product["stock"]
    assert await ApiKey.filter(organization_id=tenant.id).count() == 1


@pytest.mark.parametrize("role", ["staff", "viewer"])
async def test_only_admins_create_keys(http: httpx.AsyncClient, tenant: Tenant, role: str) -> None:
    headers = token(tenant, role)
    body = {"name": "k", "scopes": ["products:read"]}
    assert_problem(await http.post(PATH, json=body, headers=headers), 403, "PERMISSION_DENIED")
    assert_problem(await http.get(PATH, headers=headers), 403, "PERMISSION_DENIED")
    # a token holding the scope is not enough when the role does not grant it
    with_scope = token(tenant, role, ["api-keys:admin", "products:read"])
    assert_problem(await http.post(PATH, json=body, headers=with_scope), 403, "PERMISSION_DENIED")
    assert await ApiKey.filter(organization_id=tenant.id).count() == 0


@pytest.mark.parametrize("role", ["owner", "admin"])
async def test_owners_and_admins_create_keys(
    http: httpx.AsyncClient, tenant: Tenant, role: str
) -> None:
    r = await http.post(
        PATH, json={"name": "k", "scopes": ["orders:read"]}, headers=token(tenant, role)
    )
    assert r.status_code == 201, r.text
    assert r.json()["data"]["created_by"] == f"user:test-{role}"


async def test_a_key_never_holds_scopes_its_creator_lacks(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    narrow = token(tenant, "admin", ["api-keys:admin", "products:read"])
    for scopes in (["orders:write"], ["products:read", "products:write"], ["customers:read"]):
        r = await http.post(PATH, json={"name": "k", "scopes": scopes}, headers=narrow)
        problem = assert_problem(r, 422, "VALIDATION_ERROR")
        assert ("body", "scopes") in {tuple(e["loc"]) for e in problem["errors"]}, problem
    assert await ApiKey.filter(organization_id=tenant.id).count() == 0
    r = await http.post(PATH, json={"name": "k", "scopes": ["products:read"]}, headers=narrow)
    assert r.status_code == 201, r.text


async def test_an_expired_key_is_refused_even_when_cached(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    created = await create(http, tenant, ["products:read"], expires_at=soon)
    assert created["expires_at"] is not None
    key = {"X-API-Key": created["key"]}
    # it expires in a second, after the server has cached it
    await ApiKey.filter(id=created["id"]).update(
        expires_at=datetime.now(UTC) + timedelta(seconds=1)
    )
    assert (await http.get("/api/v1/products", headers=key)).status_code == 200
    await asyncio.sleep(1.2)
    r = await http.get("/api/v1/products", headers=key)
    assert_problem(r, 401, "UNAUTHENTICATED")
    assert r.headers["www-authenticate"].startswith("Bearer")

    # and one already expired when first seen
    other = await create(http, tenant, ["products:read"], expires_at=soon)
    await ApiKey.filter(id=other["id"]).update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    r = await http.get("/api/v1/products", headers={"X-API-Key": other["key"]})
    assert_problem(r, 401, "UNAUTHENTICATED")


async def test_a_revoked_key_stops_at_once(http: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await create(http, tenant, ["products:read"])
    key = {"X-API-Key": created["key"]}
    assert (await http.get("/api/v1/products", headers=key)).status_code == 200  # now cached
    r = await http.delete(f"{PATH}/{created['id']}", headers=token(tenant))
    assert r.status_code == 204, r.text
    assert r.content == b""
    denied = await http.get("/api/v1/products", headers=key)
    assert_problem(denied, 401, "UNAUTHENTICATED")
    assert denied.headers["www-authenticate"].startswith("Bearer")
    row = await ApiKey.get(id=created["id"])
    assert row.revoked_at is not None
    shown = (await http.get(f"{PATH}/{created['id']}", headers=token(tenant))).json()["data"]
    assert shown["revoked_at"] is not None
    again = await http.delete(f"{PATH}/{created['id']}", headers=token(tenant))
    assert again.status_code == 204  # revoking is idempotent
    assert (await ApiKey.get(id=created["id"])).revoked_at == row.revoked_at
    assert_problem(await http.get("/api/v1/products", headers=key), 401, "UNAUTHENTICATED")


async def test_another_organization_cannot_see_or_revoke_a_key(
    http: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    created = await create(http, tenant, ["products:read"])
    stranger = token(other_tenant)
    assert_problem(await http.get(f"{PATH}/{created['id']}", headers=stranger), 404, "NOT_FOUND")
    assert_problem(await http.delete(f"{PATH}/{created['id']}", headers=stranger), 404, "NOT_FOUND")
    listed = await http.get(PATH, headers=stranger)
    assert listed.status_code == 200
    assert listed.json()["data"] == []
    assert (await ApiKey.get(id=created["id"])).revoked_at is None
    # and the key acts in its own organization only
    mine = await make_product(tenant.owner)
    theirs = await make_product(other_tenant.owner)
    key = {"X-API-Key": created["key"]}
    assert (await http.get(f"/api/v1/products/{mine['id']}", headers=key)).status_code == 200
    assert_problem(
        await http.get(f"/api/v1/products/{theirs['id']}", headers=key), 404, "NOT_FOUND"
    )


@pytest.mark.parametrize(
    "key",
    ["gwk_", "gwk_abc", "gwk_abc_def", "not-a-key", "gwk_" + "a" * 500 + "_x", "gwk_a b_c"],
)
async def test_malformed_and_unknown_keys_are_401(http: httpx.AsyncClient, key: str) -> None:
    r = await http.get("/api/v1/products", headers={"X-API-Key": key})
    assert_problem(r, 401, "UNAUTHENTICATED")
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_a_tampered_secret_is_refused(http: httpx.AsyncClient, tenant: Tenant) -> None:
    key = (await create(http, tenant, ["products:read"]))["key"]
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    r = await http.get("/api/v1/products", headers={"X-API-Key": tampered})
    assert_problem(r, 401, "UNAUTHENTICATED")


PAST = "2000-01-01T00:00:00Z"
NAIVE = "2099-01-01T00:00:00"
GOOD = b'{"name": "k", "scopes": ["products:read"]}'
BAD_BODIES: list[tuple[str, Any]] = [
    ("unknown scope", {"name": "k", "scopes": ["everything"]}),
    ("wildcard scope", {"name": "k", "scopes": ["*"]}),
    ("admin scope", {"name": "k", "scopes": ["api-keys:admin"]}),
    ("no scopes", {"name": "k", "scopes": []}),
    ("scopes missing", {"name": "k"}),
    ("empty name", {"name": "", "scopes": ["products:read"]}),
    ("blank name", {"name": "   ", "scopes": ["products:read"]}),
    ("name missing", {"scopes": ["products:read"]}),
    ("name too long", {"name": "k" * 201, "scopes": ["products:read"]}),
    ("expiry in the past", {"name": "k", "scopes": ["products:read"], "expires_at": PAST}),
    ("expiry without zone", {"name": "k", "scopes": ["products:read"], "expires_at": NAIVE}),
    ("expiry not a time", {"name": "k", "scopes": ["products:read"], "expires_at": "soon"}),
    ("expiry a boolean", {"name": "k", "scopes": ["products:read"], "expires_at": True}),
    ("name a number", {"name": 5, "scopes": ["products:read"]}),
    ("name an object", {"name": {"x": 1}, "scopes": ["products:read"]}),
    ("scopes a string", {"name": "k", "scopes": "products:read"}),
    ("scopes of numbers", {"name": "k", "scopes": [1]}),
    ("scopes null", {"name": "k", "scopes": None}),
    ("body a list", [{"name": "k", "scopes": ["products:read"]}]),
    ("body a string", "k"),
    ("organization_id", {"name": "k", "scopes": ["products:read"], "organization_id": 1}),
    ("key_id", {"name": "k", "scopes": ["products:read"], "key_id": "mine"}),
    ("secret_hash", {"name": "k", "scopes": ["products:read"], "secret_hash": "0" * 64}),
    ("created_by", {"name": "k", "scopes": ["products:read"], "created_by": "someone"}),
    ("revoked_at", {"name": "k", "scopes": ["products:read"], "revoked_at": None}),
]


@pytest.mark.parametrize("body", [b for _, b in BAD_BODIES], ids=[n for n, _ in BAD_BODIES])
async def test_bad_input_is_a_clear_422_and_creates_nothing(
    http: httpx.AsyncClient, tenant: Tenant, body: Any
) -> None:
    r = await http.post(PATH, json=body, headers=token(tenant))
    problem = assert_problem(r, 422, "VALIDATION_ERROR")
    assert problem["errors"], problem
    assert await ApiKey.filter(organization_id=tenant.id).count() == 0


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "MALFORMED_JSON"),
        (b"", "application/json", 400, "MALFORMED_JSON"),
        (GOOD, "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"),
    ],
)
async def test_unreadable_bodies_are_4xx_and_create_nothing(
    http: httpx.AsyncClient,
    tenant: Tenant,
    content: bytes,
    content_type: str,
    status: int,
    code: str,
) -> None:
    headers = {**token(tenant), "Content-Type": content_type}
    r = await http.post(PATH, content=content, headers=headers)
    assert_problem(r, status, code)
    assert await ApiKey.filter(organization_id=tenant.id).count() == 0


@pytest.mark.parametrize("ident", ["abc", "0", "-1", "99999999999", "1.5"])
async def test_bad_ids_are_4xx(http: httpx.AsyncClient, tenant: Tenant, ident: str) -> None:
    for method in ("GET", "DELETE"):
        r = await http.request(method, f"{PATH}/{ident}", headers=token(tenant))
        assert r.status_code in (400, 404), r.text
        assert_problem(
            r, r.status_code, "INVALID_ARGUMENT" if r.status_code == 400 else "NOT_FOUND"
        )
