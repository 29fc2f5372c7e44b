"""API keys for service-to-service calls, managed over REST by admins.

Shown once at creation, stored only as a hash, prefixed ``gwk_`` so leaks are easy
to spot, scoped (never beyond the creator's scopes, never ``api-keys:admin``), with
optional expiry, listable and revocable with immediate effect.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from db.models import ApiKey
from tests.factories import TOKENS, assert_problem, make_product


def admin(tenant: Any, scopes: list[str] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS.mint(tenant.id, 'admin', scopes)}"}


async def create(
    http: httpx.AsyncClient, tenant: Any, **body: Any
) -> tuple[httpx.Response, dict[str, Any]]:
    body.setdefault("name", "warehouse sync")
    body.setdefault("scopes", ["products:read"])
    r = await http.post("/api/v1/api-keys", json=body, headers=admin(tenant))
    return r, (r.json().get("data", {}) if r.status_code == 201 else {})


@pytest.fixture
async def http(server) -> Any:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        yield client


async def test_a_key_is_shown_once_and_stored_as_a_hash(http, tenant):
    r, key = await create(http, tenant)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/api/v1/api-keys/{key['id']}"
    assert r.headers["cache-control"] == "no-store"
    secret = key["key"]
    assert secret.startswith(f"gwk_{key['key_id']}_")
    assert key["scope"] == "products:read"

    listed = (await http.get("/api/v1/api-keys", headers=admin(tenant))).json()["data"]
    got = (await http.get(f"/api/v1/api-keys/{key['id']}", headers=admin(tenant))).json()["data"]
    for shown in (*listed, got):
        assert "key" not in shown
        assert "secret_hash" not in shown
    assert [k["id"] for k in listed] == [key["id"]]

    row = await ApiKey.get(id=key["id"])
    stored = " ".join(str(v) for v in (await ApiKey.filter(id=row.id).values())[0].values())
    assert secret.rsplit("_", 1)[1] not in stored
    assert row.secret_hash != secret


async def test_a_key_acts_within_its_scopes(http, tenant):
    product = await make_product(tenant.owner)
    _, key = await create(http, tenant, scopes=["products:read"])
    headers = {"X-API-Key": key["key"]}
    r = await http.get(f"/api/v1/products/{product['id']}", headers=headers)
    assert r.status_code == 200
    assert_problem(await http.get("/api/v1/orders", headers=headers), 403, "PERMISSION_DENIED")
    patch = await http.patch(
        f"/api/v1/products/{product['id']}", json={"stock": 1}, headers=headers
    )
    assert_problem(patch, 403, "PERMISSION_DENIED")
    # no key manages keys, whatever it holds
    assert_problem(await http.get("/api/v1/api-keys", headers=headers), 403, "PERMISSION_DENIED")


async def test_revoking_takes_effect_at_once(http, tenant):
    _, key = await create(http, tenant)
    headers = {"X-API-Key": key["key"]}
    assert (await http.get("/api/v1/products", headers=headers)).status_code == 200  # now cached
    r = await http.delete(f"/api/v1/api-keys/{key['id']}", headers=admin(tenant))
    assert r.status_code == 204
    denied = await http.get("/api/v1/products", headers=headers)
    assert_problem(denied, 401, "UNAUTHENTICATED")
    assert 'error="invalid_token"' in denied.headers["www-authenticate"]
    shown = (await http.get(f"/api/v1/api-keys/{key['id']}", headers=admin(tenant))).json()
    assert shown["data"]["revoked_at"] is not None
    again = await http.delete(f"/api/v1/api-keys/{key['id']}", headers=admin(tenant))
    assert again.status_code == 204


async def test_an_expired_key_is_refused(http, tenant):
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r, key = await create(http, tenant, expires_at=soon)
    assert r.status_code == 201
    assert key["expires_at"] is not None
    await ApiKey.filter(id=key["id"]).update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    denied = await http.get("/api/v1/products", headers={"X-API-Key": key["key"]})
    assert_problem(denied, 401, "UNAUTHENTICATED")


@pytest.mark.parametrize(
    "key",
    ["gwk_", "gwk_abc", "gwk_abc_def", "not-a-key", "gwk_" + "a" * 500 + "_x"],
)
async def test_malformed_and_unknown_keys_are_401(http, key):
    assert_problem(
        await http.get("/api/v1/products", headers={"X-API-Key": key}), 401, "UNAUTHENTICATED"
    )


async def test_a_key_from_another_organization_is_not_found(http, tenant, other_tenant):
    _, key = await create(http, tenant)
    r = await http.get(f"/api/v1/api-keys/{key['id']}", headers=admin(other_tenant))
    assert_problem(r, 404, "NOT_FOUND")
    gone = await http.delete(f"/api/v1/api-keys/{key['id']}", headers=admin(other_tenant))
    assert_problem(gone, 404, "NOT_FOUND")
    assert (
        await http.get("/api/v1/products", headers={"X-API-Key": key["key"]})
    ).status_code == 200


async def test_only_admins_manage_keys_and_never_beyond_their_own_scopes(http, tenant):
    for role in ("staff", "viewer"):
        token = TOKENS.mint(tenant.id, role)
        r = await http.post(
            "/api/v1/api-keys", json={"name": "k", "scopes": ["products:read"]},
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
        assert_problem(r, 403, "PERMISSION_DENIED")
    narrow = admin(tenant, ["api-keys:admin", "products:read"])
    r = await http.post(
        "/api/v1/api-keys", json={"name": "k", "scopes": ["orders:write"]}, headers=narrow
    )
    assert_problem(r, 422, "VALIDATION_ERROR")
    assert await ApiKey.filter(organization_id=tenant.id).count() == 0


@pytest.mark.parametrize(
    "body",
    [
        {"name": "k", "scopes": ["api-keys:admin"]},
        {"name": "k", "scopes": ["everything"]},
        {"name": "k", "scopes": []},
        {"name": "", "scopes": ["products:read"]},
        {"name": "k", "scopes": "products:read"},
        {"name": "k", "scopes": ["products:read"], "expires_at": "2000-01-01T00:00:00Z"},
        {"name": "k", "scopes": ["products:read"], "expires_at": "2030-01-01T00:00:00"},
        {"name": "k", "scopes": ["products:read"], "expires_at": "soon"},
        {"name": "k", "scopes": ["products:read"], "organization_id": 1},
        {"name": "k", "scopes": ["products:read"], "key_id": "mine"},
        {"scopes": ["products:read"]},
    ],
)
async def test_bad_input_is_a_clear_error_and_creates_nothing(http, tenant, body):
    r = await http.post("/api/v1/api-keys", json=body, headers=admin(tenant))
    assert_problem(r, 422, "VALIDATION_ERROR")
    assert r.json()["errors"]
    assert await ApiKey.filter(organization_id=tenant.id).count() == 0
