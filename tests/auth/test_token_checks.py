"""The resource server's side: what a bearer token must prove before it is a Principal.

Forged and broken tokens (``alg: none``, HS256 keyed with our public key, unknown
``kid``, wrong issuer or audience, expired, not yet valid, tampered, revoked, wrong
``typ``) are each a 401 with ``WWW-Authenticate: Bearer error="invalid_token"``.
Signing-key rotation keeps earlier tokens valid, and security events are logged
with the request id and never with a secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.auth.keys import rotate
from gateway.logs import JsonFormatter
from tests.factories import PROBLEM_JSON, TOKENS, unique

PROBE = "/api/v1/products"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict[str, Any]) -> str:
    return b64(json.dumps(value).encode())


def claims_for(server: Any, tenant: Any, **overrides: Any) -> dict[str, Any]:
    tokens = server.app.ctx.auth.tokens
    now = int(time.time())
    claims = {
        "iss": tokens.issuer, "sub": "user:attacker", "aud": tokens.audience,
        "client_id": "tests", "scope": "products:read", "org": tenant.id, "roles": ["owner"],
        "jti": secrets.token_urlsafe(8), "iat": now, "nbf": now, "exp": now + 300,
    }  # fmt: skip
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign(server: Any, claims: dict[str, Any], **header: Any) -> str:
    """A token signed with the server's own current key (so only the named flaw differs)."""
    key = server.app.ctx.auth.tokens.keys.signing_key
    headers = {"typ": "at+jwt", "kid": key.kid, **header}
    headers = {k: v for k, v in headers.items() if v is not None}
    return jwt.encode(claims, key.private, algorithm=key.algorithm, headers=headers)


async def probe(server: Any, token: str, request_id: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if request_id:
        headers["X-Request-ID"] = request_id
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        return await http.get(PROBE, headers=headers)


def assert_invalid_token(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    assert r.json()["code"] == "UNAUTHENTICATED"
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    assert 'error="invalid_token"' in challenge


async def test_a_well_formed_token_is_accepted(server, tenant):
    """The control: the forgeries below differ from this token in one thing only."""
    assert (await probe(server, sign(server, claims_for(server, tenant)))).status_code == 200


async def test_alg_none_is_rejected(server, tenant):
    header = {
        "alg": "none",
        "typ": "at+jwt",
        "kid": server.app.ctx.auth.tokens.keys.signing_key.kid,
    }
    token = f"{segment(header)}.{segment(claims_for(server, tenant))}."
    assert_invalid_token(await probe(server, token))
    assert_invalid_token(await probe(server, token + "AAAA"))


def _public_forms(server: Any) -> list[bytes]:
    key = server.app.ctx.auth.tokens.keys.signing_key
    pem = key.public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return [pem, pem.strip(), json.dumps(key.jwk()).encode()]


async def test_hs256_keyed_with_the_public_key_is_rejected(server, tenant):
    kid = server.app.ctx.auth.tokens.keys.signing_key.kid
    for secret in _public_forms(server):
        for alg, digest in (("HS256", hashlib.sha256), ("HS512", hashlib.sha512)):
            header = segment({"alg": alg, "typ": "at+jwt", "kid": kid})
            signing_input = f"{header}.{segment(claims_for(server, tenant))}"
            mac = hmac.new(secret, signing_input.encode(), digest).digest()
            assert_invalid_token(await probe(server, f"{signing_input}.{b64(mac)}"))


async def test_an_unknown_kid_is_rejected(server, tenant):
    assert_invalid_token(await probe(server, sign(server, claims_for(server, tenant), kid="nope")))
    assert_invalid_token(await probe(server, sign(server, claims_for(server, tenant), kid=None)))


async def test_a_foreign_key_under_our_kid_is_rejected(server, tenant):
    kid = server.app.ctx.auth.tokens.keys.signing_key.kid
    stranger = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(
        claims_for(server, tenant), stranger, algorithm="ES256",
        headers={"typ": "at+jwt", "kid": kid},
    )  # fmt: skip
    assert_invalid_token(await probe(server, token))


@pytest.mark.parametrize(
    "overrides",
    [
        {"iss": "https://evil.example"},
        {"aud": "another-api"},
        {"aud": None},
        {"exp": int(time.time()) - 120},
        {"exp": None},
        {"nbf": int(time.time()) + 120},
        {"iat": None},
        {"sub": None},
    ],
    ids=[
        "wrong-iss",
        "wrong-aud",
        "no-aud",
        "expired",
        "no-exp",
        "not-yet-valid",
        "no-iat",
        "no-sub",
    ],
)
async def test_claims_that_do_not_hold_are_rejected(server, tenant, overrides):
    claims = claims_for(server, tenant, **overrides)
    for key, value in overrides.items():
        if value is None:
            claims.pop(key, None)
    assert_invalid_token(await probe(server, sign(server, claims)))


async def test_expiry_and_not_before_have_a_small_leeway(server, tenant):
    now = int(time.time())
    slightly = claims_for(server, tenant, exp=now - 5, nbf=now + 5)
    assert (await probe(server, sign(server, slightly))).status_code == 200


@pytest.mark.parametrize("typ", [None, "JWT", "id+jwt"], ids=["no-typ", "JWT", "id-token"])
async def test_only_access_tokens_are_accepted(server, tenant, typ):
    assert_invalid_token(await probe(server, sign(server, claims_for(server, tenant), typ=typ)))


async def test_a_tampered_payload_is_rejected(server, tenant, other_tenant):
    token = sign(server, claims_for(server, tenant, scope="products:read"))
    header, _, signature = token.split(".")
    for change in ({"scope": "products:read products:write"}, {"org": other_tenant.id}):
        forged = f"{header}.{segment(claims_for(server, tenant, **change))}.{signature}"
        assert_invalid_token(await probe(server, forged))


@pytest.mark.parametrize("garbage", ["abc", "a.b.c", "..", "e30.e30.e30", "x" * 5000])
async def test_garbage_is_rejected(server, garbage):
    assert_invalid_token(await probe(server, garbage))


async def test_a_revoked_jti_is_rejected_even_after_it_was_accepted(server, tenant):
    tokens = server.app.ctx.auth.tokens
    token, claims = tokens.issue(
        subject="user:x", organization_id=tenant.id, client_id="tests",
        scopes=["products:read"], roles=["staff"],
    )  # fmt: skip
    assert (await probe(server, token)).status_code == 200  # now cached as a Principal
    await tokens.denylist.deny(claims["jti"], claims["exp"])
    assert_invalid_token(await probe(server, token))


async def test_no_credentials_is_a_challenge_without_an_error(server, anon):
    r = await anon.get(PROBE)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "error=" not in r.headers["www-authenticate"]
    wrong_scheme = await anon.get(PROBE, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert wrong_scheme.status_code == 401


async def test_an_organization_that_does_not_exist_in_the_token_finds_nothing(server, tenant):
    """A validly signed token for an organization id that has no rows: empty, not an error."""
    r = await probe(server, sign(server, claims_for(server, tenant, org=10**9)))
    assert r.status_code == 200
    assert r.json()["data"] == []


# --- key rotation ---------------------------------------------------------------------


async def test_rotation_keeps_the_previous_key_published_and_its_tokens_valid(
    server, settings, tenant, anon
):
    tokens = server.app.ctx.auth.tokens
    before = tokens.keys.signing_key.kid
    old = TOKENS.mint(tenant.id, "viewer")
    await rotate(settings.jwt_algorithm)
    await tokens.keys.load(create=False)
    after = tokens.keys.signing_key.kid
    assert after != before
    new = TOKENS.mint(tenant.id, "viewer")
    assert jwt.get_unverified_header(new)["kid"] == after
    published = {key["kid"] for key in (await anon.get("/.well-known/jwks.json")).json()["keys"]}
    assert {before, after} <= published
    for token in (old, new):
        assert (await probe(server, token)).status_code == 200


# --- security logging -------------------------------------------------------------------


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Every log record, rendered by the gateway's own JSON formatter (with request ids)."""
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Capture(level=logging.INFO)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = logging.getLogger("gateway").level
    logging.getLogger("gateway").setLevel(logging.INFO)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        logging.getLogger("gateway").setLevel(level)


def entries(lines: list[str], request_id: str) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, lines) if e.get("request_id") == request_id]


async def test_security_events_are_logged_with_request_ids_and_no_secrets(
    server, tenant, log_lines
):
    from db.accounts import create_client, create_user

    secrets_seen: list[str] = []
    # a rejected token
    forged = sign(server, claims_for(server, tenant, aud="another-api"))
    secrets_seen += [forged, forged.split(".")[2]]
    await probe(server, forged, request_id="sec-token")
    # a permission denial
    viewer = TOKENS.mint(tenant.id, "viewer")
    secrets_seen += [viewer, viewer.split(".")[2]]
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        denied = await http.post(
            "/api/v1/products",
            json={"sku": unique("S"), "name": "n", "price_cents": 1, "stock": 1},
            headers={"Authorization": f"Bearer {viewer}", "X-Request-ID": "sec-denied"},
        )
        assert denied.status_code == 403
        # a rejected client secret and an unknown API key
        new = await create_client(tenant.id, unique("c"), grant_types=["client_credentials"],
                                  scopes=["products:read"])  # fmt: skip
        wrong_secret = new.secret[::-1] if new.secret else "x"
        secrets_seen += [new.secret or "", wrong_secret]
        await http.post(
            "/oauth/token", auth=(new.client.client_id, wrong_secret),
            data={"grant_type": "client_credentials"}, headers={"X-Request-ID": "sec-client"},
        )  # fmt: skip
        bad_key = f"gwk_{secrets.token_hex(8)}_{secrets.token_urlsafe(24)}"
        secrets_seen.append(bad_key.rsplit("_", 1)[1])
        r = await http.get(PROBE, headers={"X-API-Key": bad_key, "X-Request-ID": "sec-key"})
        assert r.status_code == 401
        # a failed sign-in
        email = f"{unique('u')}@example.test"
        password = "the real password 1"
        await create_user(tenant.id, email, password, "staff")
        coder = await create_client(
            tenant.id, unique("spa"), public=True, grant_types=["authorization_code"],
            scopes=["products:read"], redirect_uris=["https://app.example.test/cb"],
        )  # fmt: skip
        verifier = secrets.token_urlsafe(48)
        challenge = b64(hashlib.sha256(verifier.encode()).digest())
        params = {
            "response_type": "code", "client_id": coder.client.client_id,
            "redirect_uri": "https://app.example.test/cb", "scope": "products:read",
            "code_challenge": challenge, "code_challenge_method": "S256", "state": "x",
        }  # fmt: skip
        page = await http.get("/oauth/authorize", params=params)
        csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        wrong_password = "not the password 9"
        secrets_seen += [password, wrong_password, csrf]
        failed = await http.post(
            "/oauth/authorize",
            data={**params, "csrf_token": csrf, "email": email, "password": wrong_password,
                  "decision": "allow"},
            headers={"X-Request-ID": "sec-login"},
        )  # fmt: skip
        assert failed.status_code == 401

    messages = {
        "sec-token": "rejected access token",
        "sec-denied": "permission denied",
        "sec-client": None,  # authlib's own rejection; only the absence of secrets matters
        "sec-key": "rejected API key",
        "sec-login": "login failed",
    }
    for request_id, message in messages.items():
        if message is not None:
            found = [e["message"] for e in entries(log_lines, request_id)]
            assert any(message in m for m in found), (request_id, found)
    login = next(e for e in entries(log_lines, "sec-login") if e["message"] == "login failed")
    assert email not in json.dumps(login)  # only a hash of it
    everything = "\n".join(log_lines)
    for secret in secrets_seen:
        assert secret
        assert secret not in everything
