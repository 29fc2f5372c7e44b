"""Tokens from another OAuth2/OIDC provider, configured by issuer URL and JWKS.

A second key pair plays the external identity provider: its JWKS is served by a
small HTTP server on the port the session's settings point at
(``tests/conftest.py``). The gateway maps the provider's claims to a Principal by
configuration (organization slug from ``tenant``, scopes from ``scp``, role from
``gw_role``), fetches the JWKS again when a token names an unknown ``kid`` (at most
every ``REFETCH_SECONDS``) and rejects what the provider did not sign for us.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.auth import external
from tests.conftest import EXTERNAL_AUDIENCE, EXTERNAL_ISSUER, EXTERNAL_JWKS_PORT
from tests.factories import make_product


@dataclass
class Provider:
    """The external identity provider: its keys, and how often its JWKS was fetched."""

    keys: dict[str, Any] = field(default_factory=dict)
    fetches: int = 0
    signing_kid: str = ""

    def add_key(self, algorithm: str = "RS256") -> str:
        kid = f"idp-{secrets.token_hex(4)}"
        if algorithm == "RS256":
            private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            private = ec.generate_private_key(ec.SECP256R1())
        self.keys[kid] = (algorithm, private)
        self.signing_kid = kid
        return kid

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid, (algorithm, private) in self.keys.items():
            cls = (
                jwt.algorithms.RSAAlgorithm if algorithm == "RS256" else jwt.algorithms.ECAlgorithm
            )
            jwk = cls.to_jwk(private.public_key(), as_dict=True)
            out.append({**jwk, "kid": kid, "alg": algorithm, "use": "sig"})
        return {"keys": out}

    def token(self, tenant_slug: str | None, kid: str | None = None, **overrides: Any) -> str:
        kid = kid or self.signing_kid
        algorithm, private = self.keys[kid]
        now = int(time.time())
        claims = {
            "iss": EXTERNAL_ISSUER, "aud": EXTERNAL_AUDIENCE, "sub": "alice@idp",
            "tenant": tenant_slug, "scp": "products:read products:write", "gw_role": "staff",
            "iat": now, "exp": now + 300, "jti": secrets.token_hex(8),
        }  # fmt: skip
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(
            claims, private, algorithm=algorithm, headers={"kid": kid, "typ": "at+jwt"}
        )


@pytest.fixture(scope="module")
async def provider() -> AsyncIterator[Provider]:
    idp = Provider()
    idp.add_key("RS256")

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        idp.fetches += 1
        body = json.dumps(idp.jwks()).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", EXTERNAL_JWKS_PORT)
    try:
        yield idp
    finally:
        server.close()
        await server.wait_closed()


async def get(server: Any, token: str, path: str = "/api/v1/products") -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        return await http.get(path, headers={"Authorization": f"Bearer {token}"})


async def test_an_external_token_becomes_a_principal_of_the_mapped_organization(
    server, tenant, provider
):
    product = await make_product(tenant.owner)
    r = await get(server, provider.token(tenant.slug))
    assert r.status_code == 200, r.text
    assert [row["id"] for row in r.json()["data"]] == [product["id"]]
    # scopes come from `scp`: products only
    assert (await get(server, provider.token(tenant.slug), "/api/v1/orders")).status_code == 403
    # the role comes from `gw_role`: a viewer may not write even with a write scope
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        body = {"sku": "EXT-1", "name": "n", "price_cents": 1, "stock": 1}
        as_viewer = provider.token(tenant.slug, gw_role="viewer")
        r = await http.post(
            "/api/v1/products", json=body, headers={"Authorization": f"Bearer {as_viewer}"}
        )
        assert r.status_code == 403
        as_staff = provider.token(tenant.slug)
        r = await http.post(
            "/api/v1/products", json=body, headers={"Authorization": f"Bearer {as_staff}"}
        )
        assert r.status_code == 201, r.text


async def test_an_external_token_cannot_claim_owner(server, tenant, provider):
    """``owner`` from a foreign provider falls back to the configured default (viewer)."""
    token = provider.token(tenant.slug, gw_role="owner", scp="api-keys:admin products:write")
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        r = await http.get("/api/v1/api-keys", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403


async def test_an_external_token_does_not_reach_another_organization(
    server, tenant, other_tenant, provider
):
    theirs = await make_product(other_tenant.owner)
    r = await get(server, provider.token(tenant.slug), f"/api/v1/products/{theirs['id']}")
    assert r.status_code == 404


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "someone-else"},
        {"iss": "https://idp.example.test/other/"},
        {"exp": int(time.time()) - 600},
        {"tenant": None},
        {"tenant": "no-such-organization"},
        {"tenant": "x" * 300},
    ],
    ids=["wrong-aud", "wrong-iss", "expired", "no-org-claim", "unknown-org", "over-long-org"],
)
async def test_external_tokens_that_do_not_hold_are_rejected(server, tenant, provider, overrides):
    r = await get(server, provider.token(tenant.slug, **overrides))
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


async def test_an_unsigned_or_self_signed_token_naming_the_issuer_is_rejected(
    server, tenant, provider
):
    forged = Provider()
    forged.add_key("RS256")
    forged.keys[provider.signing_kid] = forged.keys.pop(forged.signing_kid)  # same kid
    assert (
        await get(server, forged.token(tenant.slug, kid=provider.signing_kid))
    ).status_code == 401


async def test_a_rotated_provider_key_is_fetched_on_first_sight_and_fetches_are_limited(
    server, tenant, provider, monkeypatch
):
    assert (await get(server, provider.token(tenant.slug))).status_code == 200
    monkeypatch.setattr(external, "REFETCH_SECONDS", 0.5)
    await asyncio.sleep(0.6)

    new_kid = provider.add_key("ES256")  # the provider rotates; the gateway has never seen it
    before = provider.fetches
    r = await get(server, provider.token(tenant.slug))
    assert r.status_code == 200, r.text
    assert provider.fetches == before + 1

    # unknown kids do not turn every request into a JWKS fetch
    bogus = provider.token(tenant.slug, kid=new_kid)
    _header, payload, signature = bogus.split(".")
    unknown = jwt.utils.base64url_encode(
        json.dumps({"alg": "ES256", "kid": "never-published", "typ": "at+jwt"}).encode()
    ).decode()
    statuses = [
        (await get(server, f"{unknown}.{payload}.{signature}")).status_code for _ in range(5)
    ]
    assert statuses == [401] * 5
    assert provider.fetches <= before + 2
