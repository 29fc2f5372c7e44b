"""The resource server's side of auth, probed through the running gateway.

Tests send real HTTP to ``GET /api/v1/products`` (or a neighbour) on the session
server (and ask ``TokenService.principal`` where the claim mapping itself is the
point). Tokens are built with PyJWT and ``cryptography``: when a valid signature
is needed it is made with the server's own signing key, so a forgery differs from
an accepted token in the one flaw under test.

1. Forged and broken access tokens are a 401 problem (``UNAUTHENTICATED``) with
   ``WWW-Authenticate: Bearer ... error="invalid_token"``; no credentials at all
   is a 401 challenge without an error.
2. Rotating the signing key: new tokens carry the new ``kid``, the JWKS lists the
   new and the previous key, and tokens of the previous key keep working until
   they expire.
3. Two external issuers (``tests/conftest.py``: one maps the organization from a
   claim, one pins it by configuration), served by a JWKS server of this module:
   claims become a Principal, unknown ``kid``s refetch the JWKS at most once per
   window, and nothing crosses issuers or organizations.
4. Security events are logged with the request id and never with a credential.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from db.accounts import create_client, create_user
from db.api_keys import ApiKeyInput, create_api_key
from db.organizations import create_organization, find_organization_id
from db.principal import Principal
from gateway.auth import external
from gateway.auth import tokens as tokens_module
from gateway.auth.keys import rotate
from gateway.logs import JsonFormatter, request_id_var
from tests.conftest import (
    PARTNER_AUDIENCE,
    PARTNER_ISSUER,
    PARTNER_JWKS_PORT,
    PINNED_AUDIENCE,
    PINNED_ISSUER,
    PINNED_ORGANIZATION,
)
from tests.factories import assert_problem, make_product, unique

PROBE = "/api/v1/products"
ROLE_CLAIM = "https://gateway.test/role"  # the partner issuer's role claim (conftest)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: Any) -> str:
    return b64(json.dumps(value).encode())


def request_id() -> str:
    return unique(f"tok-{secrets.token_hex(3)}-")


def our_claims(server: Any, organization_id: int, **overrides: Any) -> dict[str, Any]:
    """The claims the token endpoint issues; an override of None drops the claim."""
    tokens = server.app.ctx.auth.tokens
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": tokens.issuer,
        "sub": "user:probe",
        "aud": tokens.audience,
        "client_id": "tests",
        "scope": "products:read",
        "org": organization_id,
        "roles": ["staff"],
        "jti": secrets.token_urlsafe(12),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def jws(header: dict[str, Any], claims: dict[str, Any], private: Any) -> str:
    """A compact JWS with exactly ``header`` (PyJWT would add or vet header fields)."""
    signing_input = f"{segment(header)}.{segment(claims)}".encode()
    signature = jwt.get_algorithm_by_name(header["alg"]).sign(signing_input, private)
    return f"{signing_input.decode()}.{b64(signature)}"


def sign(server: Any, claims: dict[str, Any], **header: Any) -> str:
    """``claims`` signed with the server's current key; a header value of None drops it."""
    key = server.app.ctx.auth.tokens.keys.signing_key
    fields = {"alg": key.algorithm, "typ": "at+jwt", "kid": key.kid, **header}
    return jws({k: v for k, v in fields.items() if v is not None}, claims, key.private)


async def call(
    server: Any,
    token: str | None,
    *,
    path: str = PROBE,
    rid: str | None = None,
    method: str = "GET",
    json_body: Any = None,
) -> httpx.Response:
    headers = {"X-Request-ID": rid} if rid else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        return await http.request(method, path, headers=headers, json=json_body)


async def assert_rejected(server: Any, token: str, path: str = PROBE) -> dict[str, Any]:
    """``token`` is refused as an invalid token (a 401 problem carrying our request id)."""
    rid = request_id()
    r = await call(server, token, path=path, rid=rid)
    body = assert_problem(r, 401, "UNAUTHENTICATED", request_id=rid)
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Bearer "), challenge
    assert 'error="invalid_token"' in challenge, challenge
    return body


async def assert_accepted(server: Any, token: str, path: str = PROBE) -> httpx.Response:
    r = await call(server, token, path=path)
    assert r.status_code == 200, r.text
    return r


# --- 1. token attacks ---------------------------------------------------------------------


async def test_the_unaltered_control_token_is_accepted_for_its_organization(
    server, tenant, other_tenant
):
    """The baseline every forgery below departs from in one thing only."""
    mine = await make_product(tenant.owner)
    await make_product(other_tenant.owner)
    r = await assert_accepted(server, sign(server, our_claims(server, tenant.id)))
    assert [row["id"] for row in r.json()["data"]] == [mine["id"]]


async def test_alg_none_is_rejected_in_every_spelling(server, tenant):
    kid = server.app.ctx.auth.tokens.keys.signing_key.kid
    body = segment(our_claims(server, tenant.id))
    real_signature = sign(server, our_claims(server, tenant.id)).split(".")[2]
    for alg in ("none", "None", "NONE", "nOnE"):
        header = segment({"alg": alg, "typ": "at+jwt", "kid": kid})
        await assert_rejected(server, f"{header}.{body}.")
        await assert_rejected(server, f"{header}.{body}.{real_signature}")


def _public_key_forms(server: Any, served_jwk: dict[str, Any]) -> list[bytes]:
    """Our public key as an attacker could find it: PEM, DER, and JWK as JSON."""
    key = server.app.ctx.auth.tokens.keys.signing_key
    pem = key.public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    der = key.public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk = key.jwk()
    return [
        pem,
        pem.strip(),
        der,
        json.dumps(jwk).encode(),
        json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode(),
        json.dumps(served_jwk).encode(),
        json.dumps(served_jwk, separators=(",", ":")).encode(),
    ]


async def test_hmac_keyed_with_our_public_key_is_rejected(server, tenant, anon):
    """Algorithm confusion: HS256 with the public key (PEM or JWK form) as the secret."""
    key = server.app.ctx.auth.tokens.keys.signing_key
    served = (await anon.get("/.well-known/jwks.json")).json()["keys"]
    served_jwk = next(k for k in served if k["kid"] == key.kid)
    body = segment(our_claims(server, tenant.id))
    digests = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
    for secret in _public_key_forms(server, served_jwk):
        for alg, digest in digests.items():
            signing_input = f"{segment({'alg': alg, 'typ': 'at+jwt', 'kid': key.kid})}.{body}"
            mac = hmac.new(secret, signing_input.encode(), digest).digest()
            await assert_rejected(server, f"{signing_input}.{b64(mac)}")


async def test_a_wrong_unknown_or_missing_kid_is_rejected(server, tenant):
    claims = our_claims(server, tenant.id)
    for kid in ("nope", "", "../../../../dev/null", "' OR '1'='1", 123, ["a"], None):
        await assert_rejected(server, sign(server, claims, kid=kid))


async def test_keys_the_token_brings_along_are_not_trusted(server, tenant):
    """A stranger's key: under our kid, under its own kid, or embedded as jwk/jku."""
    ours = server.app.ctx.auth.tokens.keys.signing_key.kid
    stranger = ec.generate_private_key(ec.SECP256R1())
    stranger_jwk = {**jwt.algorithms.ECAlgorithm.to_jwk(stranger.public_key(), as_dict=True)}
    claims = our_claims(server, tenant.id)
    variants: list[dict[str, Any]] = [
        {"kid": ours},
        {"kid": "stranger"},
        {"kid": ours, "jwk": stranger_jwk},
        {"kid": "stranger", "jwk": {**stranger_jwk, "kid": "stranger"}},
        {"kid": "stranger", "jku": f"http://127.0.0.1:{PARTNER_JWKS_PORT}/stranger/jwks"},
    ]
    for header in variants:
        await assert_rejected(
            server, jws({"alg": "ES256", "typ": "at+jwt", **header}, claims, stranger)
        )


@pytest.mark.parametrize(
    "change",
    [
        {"iss": "https://evil.example"},
        {"iss": "ISSUER/"},
        {"iss": None},
        {"aud": "another-api"},
        {"aud": ["another-api", "yet-another"]},
        {"aud": None},
        {"exp": -60},
        {"exp": -3600},
        {"exp": None},
        {"nbf": +60},
        {"nbf": +3600},
        {"sub": None},
        {"iat": None},
        {"org": None},
        {"roles": None},
    ],
    ids=[
        "wrong-iss",
        "iss-with-slash",
        "no-iss",
        "wrong-aud",
        "aud-list-without-ours",
        "no-aud",
        "expired-beyond-leeway",
        "expired-long-ago",
        "no-exp",
        "nbf-beyond-leeway",
        "nbf-far-future",
        "no-sub",
        "no-iat",
        "no-org",
        "no-roles",
    ],
)
async def test_claims_that_do_not_hold_are_rejected(server, tenant, change):
    now = int(time.time())
    overrides = dict(change)
    for name in ("exp", "nbf"):
        if overrides.get(name) is not None:
            overrides[name] = now + overrides[name]
    if overrides.get("iss") == "ISSUER/":
        overrides["iss"] = server.app.ctx.auth.tokens.issuer + "/"
    claims = our_claims(server, tenant.id, **overrides)
    for name, value in change.items():
        if value is None:
            assert name not in claims
    await assert_rejected(server, sign(server, claims))


async def test_the_leeway_is_thirty_seconds_not_more(server, tenant):
    """Within the 30 s leeway a token is fine; just beyond it, it is not."""
    now = int(time.time())
    await assert_accepted(server, sign(server, our_claims(server, tenant.id, exp=now - 15)))
    await assert_accepted(server, sign(server, our_claims(server, tenant.id, nbf=now + 15)))
    await assert_rejected(server, sign(server, our_claims(server, tenant.id, exp=now - 45)))
    await assert_rejected(server, sign(server, our_claims(server, tenant.id, nbf=now + 45)))


async def test_an_accepted_token_stops_working_when_it_expires(server, tenant, monkeypatch):
    """Verified tokens are cached; the cache must not outlive the token (leeway shrunk to 1 s)."""
    monkeypatch.setattr(tokens_module, "LEEWAY", 1)
    exp = int(time.time()) + 2
    token = sign(server, our_claims(server, tenant.id, exp=exp))
    await assert_accepted(server, token)
    await asyncio.sleep(max(0.0, exp + 1.3 - time.time()))
    await assert_rejected(server, token)


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "id+jwt", "at+jwe", "logout+jwt"])
async def test_only_access_token_typ_is_accepted(server, tenant, typ):
    claims = our_claims(server, tenant.id)
    await assert_rejected(server, sign(server, claims, typ=typ))


async def test_both_registered_access_token_typs_are_accepted(server, tenant):
    for typ in ("at+jwt", "application/at+jwt"):
        await assert_accepted(server, sign(server, our_claims(server, tenant.id), typ=typ))


async def test_a_tampered_token_is_rejected(server, tenant, other_tenant):
    """Claims changed after signing (more scope, another organization, longer life)."""
    await make_product(other_tenant.owner)
    claims = our_claims(server, tenant.id)
    token = sign(server, claims)
    await assert_accepted(server, token)
    header, payload, signature = token.split(".")
    changes: list[dict[str, Any]] = [
        {"scope": "products:read products:write"},
        {"scope": "*", "roles": ["owner"]},
        {"org": other_tenant.id},
        {"exp": claims["exp"] + 86_400},
        {"sub": "user:admin"},
    ]
    for change in changes:
        await assert_rejected(server, f"{header}.{segment({**claims, **change})}.{signature}")
    # the signature or header itself altered
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    await assert_rejected(server, f"{header}.{payload}.{flipped}")
    await assert_rejected(server, f"{header}.{payload}.")
    await assert_rejected(server, f"{header}.{payload}.{signature[:-10]}")
    loose = segment(jwt.get_unverified_header(token) | {"x": 1})
    await assert_rejected(server, f"{loose}.{payload}.{signature}")


@pytest.mark.parametrize(
    "garbage",
    [
        "abc",
        "a.b.c",
        "..",
        "...",
        "e30.e30.e30",
        "e30.e30.",
        "bnVsbA.bnVsbA.bnVsbA",
        "W10.W10.W10",
        "eyJhbGciOiJFUzI1NiJ9",
        "a.b.c.d.e",
        "%%%.%%%.%%%",
        "x" * 4000,
    ],
)
async def test_garbage_is_an_invalid_token(server, garbage):
    await assert_rejected(server, garbage)


async def test_a_jwe_shaped_token_is_rejected(server, tenant):
    token = sign(server, our_claims(server, tenant.id))
    await assert_rejected(server, token + ".e30.e30")


async def test_no_credentials_is_a_challenge_without_an_error(server):
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}):
        rid = request_id()
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            r = await http.get(PROBE, headers={**headers, "X-Request-ID": rid})
        assert_problem(r, 401, "UNAUTHENTICATED", request_id=rid)
        challenge = r.headers["www-authenticate"]
        assert challenge.startswith("Bearer"), challenge
        assert "error=" not in challenge, (headers, challenge)


async def _client_credentials_token(server: Any, client_id: str, secret: str) -> str:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        r = await http.post(
            "/oauth/token",
            auth=(client_id, secret),
            data={"grant_type": "client_credentials", "scope": "products:read"},
        )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


async def test_a_token_revoked_by_its_client_is_rejected_even_once_cached(server, tenant):
    issuer = await create_client(
        tenant.id, unique("issuer"), grant_types=["client_credentials"], scopes=["products:read"]
    )
    bystander = await create_client(
        tenant.id, unique("bystander"), grant_types=["client_credentials"], scopes=["products:read"]
    )
    assert issuer.secret
    assert bystander.secret
    token = await _client_credentials_token(server, issuer.client.client_id, issuer.secret)
    await assert_accepted(server, token)  # verified once: now served from the cache

    async with httpx.AsyncClient(base_url=server.base_url) as http:
        form = {"token": token, "token_type_hint": "access_token"}
        # neither a wrong secret nor another client of the same organization can revoke it
        r = await http.post("/oauth/revoke", auth=(issuer.client.client_id, "wrong"), data=form)
        assert r.status_code == 401, r.text
        await http.post(
            "/oauth/revoke", auth=(bystander.client.client_id, bystander.secret), data=form
        )
        await assert_accepted(server, token)
        # the client it was issued to can
        r = await http.post(
            "/oauth/revoke", auth=(issuer.client.client_id, issuer.secret), data=form
        )
        assert r.status_code == 200, r.text
    await assert_rejected(server, token)
    # a new token of the same client is unaffected
    await assert_accepted(
        server, await _client_credentials_token(server, issuer.client.client_id, issuer.secret)
    )


async def test_a_jti_on_the_denylist_is_rejected(server, tenant):
    tokens = server.app.ctx.auth.tokens
    claims = our_claims(server, tenant.id)
    token = sign(server, claims)
    unseen = sign(server, our_claims(server, tenant.id, jti=claims["jti"] + "x"))
    await assert_accepted(server, token)
    await tokens.denylist.deny(claims["jti"], claims["exp"])
    await assert_rejected(server, token)
    await assert_rejected(server, sign(server, claims))  # same jti, never cached
    await assert_accepted(server, unseen)


# --- 2. key rotation ----------------------------------------------------------------------


async def test_rotation_reaches_the_server_and_keeps_previous_tokens_until_they_expire(
    server, settings, tenant, anon, monkeypatch
):
    tokens = server.app.ctx.auth.tokens
    ring = tokens.keys
    previous = ring.signing_key
    long_lived = sign(server, our_claims(server, tenant.id))  # never presented before rotation
    short_exp = int(time.time()) + 4
    short_lived = sign(server, our_claims(server, tenant.id, exp=short_exp))

    # Rotate as the CLI would, from outside this worker: only the database changes.
    row = await rotate(settings.jwt_algorithm)
    assert row.kid != previous.kid
    new_private = serialization.load_pem_private_key(row.private_pem.encode(), password=None)
    header = {"alg": row.algorithm, "typ": "at+jwt", "kid": row.kid}
    from_new_key = jws(header, our_claims(server, tenant.id), new_private)
    # An unknown kid reloads the key ring (at most every 5 s): wait out that window.
    await asyncio.sleep(max(0.0, 5.1 - (time.monotonic() - ring._loaded_at)))
    await assert_accepted(server, from_new_key)

    # New tokens now carry the new kid ...
    assert ring.signing_key.kid == row.kid
    issued, _ = tokens.issue(
        subject="user:after",
        organization_id=tenant.id,
        client_id="tests",
        scopes=["products:read"],
        roles=["viewer"],
    )
    assert jwt.get_unverified_header(issued)["kid"] == row.kid
    await assert_accepted(server, issued)

    # ... the JWKS publishes both public keys, and nothing private ...
    r = await anon.get("/.well-known/jwks.json")
    assert r.status_code == 200
    published = {key["kid"]: key for key in r.json()["keys"]}
    assert {previous.kid, row.kid} <= published.keys()
    assert published[previous.kid] == previous.jwk()
    for key in published.values():
        assert not {"d", "p", "q", "dp", "dq", "qi"} & key.keys(), key
    jwks_key = jwt.PyJWK(published[row.kid])
    assert jwt.decode(issued, jwks_key, algorithms=[row.algorithm], audience=tokens.audience)

    # ... and tokens signed by the previous key still work, until they expire.
    await assert_accepted(server, long_lived)
    await assert_accepted(server, short_lived)
    monkeypatch.setattr(tokens_module, "LEEWAY", 1)
    await asyncio.sleep(max(0.0, short_exp + 1.3 - time.time()))
    await assert_rejected(server, short_lived)
    await assert_accepted(server, long_lived)
    # A forgery under the retired kid is still a forgery.
    await assert_rejected(
        server, sign(server, our_claims(server, tenant.id), kid=previous.kid)
    )  # signed by the new key, named as the old one


# --- 3. external issuers ------------------------------------------------------------------


@dataclass
class Provider:
    """An identity provider of our own making: its keys and the JWKS requests it saw."""

    issuer: str
    audience: str
    keys: dict[str, tuple[str, Any]] = field(default_factory=dict)  # published
    withdrawn: dict[str, tuple[str, Any]] = field(default_factory=dict)
    signing_kid: str = ""
    fetches: list[float] = field(default_factory=list)  # monotonic times of JWKS requests
    broken: bytes | None = None  # a raw HTTP response to serve instead of the JWKS
    extra: list[Any] = field(default_factory=list)  # more (odd) entries for the JWKS

    def add_key(self, algorithm: str, *, sign_with: bool = True) -> str:
        kid = f"{algorithm.lower()}-{secrets.token_hex(4)}"
        private: Any = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if algorithm == "RS256"
            else ec.generate_private_key(ec.SECP256R1())
        )
        self.keys[kid] = (algorithm, private)
        if sign_with:
            self.signing_kid = kid
        return kid

    def rotate(self) -> tuple[str, str]:
        """A new signing key; the old one leaves the JWKS (the provider withdrew it)."""
        old = self.signing_kid
        new = self.add_key(self.keys[old][0])
        self.withdrawn[old] = self.keys.pop(old)
        return old, new

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid, (algorithm, private) in self.keys.items():
            cls = (
                jwt.algorithms.RSAAlgorithm if algorithm == "RS256" else jwt.algorithms.ECAlgorithm
            )
            jwk = cls.to_jwk(private.public_key(), as_dict=True)
            out.append({**jwk, "kid": kid, "alg": algorithm, "use": "sig"})
        return {"keys": out + self.extra}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": "alice",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": secrets.token_hex(8),
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, *, kid: str | None = None, header_kid: str | None = None, **claims: Any) -> str:
        kid = kid or self.signing_kid
        algorithm, private = {**self.withdrawn, **self.keys}[kid]
        header = {"alg": algorithm, "typ": "at+jwt", "kid": header_kid or kid}
        return jws(header, self.claims(**claims), private)

    async def quiet_for(self, seconds: float) -> None:
        """Wait until no JWKS request came for ``seconds`` (the gateway's refetch window)."""
        if self.fetches:
            await asyncio.sleep(max(0.0, self.fetches[-1] + seconds + 0.1 - time.monotonic()))


@dataclass
class IdentityProviders:
    partner: Provider
    pinned: Provider
    pinned_org: int


@pytest.fixture(scope="module")
async def idp(server) -> AsyncIterator[IdentityProviders]:
    """The JWKS server both external issuers of the settings point at (started lazily)."""
    partner = Provider(PARTNER_ISSUER, PARTNER_AUDIENCE)
    partner.add_key("RS256", sign_with=False)  # published, but this issuer only allows ES256
    partner.add_key("ES256")
    pinned = Provider(PINNED_ISSUER, PINNED_AUDIENCE)
    pinned.add_key("RS256")
    by_path = {"/partner/jwks": partner, "/pinned/jwks": pinned}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            provider = by_path.get(path)
            if provider is None:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            elif provider.broken is not None:
                provider.fetches.append(time.monotonic())
                writer.write(provider.broken)
            else:
                provider.fetches.append(time.monotonic())
                body = json.dumps(provider.jwks()).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
            await writer.drain()
        finally:
            writer.close()

    jwks_server = await asyncio.start_server(serve, "127.0.0.1", PARTNER_JWKS_PORT)
    org_id = await find_organization_id(PINNED_ORGANIZATION)
    if org_id is None:
        org_id = (await create_organization(slug=PINNED_ORGANIZATION, name="Pinned partner"))["id"]
    try:
        yield IdentityProviders(partner=partner, pinned=pinned, pinned_org=org_id)
    finally:
        jwks_server.close()
        await jwks_server.wait_closed()


def partner_token(idp: IdentityProviders, slug: str, **claims: Any) -> str:
    defaults = {"org_slug": slug, "permissions": ["products:read"], ROLE_CLAIM: "staff"}
    return idp.partner.token(**{**defaults, **claims})


async def test_partner_claims_become_a_principal_by_configuration(server, tenant, idp):
    tokens = server.app.ctx.auth.tokens
    token = partner_token(
        idp, tenant.slug, permissions=["products:read", "products:write"], **{ROLE_CLAIM: "admin"}
    )
    principal = await tokens.principal(token)
    assert principal == Principal(
        subject=f"{PARTNER_ISSUER}#alice",
        organization_id=tenant.id,
        scopes=frozenset({"products:read", "products:write"}),
        roles=frozenset({"admin"}),
        credential_id=principal.credential_id,
        expires_at=principal.expires_at,
    )
    # space-separated scopes work too; the role falls back to default_role (viewer) when it is
    # missing, unknown, or owner (an outside provider does not make owners)
    for role in (None, "superuser", "owner"):
        other = await tokens.principal(
            partner_token(
                idp, tenant.slug, permissions="products:read orders:read", **{ROLE_CLAIM: role}
            )
        )
        assert other.roles == frozenset({"viewer"}), role
        assert other.scopes == frozenset({"products:read", "orders:read"})
        assert other.organization_id == tenant.id


@pytest.mark.parametrize(
    "claims",
    [
        {ROLE_CLAIM: ["admin"]},
        {ROLE_CLAIM: {"name": "admin"}},
        {ROLE_CLAIM: 7},
        {"permissions": 42},
        {"permissions": {"products:read": False}},
        {"permissions": True},
        {"permissions": [{"products": "read"}]},
    ],
    ids=[
        "role-list",
        "role-object",
        "role-number",
        "scope-number",
        "scope-object",
        "scope-bool",
        "scope-list-of-objects",
    ],
)
async def test_odd_claim_shapes_from_a_provider_grant_nothing_extra(server, tenant, idp, claims):
    """A trusted provider's unexpected claim types are not a 500: an odd role is the
    default role (viewer), an odd scope claim grants no scope."""
    r = await call(server, partner_token(idp, tenant.slug, **claims))
    tokens = server.app.ctx.auth.tokens
    principal = await tokens.principal(partner_token(idp, tenant.slug, **claims))
    if ROLE_CLAIM in claims:
        assert r.status_code == 200, r.text
        assert principal.roles == frozenset({"viewer"})
    else:
        assert_problem(r, 403, "PERMISSION_DENIED")
        assert principal.scopes == frozenset()


async def test_a_partner_token_reads_and_writes_only_what_it_was_granted(server, tenant, idp):
    mine = await make_product(tenant.owner)
    reader = partner_token(idp, tenant.slug)
    r = await assert_accepted(server, reader)
    assert [row["id"] for row in r.json()["data"]] == [mine["id"]]
    assert_problem(await call(server, reader, path="/api/v1/orders"), 403, "PERMISSION_DENIED")
    body = {"sku": unique("EXT-"), "name": "from the partner", "price_cents": 5, "stock": 1}
    r = await call(server, reader, method="POST", json_body=body)
    assert_problem(r, 403, "PERMISSION_DENIED")
    viewer = partner_token(idp, tenant.slug, permissions=["products:write"], **{ROLE_CLAIM: None})
    r = await call(server, viewer, method="POST", json_body=body)
    assert_problem(r, 403, "PERMISSION_DENIED")
    writer = partner_token(idp, tenant.slug, permissions=["products:write"])
    r = await call(server, writer, method="POST", json_body=body)
    assert r.status_code == 201, r.text
    created = r.json()["data"]["id"]
    assert (await tenant.client.get(f"/api/v1/products/{created}")).status_code == 200


async def test_external_tokens_cannot_reach_another_organization(server, tenant, other_tenant, idp):
    theirs = await make_product(other_tenant.owner)
    path = f"/api/v1/products/{theirs['id']}"
    partner = partner_token(idp, tenant.slug, permissions=["products:read", "products:write"])
    pinned = idp.pinned.token(scope="products:read products:write")
    for token in (partner, pinned):
        assert_problem(await call(server, token, path=path), 404, "NOT_FOUND")
        r = await call(server, token, path=path, method="PATCH", json_body={"name": "mine now"})
        assert_problem(r, 404, "NOT_FOUND")
        listed = (await assert_accepted(server, token)).json()["data"]
        assert theirs["id"] not in [row["id"] for row in listed]
    unchanged = (await other_tenant.client.get(path)).json()["data"]
    assert unchanged["name"] == theirs["name"]


async def test_a_pinned_issuer_ignores_organization_claims(server, other_tenant, idp):
    """``organization`` in the configuration wins over anything the token says."""
    pinned_owner = Principal(
        subject="test-owner",
        organization_id=idp.pinned_org,
        scopes=frozenset({"*"}),
        roles=frozenset({"owner"}),
    )
    product = await make_product(pinned_owner)
    token = idp.pinned.token(
        scope="products:read",
        org=other_tenant.id,
        org_slug=other_tenant.slug,
        tenant=other_tenant.slug,
        organization=other_tenant.slug,
    )
    principal = await server.app.ctx.auth.tokens.principal(token)
    assert principal.organization_id == idp.pinned_org
    assert principal.roles == frozenset({"staff"})  # the configured default role
    assert principal.subject == f"{PINNED_ISSUER.rstrip('/')}#alice"
    rows = (await assert_accepted(server, token)).json()["data"]
    assert product["id"] in [row["id"] for row in rows]


@pytest.mark.parametrize(
    "change",
    [
        {"aud": "someone-else"},
        {"aud": "commerce-gateway"},
        {"aud": PINNED_AUDIENCE},
        {"aud": None},
        {"iss": PARTNER_ISSUER + "/tenant2"},
        {"iss": "https://login.partner.test.evil.example"},
        {"iss": "http://login.partner.test"},
        {"exp": -3600},
        {"nbf": +3600},
        {"sub": None},
        {"sub": 1234},
        {"org_slug": None},
        {"org_slug": "no-such-organization"},
        {"org_slug": 42},
    ],
    ids=[
        "wrong-aud",
        "our-own-aud",
        "other-issuers-aud",
        "no-aud",
        "wrong-iss",
        "lookalike-iss",
        "http-iss",
        "expired",
        "not-yet-valid",
        "no-sub",
        "sub-not-a-string",
        "no-org",
        "unknown-org",
        "org-not-slug",
    ],
)
async def test_external_tokens_that_do_not_hold_are_rejected(server, tenant, idp, change):
    overrides = dict(change)
    for name in ("exp", "nbf"):
        if name in overrides:
            overrides[name] = int(time.time()) + overrides[name]
    await assert_rejected(server, partner_token(idp, tenant.slug, **overrides))


async def test_external_tokens_must_be_access_tokens(server, tenant, idp):
    _, private = idp.partner.keys[idp.partner.signing_kid]
    claims = idp.partner.claims(org_slug=tenant.slug, permissions=["products:read"])
    header = {"alg": "ES256", "typ": "at+jwt", "kid": idp.partner.signing_kid}
    await assert_accepted(server, jws(header, claims, private))
    for typ in (None, "JWT", "id+jwt"):
        changed = {k: v for k, v in {**header, "typ": typ}.items() if v is not None}
        await assert_rejected(server, jws(changed, claims, private))


async def test_keys_do_not_cross_issuers_or_algorithms(server, tenant, idp):
    tokens = server.app.ctx.auth.tokens
    await assert_accepted(server, partner_token(idp, tenant.slug))
    await assert_accepted(server, idp.pinned.token(scope="products:read"))
    partner_kid = idp.partner.signing_kid
    # the partner's key speaking for the pinned issuer, and the pinned key for the partner
    await assert_rejected(server, idp.partner.token(iss=PINNED_ISSUER, aud=PINNED_AUDIENCE))
    await assert_rejected(
        server, idp.pinned.token(iss=PARTNER_ISSUER, aud=PARTNER_AUDIENCE, org_slug=tenant.slug)
    )
    # the partner's key speaking for us, and our key speaking for the partner
    ours = our_claims(server, tenant.id)
    await assert_rejected(server, idp.partner.token(**ours))
    await assert_rejected(
        server,
        sign(
            server,
            {
                **ours,
                "iss": PARTNER_ISSUER,
                "aud": PARTNER_AUDIENCE,
                "org_slug": tenant.slug,
                "permissions": ["products:read"],
            },
        ),
    )
    # an RS256 key the partner publishes, while this issuer is configured for ES256 only
    rs_kid = next(kid for kid, (alg, _) in idp.partner.keys.items() if alg == "RS256")
    assert await tokens.external[PARTNER_ISSUER].key(rs_kid) is not None  # known, still refused
    await assert_rejected(server, partner_token(idp, tenant.slug, kid=rs_kid))
    # algorithm confusion against the partner's published key, and alg none
    served = json.dumps(idp.partner.jwks()["keys"][-1]).encode()
    header = segment({"alg": "HS256", "typ": "at+jwt", "kid": partner_kid})
    body = segment(idp.partner.claims(org_slug=tenant.slug, permissions=["products:read"]))
    mac = hmac.new(served, f"{header}.{body}".encode(), hashlib.sha256).digest()
    await assert_rejected(server, f"{header}.{body}.{b64(mac)}")
    none = segment({"alg": "none", "typ": "at+jwt", "kid": partner_kid})
    await assert_rejected(server, f"{none}.{body}.")


async def test_a_rotated_provider_key_is_fetched_without_a_restart(
    server, tenant, idp, monkeypatch
):
    partner = idp.partner
    await assert_accepted(server, partner_token(idp, tenant.slug))
    monkeypatch.setattr(external, "REFETCH_SECONDS", 2.0)
    await partner.quiet_for(2.0)

    old, new = partner.rotate()  # the gateway has never seen `new`
    before = len(partner.fetches)
    await assert_accepted(server, partner_token(idp, tenant.slug))
    assert len(partner.fetches) == before + 1
    assert jwt.get_unverified_header(partner_token(idp, tenant.slug))["kid"] == new
    # the provider withdrew the old key: fresh tokens signed with it no longer verify
    await assert_rejected(server, partner_token(idp, tenant.slug, kid=old))
    assert len(partner.fetches) == before + 1


async def test_unknown_kids_refetch_the_jwks_at_most_once_per_window(
    server, tenant, idp, monkeypatch
):
    partner = idp.partner
    monkeypatch.setattr(external, "REFETCH_SECONDS", 2.0)
    await partner.quiet_for(2.0)
    before = len(partner.fetches)

    def unknown() -> str:
        return partner_token(idp, tenant.slug, header_kid=f"never-{secrets.token_hex(4)}")

    # a burst of unknown kids at once: the first one fetches, the others wait for it
    burst = await asyncio.gather(*(call(server, unknown()) for _ in range(20)))
    assert [r.status_code for r in burst] == [401] * 20
    assert len(partner.fetches) == before + 1
    # and under the shipped window nothing more is fetched, however many kids come
    monkeypatch.setattr(external, "REFETCH_SECONDS", 30.0)
    for _ in range(10):
        assert (await call(server, unknown())).status_code == 401
    more = await asyncio.gather(*(call(server, unknown()) for _ in range(10)))
    assert [r.status_code for r in more] == [401] * 10
    assert len(partner.fetches) == before + 1  # one fetch for forty unknown kids

    # The limit is a window, not a ban: a key published later is still picked up.
    monkeypatch.setattr(external, "REFETCH_SECONDS", 0.5)
    await partner.quiet_for(0.5)
    partner.rotate()
    await assert_accepted(server, partner_token(idp, tenant.slug))
    assert len(partner.fetches) == before + 2


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nnot json",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]",
        b'HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{"keys": ["x"]}',
        b'HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{"keys": 123}',
        b"",
    ],
    ids=["status-500", "not-json", "json-array", "keys-not-objects", "keys-not-a-list", "hangup"],
)
async def test_a_broken_jwks_endpoint_rejects_unknown_kids_and_keeps_known_keys(
    server, tenant, idp, monkeypatch, response
):
    partner = idp.partner
    known = partner_token(idp, tenant.slug)
    await assert_accepted(server, known)
    monkeypatch.setattr(external, "REFETCH_SECONDS", 1.0)
    await partner.quiet_for(1.0)
    partner.broken = response
    try:
        before = len(partner.fetches)
        await assert_rejected(server, partner_token(idp, tenant.slug, header_kid="never-seen"))
        assert len(partner.fetches) == before + 1
        # the failed fetch starts a window too (the last good one is older): no hammering
        await assert_rejected(server, partner_token(idp, tenant.slug, header_kid="never-seen-2"))
        assert len(partner.fetches) == before + 1
        await assert_accepted(server, partner_token(idp, tenant.slug))  # a new token, known kid
    finally:
        partner.broken = None


async def test_unusable_keys_in_the_jwks_do_not_spoil_the_usable_ones(
    server, tenant, idp, monkeypatch
):
    """Providers publish keys we cannot use (other types, encryption keys, broken
    members): those are skipped, the rest still verify, nothing is a 500."""
    partner = idp.partner
    monkeypatch.setattr(external, "REFETCH_SECONDS", 0.5)
    await partner.quiet_for(0.5)
    partner.extra = [
        {"kid": "broken-ec", "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "use": "sig"},
        {"kid": "no-kty", "use": "sig"},
        {"kid": "rsa-bad-n", "kty": "RSA", "n": 5, "e": "AQAB"},
        {"kid": "odd-okp", "kty": "OKP", "crv": "Ed25519", "x": "!!"},
        {"kid": "enc-key", "kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
        {"kid": ["not", "a", "string"], "kty": "EC"},
        {"kty": "EC", "crv": "P-256"},
    ]
    try:
        partner.rotate()  # a kid the gateway must fetch
        before = len(partner.fetches)
        await assert_accepted(server, partner_token(idp, tenant.slug))
        assert len(partner.fetches) == before + 1
        await partner.quiet_for(0.5)
        await assert_rejected(server, partner_token(idp, tenant.slug, header_kid="broken-ec"))
    finally:
        partner.extra = []


# --- 4. security logging ------------------------------------------------------------------


@dataclass
class Captured:
    records: list[tuple[str | None, logging.LogRecord, str]] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join(line for _, _, line in self.records)

    def messages(self, rid: str) -> list[str]:
        return [record.getMessage() for seen, record, _ in self.records if seen == rid]


@pytest.fixture
def captured() -> Iterator[Captured]:
    """Every record at INFO and above, from every logger, as the gateway renders it.

    The request id is read when the record is emitted (as the gateway's handler
    does), and each record is rendered by the gateway's JSON formatter, extras and
    tracebacks included.
    """
    out = Captured()

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            out.records.append((request_id_var.get(), record, self.format(record)))

    handler = Capture(level=logging.INFO)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_security_events_carry_the_request_id_and_never_a_credential(
    server, tenant, captured
):
    secrets_used: list[str] = []

    def keep(*values: str | None) -> None:
        for value in values:
            assert value
            assert len(value) >= 8, value
            secrets_used.append(value)

    def token_parts(token: str) -> None:
        keep(token, token.split(".")[1], token.split(".")[2])

    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:

        async def send(rid: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
            headers = {**kwargs.pop("headers", {}), "X-Request-ID": rid}
            r = await http.request(method, path, headers=headers, **kwargs)
            assert r.headers["x-request-id"] == rid
            return r

        # rejected tokens: a forgery, an expired token, a tampered one, garbage
        forged = sign(server, our_claims(server, tenant.id, aud="another-api"))
        expired = sign(server, our_claims(server, tenant.id, exp=int(time.time()) - 3600))
        valid = sign(server, our_claims(server, tenant.id))
        header, _, signature = valid.split(".")
        tampered = f"{header}.{segment(our_claims(server, tenant.id, org=10**9))}.{signature}"
        garbage = "not-a-jwt-" + secrets.token_urlsafe(24)
        for token in (forged, expired, tampered):
            token_parts(token)
        keep(garbage)
        rejected = {
            "sec-forged": forged,
            "sec-expired": expired,
            "sec-tampered": tampered,
            "sec-garbage": garbage,
        }
        for rid, token in rejected.items():
            r = await send(rid, "GET", PROBE, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401

        # a permission denial, with a valid token and with a valid API key
        viewer = sign(server, our_claims(server, tenant.id, roles=["viewer"]))
        token_parts(viewer)
        _, api_key = await create_api_key(
            tenant.owner, ApiKeyInput(name=unique("k"), scopes=["products:read"])
        )
        keep(api_key, api_key.split("_", 2)[2])
        product = {"sku": unique("S"), "name": "n", "price_cents": 1, "stock": 1}
        r = await send(
            "sec-denied", "POST", PROBE, json=product, headers={"Authorization": f"Bearer {viewer}"}
        )
        assert r.status_code == 403
        r = await send(
            "sec-denied-key", "POST", PROBE, json=product, headers={"X-API-Key": api_key}
        )
        assert r.status_code == 403
        unknown_key = f"gwk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
        keep(unknown_key, unknown_key.split("_", 2)[2])
        r = await send("sec-key", "GET", PROBE, headers={"X-API-Key": unknown_key})
        assert r.status_code == 401

        # client secrets at the token and revocation endpoints, and the tokens they buy
        client = await create_client(
            tenant.id, unique("svc"), grant_types=["client_credentials"], scopes=["products:read"]
        )
        assert client.secret
        wrong_secret = secrets.token_urlsafe(32)
        keep(client.secret, wrong_secret)
        form = {"grant_type": "client_credentials", "scope": "products:read"}
        r = await send(
            "sec-client",
            "POST",
            "/oauth/token",
            data=form,
            auth=(client.client.client_id, wrong_secret),
        )
        assert r.status_code == 401
        r = await send(
            "sec-client-ok",
            "POST",
            "/oauth/token",
            data=form,
            auth=(client.client.client_id, client.secret),
        )
        issued = r.json()["access_token"]
        token_parts(issued)
        r = await send(
            "sec-revoke",
            "POST",
            "/oauth/revoke",
            data={"token": issued},
            auth=(client.client.client_id, client.secret),
        )
        assert r.status_code == 200
        r = await send("sec-revoked", "GET", PROBE, headers={"Authorization": f"Bearer {issued}"})
        assert r.status_code == 401

        # a failed sign-in, then a successful one (whose authorization code is a secret too)
        email = f"{unique('user')}@example.test"
        password = "correct horse " + secrets.token_urlsafe(8)
        wrong_password = "wrong horse " + secrets.token_urlsafe(8)
        keep(password, wrong_password)
        await create_user(tenant.id, email, password, "staff")
        spa = await create_client(
            tenant.id,
            unique("spa"),
            public=True,
            grant_types=["authorization_code"],
            scopes=["products:read"],
            redirect_uris=["https://app.example.test/cb"],
        )
        verifier = secrets.token_urlsafe(48)
        params = {
            "response_type": "code",
            "client_id": spa.client.client_id,
            "redirect_uri": "https://app.example.test/cb",
            "scope": "products:read",
            "code_challenge": b64(hashlib.sha256(verifier.encode()).digest()),
            "code_challenge_method": "S256",
            "state": secrets.token_urlsafe(8),
        }
        page = await send("sec-page", "GET", "/oauth/authorize", params=params)
        assert page.status_code == 200, page.text
        csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        assert http.cookies.get("gw_csrf") == csrf
        keep(csrf)
        login = {**params, "csrf_token": csrf, "email": email, "decision": "allow"}
        failed = await send(
            "sec-login", "POST", "/oauth/authorize", data={**login, "password": wrong_password}
        )
        assert failed.status_code == 401, failed.text
        csrf = failed.text.split('name="csrf_token" value="')[1].split('"')[0]
        keep(csrf)
        ok = await send(
            "sec-login-ok",
            "POST",
            "/oauth/authorize",
            data={**login, "csrf_token": csrf, "password": password},
        )
        assert ok.status_code == 302, ok.text
        code = httpx.URL(ok.headers["location"]).params["code"]
        keep(code)

    expected = {
        "sec-forged": "rejected access token",
        "sec-expired": "rejected access token",
        "sec-tampered": "rejected access token",
        "sec-garbage": "rejected access token",
        "sec-revoked": "rejected access token",
        "sec-denied": "permission denied",
        "sec-denied-key": "permission denied",
        "sec-key": "rejected API key",
        "sec-client": "client authentication failed",
        "sec-login": "login failed",
    }
    for rid, message in expected.items():
        assert message in captured.messages(rid), (rid, captured.messages(rid))
    for rid, record, _ in captured.records:
        if rid in expected and record.getMessage() == expected[rid]:
            assert record.levelno >= logging.WARNING
            assert record.name.startswith("gateway")
    login_failed = next(
        line
        for rid, record, line in captured.records
        if rid == "sec-login" and record.getMessage() == "login failed"
    )
    assert email not in login_failed  # a hash of the email identifies the account
    assert json.loads(login_failed)["request_id"] == "sec-login"

    everything = captured.text()
    assert everything
    for secret in secrets_used:
        # not the whole credential, nor any 16 characters of it (a truncated token is a leak too)
        pieces = {secret} | {secret[i : i + 16] for i in range(0, len(secret) - 15, 4)}
        leaked = sorted(piece for piece in pieces if piece in everything)
        assert not leaked, f"a credential reached the logs: {leaked[0]}"
