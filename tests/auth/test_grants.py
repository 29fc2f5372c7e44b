"""End-to-end tests of the OAuth2 authorization server, against the real test server.

An independent OAuth2 client (authlib's ``AsyncOAuth2Client`` over httpx) drives every
grant the way a real application would: client credentials (``client_secret_basic`` and
``client_secret_post``), authorization code with PKCE S256 through the real sign-in and
consent page (confidential and public clients), refresh-token rotation with reuse
detection, revocation (RFC 7009) and introspection (RFC 7662) of both token kinds.
Plain httpx plays the misbehaving party: PKCE failures, replayed codes and refresh
tokens, stolen codes, forged sign-in forms, password guessing (rate limit, no user
enumeration). Also covered: the sync/async bridge keeps the event loop answering
under a burst of token requests, and the RFC 8414 metadata and JWKS documents.

Every issued token is checked where it matters, on ``GET /api/v1/products``. Browsers
sign in from a random 127.x.y.z source address and random emails, so the sign-in rate
limiter (per email and per address, shared through Redis on the services backend)
never mixes the attempts of two tests or two runs.
"""

from __future__ import annotations

import asyncio
import html
import random
import re
import secrets
import statistics
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from db.accounts import create_client, create_user
from db.errors import InvalidArgument
from db.models import AuthorizationCode, OAuthClient
from gateway.auth.server import Bridge
from gateway.settings import Settings
from tests.conftest import RunningServer, Tenant

REDIRECT = "https://app.example.com/callback"
OTHER_REDIRECT = "https://app.example.com/other-callback"
PASSWORD = "a long enough password"
CLIENT_SCOPES = ["customers:read", "orders:read", "products:read"]
PRODUCTS = "/api/v1/products"
ERROR_NOTICE = re.compile(r'<p class="error" role="alert">(.*?)</p>', re.S)
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


# --- helpers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Registered:
    client_id: str
    secret: str | None

    @property
    def auth(self) -> tuple[str, str]:
        assert self.secret is not None, "a public client has no secret"
        return (self.client_id, self.secret)


async def register(
    tenant: Tenant,
    *,
    public: bool = False,
    grant_types: list[str] | None = None,
    scopes: list[str] | None = None,
    redirect_uris: list[str] | None = None,
    role: str = "staff",
) -> Registered:
    new = await create_client(
        tenant.id,
        f"App {uuid.uuid4().hex[:6]}",
        grant_types=grant_types or ["authorization_code", "refresh_token"],
        scopes=CLIENT_SCOPES if scopes is None else scopes,
        redirect_uris=[REDIRECT] if redirect_uris is None else redirect_uris,
        role=role,
        public=public,
    )
    assert (new.secret is None) is public
    return Registered(new.client.client_id, new.secret)


async def register_machine(tenant: Tenant, scopes: list[str] | None = None) -> Registered:
    return await register(tenant, grant_types=["client_credentials"], scopes=scopes)


def fresh_email() -> str:
    """Random (not a per-process counter): Redis keeps limiter counts across runs."""
    return f"u{uuid.uuid4().hex[:12]}@example.com"


async def new_user(tenant: Tenant, role: str = "staff") -> str:
    email = fresh_email()
    await create_user(tenant.id, email, PASSWORD, role)
    return email


def browser(server: RunningServer) -> httpx.AsyncClient:
    """A browser on a source address of its own (the sign-in limiter counts per address)."""
    address = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    return httpx.AsyncClient(
        base_url=server.base_url,
        transport=httpx.AsyncHTTPTransport(local_address=address),
        timeout=30,
    )


def http(server: RunningServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.base_url, timeout=30)


def oauth(server: RunningServer, reg: Registered, **kwargs: Any) -> AsyncOAuth2Client:
    kwargs.setdefault("token_endpoint_auth_method", "client_secret_basic" if reg.secret else "none")
    return AsyncOAuth2Client(
        client_id=reg.client_id,
        client_secret=reg.secret,
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        base_url=server.base_url,
        timeout=30,
        **kwargs,
    )


async def api_status(server: RunningServer, access_token: str, path: str = PRODUCTS) -> int:
    async with http(server) as client:
        r = await client.get(path, headers={"Authorization": f"Bearer {access_token}"})
    return r.status_code


def hidden_fields(page: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in HIDDEN.findall(page)}


def notice(page: str) -> str:
    found = ERROR_NOTICE.findall(page)
    assert len(found) == 1, page
    return str(found[0])


def authorize_query(reg: Registered, verifier: str | None = None, **overrides: str | None) -> str:
    """An /oauth/authorize URL built by hand; ``None`` drops a parameter."""
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": reg.client_id,
        "redirect_uri": REDIRECT,
        "scope": "products:read",
        "state": secrets.token_urlsafe(8),
        "code_challenge": create_s256_code_challenge(verifier or secrets.token_urlsafe(48)),
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    kept = {k: v for k, v in params.items() if v is not None}
    return "/oauth/authorize?" + str(httpx.QueryParams(kept))


async def submit(
    page_client: httpx.AsyncClient,
    url: str,
    email: str,
    password: str = PASSWORD,
    decision: str = "allow",
) -> httpx.Response:
    """Open the sign-in page, fill it in as a person would, and send it."""
    page = await page_client.get(url)
    assert page.status_code == 200, page.text
    fields = hidden_fields(page.text)
    assert fields.get("csrf_token"), page.text
    fields.update(email=email, password=password, decision=decision)
    return await page_client.post("/oauth/authorize", data=fields)


def redirected(response: httpx.Response, redirect_uri: str = REDIRECT) -> dict[str, str]:
    """The query of a redirect back to the client (one value per name)."""
    assert response.status_code == 302, (response.status_code, response.text)
    location = response.headers["location"]
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == redirect_uri, location
    query = parse_qs(parts.query)
    assert all(len(v) == 1 for v in query.values()), query
    return {k: v[0] for k, v in query.items()}


async def sign_in_for_code(
    server: RunningServer, reg: Registered, email: str, verifier: str, **overrides: str | None
) -> str:
    async with browser(server) as b:
        response = await submit(b, authorize_query(reg, verifier, **overrides), email)
    query = redirected(response, overrides.get("redirect_uri") or REDIRECT)
    assert "error" not in query, query
    return query["code"]


async def redeem(
    server: RunningServer,
    reg: Registered,
    code: str,
    verifier: str | None,
    redirect_uri: str | None = REDIRECT,
) -> httpx.Response:
    """The token request for ``code``, sent by plain httpx as ``reg``."""
    data = {"grant_type": "authorization_code", "code": code}
    if redirect_uri is not None:
        data["redirect_uri"] = redirect_uri
    if verifier is not None:
        data["code_verifier"] = verifier
    async with http(server) as client:
        if reg.secret is None:
            return await client.post("/oauth/token", data={**data, "client_id": reg.client_id})
        return await client.post("/oauth/token", data=data, auth=reg.auth)


async def code_flow(
    server: RunningServer, reg: Registered, email: str, scope: str = "products:read orders:read"
) -> dict[str, Any]:
    """The whole authorization-code flow with authlib's client: the token response."""
    async with oauth(server, reg, scope=scope) as client:
        verifier = secrets.token_urlsafe(48)
        url, state = client.create_authorization_url("/oauth/authorize", code_verifier=verifier)
        async with browser(server) as b:
            query = redirected(await submit(b, url, email))
        assert query["state"] == state
        token = await client.fetch_token(
            "/oauth/token",
            grant_type="authorization_code",
            code=query["code"],
            code_verifier=verifier,
        )
    return dict(token)


async def refresh(
    server: RunningServer, reg: Registered, refresh_token: str, scope: str | None = None
) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if scope is not None:
        data["scope"] = scope
    async with http(server) as client:
        if reg.secret is None:
            return await client.post("/oauth/token", data={**data, "client_id": reg.client_id})
        return await client.post("/oauth/token", data=data, auth=reg.auth)


async def introspect(
    server: RunningServer, reg: Registered, token: str, hint: str | None = None
) -> dict[str, Any]:
    async with oauth(server, reg) as client:
        r = await client.introspect_token("/oauth/introspect", token, token_type_hint=hint)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def codes_of(reg: Registered) -> int:
    return await AuthorizationCode.filter(client_id=reg.client_id).count()


async def verified_claims(
    server: RunningServer, settings: Settings, access_token: str
) -> dict[str, Any]:
    """The token's claims, verified with the published JWKS only (as a resource server)."""
    async with http(server) as client:
        jwks = (await client.get("/.well-known/jwks.json")).json()
    kid = jwt.get_unverified_header(access_token)["kid"]
    key = jwt.PyJWKSet.from_dict(jwks)[kid]
    claims: dict[str, Any] = jwt.decode(
        access_token,
        key.key,
        algorithms=[key.algorithm_name],
        audience=settings.auth_audience,
        issuer=settings.issuer,
    )
    return claims


@pytest.fixture
def frozen_limits(server, monkeypatch) -> None:
    """Time stands still for the rate limiter: no attempt comes back while a test runs,
    however slow the machine."""
    now = time.time()
    monkeypatch.setattr(server.app.ctx.throttle.limiter, "_clock", lambda: now)


# --- 1. client credentials ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_client_credentials_with_each_auth_method(server, settings, tenant, method):
    reg = await register_machine(tenant)
    async with oauth(server, reg, token_endpoint_auth_method=method) as client:
        token = await client.fetch_token("/oauth/token", grant_type="client_credentials")
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == settings.access_token_ttl_seconds
    assert sorted(token["scope"].split()) == CLIENT_SCOPES
    assert "refresh_token" not in token  # no user, nothing to refresh
    assert await api_status(server, token["access_token"]) == 200

    claims = await verified_claims(server, settings, token["access_token"])
    assert claims["client_id"] == reg.client_id
    assert claims["sub"] == f"client:{reg.client_id}"
    assert claims["org"] == tenant.id
    assert claims["exp"] - claims["iat"] == settings.access_token_ttl_seconds
    assert sorted(claims["scope"].split()) == CLIENT_SCOPES


async def test_client_credentials_auth_methods_are_really_checked(server, tenant):
    """client_secret_post really reads the body: without the secret there, no token."""
    reg = await register_machine(tenant)
    async with http(server) as client:
        post = await client.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": reg.client_id,
                "client_secret": reg.secret,
            },
        )
        assert post.status_code == 200, post.text
        bare = await client.post(
            "/oauth/token", data={"grant_type": "client_credentials", "client_id": reg.client_id}
        )
    assert bare.status_code == 401
    assert bare.json()["error"] == "invalid_client"


async def test_a_token_has_no_more_scopes_than_requested_and_registered(server, settings, tenant):
    reg = await register_machine(tenant)
    async with oauth(server, reg) as client:
        subset = await client.fetch_token(
            "/oauth/token", grant_type="client_credentials", scope="products:read"
        )
        assert subset["scope"] == "products:read"
        claims = await verified_claims(server, settings, subset["access_token"])
        assert claims["scope"] == "products:read"
        assert await api_status(server, subset["access_token"]) == 200
        assert await api_status(server, subset["access_token"], "/api/v1/orders") == 403

        # orders:write and products:write are valid scopes, but not this client's
        mixed = await client.fetch_token(
            "/oauth/token",
            grant_type="client_credentials",
            scope="orders:read orders:write products:write",
        )
        assert mixed["scope"] == "orders:read"
        claims = await verified_claims(server, settings, mixed["access_token"])
        assert claims["scope"] == "orders:read"

        with pytest.raises(OAuthError) as refused:
            await client.fetch_token(
                "/oauth/token", grant_type="client_credentials", scope="products:write"
            )
        assert refused.value.error == "invalid_scope"

    async with http(server) as raw:
        r = await raw.post(
            PRODUCTS,
            json={"sku": f"S-{uuid.uuid4().hex[:8]}", "name": "x", "price_cents": 1, "stock": 1},
            headers={"Authorization": f"Bearer {mixed['access_token']}"},
        )
    assert r.status_code == 403  # a write with a read-only token


async def test_wrong_secret_is_invalid_client(server, tenant):
    reg = await register_machine(tenant)
    async with oauth(server, Registered(reg.client_id, "not-the-secret")) as client:
        with pytest.raises(OAuthError) as refused:
            await client.fetch_token("/oauth/token", grant_type="client_credentials")
    assert refused.value.error == "invalid_client"
    async with http(server) as client:
        basic = await client.post(
            "/oauth/token",
            auth=(reg.client_id, "not-the-secret"),
            data={"grant_type": "client_credentials"},
        )
        post = await client.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": reg.client_id,
                "client_secret": "not-the-secret",
            },
        )
        unknown = await client.post(
            "/oauth/token", auth=("gw-nosuchclient", "x"), data={"grant_type": "client_credentials"}
        )
    for r in (basic, post, unknown):
        assert r.status_code == 401, r.text
        assert r.json()["error"] == "invalid_client"
        assert "access_token" not in r.json()


async def test_a_public_client_cannot_use_client_credentials(server, tenant):
    with pytest.raises(InvalidArgument, match="public client"):
        await register(tenant, public=True, grant_types=["client_credentials"])
    public = await register(tenant, public=True)
    # A public row that holds the grant anyway (registered around create_client) still
    # gets nothing: the grant accepts no "none" client authentication.
    forced = await OAuthClient.create(
        organization_id=tenant.id,
        client_id=f"gw-{secrets.token_hex(8)}",
        secret_hash=None,
        name="forced",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scopes=CLIENT_SCOPES,
        role="staff",
    )
    async with http(server) as client:
        for client_id in (public.client_id, forced.client_id):
            r = await client.post(
                "/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id}
            )
            assert r.status_code in (400, 401), r.text
            assert r.json()["error"] in ("invalid_client", "unauthorized_client")
            assert "access_token" not in r.json()


# --- 2. authorization code + PKCE -----------------------------------------------------------


@pytest.mark.parametrize("public", [False, True], ids=["confidential", "public"])
async def test_code_flow_with_pkce_end_to_end(server, settings, tenant, public):
    reg = await register(tenant, public=public)
    email = await new_user(tenant)
    async with oauth(server, reg, scope="products:read orders:read") as client:
        verifier = secrets.token_urlsafe(48)
        url, state = client.create_authorization_url("/oauth/authorize", code_verifier=verifier)
        sent = parse_qs(urlsplit(url).query)
        assert sent["code_challenge"] == [create_s256_code_challenge(verifier)]
        assert sent["code_challenge_method"] == ["S256"]

        async with browser(server) as b:
            page = await b.get(url)
            assert page.status_code == 200, page.text
            assert page.headers["content-type"].startswith("text/html")
            assert 'name="password"' in page.text
            assert "products:read" in page.text
            assert "customers:read" not in page.text  # only what was asked is shown
            fields = hidden_fields(page.text)
            cookie = b.cookies.get("gw_csrf")
            assert cookie
            assert fields["csrf_token"] == cookie
            set_cookie = page.headers["set-cookie"].lower()
            assert "httponly" in set_cookie
            assert "samesite=strict" in set_cookie
            for name, value in sent.items():  # the request travels through the form
                assert fields[name] == value[0], name
            assert await codes_of(reg) == 0  # nothing before sign-in

            fields.update(email=email.upper(), password=PASSWORD, decision="allow")
            landed = await b.post("/oauth/authorize", data=fields)
        query = redirected(landed)
        assert query["state"] == state
        assert query["code"]
        assert await codes_of(reg) == 1

        token = await client.fetch_token(
            "/oauth/token",
            grant_type="authorization_code",
            code=query["code"],
            code_verifier=verifier,
        )
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == settings.access_token_ttl_seconds
    assert token["scope"] == "products:read orders:read"
    assert token["refresh_token"]
    assert await api_status(server, token["access_token"]) == 200
    assert await api_status(server, token["access_token"], "/api/v1/customers") == 403
    claims = await verified_claims(server, settings, token["access_token"])
    assert claims["client_id"] == reg.client_id
    assert claims["sub"].startswith("user:")
    assert claims["org"] == tenant.id


async def test_code_flow_scopes_are_capped_by_client_and_user_role(server, tenant):
    reg = await register(tenant, scopes=["products:read", "products:write", "orders:read"])
    viewer = await new_user(tenant, role="viewer")
    token = await code_flow(server, reg, viewer, scope="products:read products:write")
    assert token["scope"] == "products:read"  # viewers cannot write
    staff = await new_user(tenant)
    token = await code_flow(server, reg, staff, scope="products:read customers:read")
    assert token["scope"] == "products:read"  # customers:read is not the client's


@pytest.mark.parametrize(
    ("client_scopes", "role", "asked"),
    [
        (CLIENT_SCOPES, "staff", "orders:write"),  # not the client's
        (["products:read", "products:write"], "viewer", "products:write"),  # not the user's
    ],
    ids=["outside-client", "outside-role"],
)
async def test_a_code_for_scopes_that_cannot_be_granted_yields_no_token(
    server, tenant, client_scopes, role, asked
):
    """Nothing grantable must not fall back to "everything registered"."""
    reg = await register(tenant, scopes=client_scopes)
    email = await new_user(tenant, role=role)
    verifier = secrets.token_urlsafe(48)
    async with browser(server) as b:
        r = await b.get(authorize_query(reg, verifier, scope=asked))
        if r.status_code == 302:
            query = redirected(r)
            assert query["error"] == "invalid_scope"
            assert "code" not in query
            return
        assert r.status_code == 200, r.text
        fields = hidden_fields(r.text)
        fields.update(email=email, password=PASSWORD, decision="allow")
        landed = await b.post("/oauth/authorize", data=fields)
    query = redirected(landed)
    if "error" in query:
        assert query["error"] == "invalid_scope"
        return
    exchanged = await redeem(server, reg, query["code"], verifier)
    assert exchanged.status_code == 400, exchanged.text
    assert exchanged.json()["error"] == "invalid_scope"


# --- 3. PKCE and code failures ------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"code_challenge": None, "code_challenge_method": None},
        {"code_challenge": None},
        {"code_challenge_method": None},
        {"code_challenge_method": "plain"},
        {"code_challenge_method": "S512"},
    ],
    ids=["no-pkce", "no-challenge", "no-method", "plain", "unknown-method"],
)
async def test_authorize_refuses_without_s256_pkce(server, tenant, overrides):
    reg = await register(tenant)
    email = await new_user(tenant)
    url = authorize_query(reg, **overrides)
    async with browser(server) as b:
        page = await b.get(url)
        # refused before any sign-in page: no form, no CSRF cookie, no code
        assert 'name="password"' not in page.text
        assert "gw_csrf" not in page.headers.get("set-cookie", "")
        if page.status_code == 302:
            query = redirected(page)
            assert query["error"] == "invalid_request"
            assert "code" not in query
        else:
            assert page.status_code == 400, page.text
        # Posting the sign-in form directly (skipping the page) gives no code either.
        b.cookies.set("gw_csrf", "c" * 32, domain="127.0.0.1", path="/oauth/authorize")
        form = dict(parse_qs(urlsplit(url).query))
        posted = await b.post(
            "/oauth/authorize",
            data={
                **{k: v[0] for k, v in form.items()},
                "csrf_token": "c" * 32,
                "email": email,
                "password": PASSWORD,
                "decision": "allow",
            },
        )
    assert "code=" not in posted.headers.get("location", "")
    assert await codes_of(reg) == 0


async def test_wrong_or_missing_code_verifier_is_refused(server, tenant):
    reg = await register(tenant)
    email = await new_user(tenant)
    verifier = secrets.token_urlsafe(48)

    code = await sign_in_for_code(server, reg, email, verifier)
    wrong = await redeem(server, reg, code, secrets.token_urlsafe(48))
    assert wrong.status_code == 400, wrong.text
    assert wrong.json()["error"] == "invalid_grant"

    code = await sign_in_for_code(server, reg, email, verifier)
    missing = await redeem(server, reg, code, None)
    assert missing.status_code == 400, missing.text
    assert missing.json()["error"] in ("invalid_request", "invalid_grant")
    assert "access_token" not in missing.json()

    # the authlib client gets a token with the right verifier (the codes above were fine)
    code = await sign_in_for_code(server, reg, email, verifier)
    async with oauth(server, reg) as client:
        token = await client.fetch_token(
            "/oauth/token", grant_type="authorization_code", code=code, code_verifier=verifier
        )
    assert await api_status(server, token["access_token"]) == 200


async def test_a_code_is_redeemed_only_once(server, tenant):
    reg = await register(tenant)
    email = await new_user(tenant)
    verifier = secrets.token_urlsafe(48)
    code = await sign_in_for_code(server, reg, email, verifier)
    first = await redeem(server, reg, code, verifier)
    assert first.status_code == 200, first.text
    again = await redeem(server, reg, code, verifier)
    assert again.status_code == 400, again.text
    assert again.json()["error"] == "invalid_grant"
    assert "access_token" not in again.json()


async def test_a_code_is_redeemed_only_once_under_concurrency(server, tenant):
    reg = await register(tenant)
    email = await new_user(tenant)
    verifier = secrets.token_urlsafe(48)
    code = await sign_in_for_code(server, reg, email, verifier)
    results = await asyncio.gather(*(redeem(server, reg, code, verifier) for _ in range(5)))
    assert sorted(r.status_code for r in results) == [200, 400, 400, 400, 400]


@pytest.mark.parametrize("thief_is_public", [False, True], ids=["confidential", "public"])
async def test_a_code_for_one_client_cannot_be_redeemed_by_another(server, tenant, thief_is_public):
    owner = await register(tenant)
    thief = await register(tenant, public=thief_is_public)
    email = await new_user(tenant)
    verifier = secrets.token_urlsafe(48)
    code = await sign_in_for_code(server, owner, email, verifier)
    stolen = await redeem(server, thief, code, verifier)
    assert stolen.status_code == 400, stolen.text
    assert stolen.json()["error"] == "invalid_grant"
    assert "access_token" not in stolen.json()


async def test_redirect_uri_must_match(server, tenant):
    reg = await register(tenant, redirect_uris=[REDIRECT, OTHER_REDIRECT])
    email = await new_user(tenant)
    verifier = secrets.token_urlsafe(48)
    async with browser(server) as b:
        for uri in ("https://evil.example.com/callback", REDIRECT + "/x", REDIRECT + "?a=1"):
            r = await b.get(authorize_query(reg, verifier, redirect_uri=uri))
            assert r.status_code == 400, (uri, r.text)
            assert "location" not in r.headers  # never sent to an unregistered address
            assert 'name="password"' not in r.text
        # with two registered, the client must say which one
        r = await b.get(authorize_query(reg, verifier, redirect_uri=None))
        assert r.status_code == 400, r.text
        assert "location" not in r.headers

    # at the token endpoint: another registered URI, or none, is refused too
    for sent in (OTHER_REDIRECT, None):
        code = await sign_in_for_code(server, reg, email, verifier)
        r = await redeem(server, reg, code, verifier, redirect_uri=sent)
        assert r.status_code == 400, (sent, r.text)
        assert r.json()["error"] == "invalid_grant"
    code = await sign_in_for_code(server, reg, email, verifier, redirect_uri=OTHER_REDIRECT)
    ok = await redeem(server, reg, code, verifier, redirect_uri=OTHER_REDIRECT)
    assert ok.status_code == 200, ok.text


# --- 4. refresh tokens ---------------------------------------------------------------------


@pytest.mark.parametrize("public", [False, True], ids=["confidential", "public"])
async def test_refresh_rotates(server, tenant, public):
    reg = await register(tenant, public=public)
    email = await new_user(tenant)
    first = await code_flow(server, reg, email)
    async with oauth(server, reg) as client:
        second = await client.refresh_token("/oauth/token", refresh_token=first["refresh_token"])
        third = await client.refresh_token("/oauth/token", refresh_token=second["refresh_token"])
    tokens = [first, second, third]
    assert len({t["refresh_token"] for t in tokens}) == 3
    assert len({t["access_token"] for t in tokens}) == 3
    assert all(t["scope"] == first["scope"] for t in tokens)
    assert await api_status(server, third["access_token"]) == 200
    # the rotated one no longer works (and, being a reuse, ends the family: see below)
    old = await refresh(server, reg, second["refresh_token"])
    assert old.status_code == 400, old.text
    assert old.json()["error"] == "invalid_grant"


async def test_refresh_cannot_widen_the_scope(server, tenant):
    reg = await register(tenant)
    email = await new_user(tenant)
    first = await code_flow(server, reg, email, scope="products:read")
    wider = await refresh(server, reg, first["refresh_token"], "products:read customers:read")
    assert wider.status_code == 400, wider.text
    assert wider.json()["error"] == "invalid_scope"
    assert "access_token" not in wider.json()
    # a refused request does not use the refresh token up (nor count as its reuse)
    narrower = await refresh(server, reg, first["refresh_token"])
    assert narrower.status_code == 200, narrower.text
    assert narrower.json()["scope"] == "products:read"
    assert await api_status(server, first["access_token"]) == 200


@pytest.mark.parametrize("thief_is_public", [False, True], ids=["confidential", "public"])
async def test_another_client_cannot_use_or_spoil_a_refresh_token(server, tenant, thief_is_public):
    owner = await register(tenant)
    thief = await register(tenant, public=thief_is_public)
    email = await new_user(tenant)
    token = await code_flow(server, owner, email)
    stolen = await refresh(server, thief, token["refresh_token"])
    assert stolen.status_code == 400, stolen.text
    assert stolen.json()["error"] == "invalid_grant"
    # the thief's attempt neither rotated the owner's token nor revoked its family
    mine = await refresh(server, owner, token["refresh_token"])
    assert mine.status_code == 200, mine.text
    assert await api_status(server, token["access_token"]) == 200


@pytest.mark.parametrize("replay_scope", [None, "products:read customers:read"])
async def test_reusing_a_rotated_refresh_token_revokes_the_family(server, tenant, replay_scope):
    reg = await register(tenant)
    email = await new_user(tenant)
    first = await code_flow(server, reg, email)
    other_sign_in = await code_flow(server, reg, email)  # another family: unaffected
    async with oauth(server, reg) as client:
        second = await client.refresh_token("/oauth/token", refresh_token=first["refresh_token"])
        third = await client.refresh_token("/oauth/token", refresh_token=second["refresh_token"])
    for token in (first, second, third):
        assert await api_status(server, token["access_token"]) == 200

    replay = await refresh(server, reg, first["refresh_token"], replay_scope)  # a stolen copy
    assert replay.status_code == 400, replay.text
    assert replay.json()["error"] == "invalid_grant"

    newest = await refresh(server, reg, third["refresh_token"])
    assert newest.status_code == 400, newest.text
    assert newest.json()["error"] == "invalid_grant"
    for token in (first, second, third):
        assert await api_status(server, token["access_token"]) == 401
    assert (await introspect(server, reg, third["refresh_token"]))["active"] is False

    assert await api_status(server, other_sign_in["access_token"]) == 200
    still = await refresh(server, reg, other_sign_in["refresh_token"])
    assert still.status_code == 200, still.text


# --- 5. revocation and introspection ---------------------------------------------------------


async def test_introspect_and_revoke_an_access_token(server, settings, tenant, other_tenant):
    reg = await register_machine(tenant)
    async with oauth(server, reg) as client:
        token = await client.fetch_token("/oauth/token", grant_type="client_credentials")
    access = token["access_token"]

    info = await introspect(server, reg, access, hint="access_token")
    assert info["active"] is True
    assert sorted(info["scope"].split()) == CLIENT_SCOPES
    assert info["client_id"] == reg.client_id
    assert info["sub"] == f"client:{reg.client_id}"
    assert abs(info["exp"] - (time.time() + settings.access_token_ttl_seconds)) < 60
    assert info["token_type"] == "Bearer"

    # a client of another organization learns nothing, and cannot revoke it
    foreign = await register_machine(other_tenant)
    assert await introspect(server, foreign, access) == {"active": False}
    async with oauth(server, foreign) as client:
        await client.revoke_token("/oauth/revoke", access, token_type_hint="access_token")
    assert (await introspect(server, reg, access))["active"] is True
    assert await api_status(server, access) == 200

    async with oauth(server, reg) as client:
        r = await client.revoke_token("/oauth/revoke", access, token_type_hint="access_token")
    assert r.status_code == 200, r.text
    assert await introspect(server, reg, access) == {"active": False}
    assert await api_status(server, access) == 401
    # RFC 7009 2.2: revoking again, or an unknown token, is still a 200
    async with oauth(server, reg) as client:
        assert (await client.revoke_token("/oauth/revoke", access)).status_code == 200
        assert (await client.revoke_token("/oauth/revoke", "no-such-token")).status_code == 200


async def test_introspect_and_revoke_a_refresh_token(server, tenant, other_tenant):
    reg = await register(tenant)
    email = await new_user(tenant)
    token = await code_flow(server, reg, email)
    rt = token["refresh_token"]

    info = await introspect(server, reg, rt, hint="refresh_token")
    assert info["active"] is True
    assert info["scope"] == "products:read orders:read"
    assert info["client_id"] == reg.client_id
    assert info["sub"].startswith("user:")
    assert info["exp"] > time.time() + 3600
    access_info = await introspect(server, reg, token["access_token"])
    assert access_info["active"] is True
    assert access_info["sub"] == info["sub"]

    foreign = await register_machine(other_tenant)
    assert await introspect(server, foreign, rt) == {"active": False}
    assert await introspect(server, foreign, token["access_token"]) == {"active": False}
    async with oauth(server, foreign) as client:
        await client.revoke_token("/oauth/revoke", rt, token_type_hint="refresh_token")
    assert (await introspect(server, reg, rt))["active"] is True

    async with oauth(server, reg) as client:
        r = await client.revoke_token("/oauth/revoke", rt, token_type_hint="refresh_token")
    assert r.status_code == 200, r.text
    assert await introspect(server, reg, rt) == {"active": False}
    again = await refresh(server, reg, rt)
    assert again.status_code == 400, again.text
    assert again.json()["error"] == "invalid_grant"
    # revoking the refresh token ends the sign-in: its access token is denied as well
    assert await api_status(server, token["access_token"]) == 401


async def test_a_public_client_revokes_its_own_refresh_token(server, tenant):
    reg = await register(tenant, public=True)
    email = await new_user(tenant)
    token = await code_flow(server, reg, email)
    async with oauth(server, reg) as client:
        r = await client.revoke_token("/oauth/revoke", token["refresh_token"])
    assert r.status_code == 200, r.text
    assert (await refresh(server, reg, token["refresh_token"])).status_code == 400
    async with http(server) as client:  # introspection is for confidential clients only
        denied = await client.post(
            "/oauth/introspect", data={"token": token["access_token"], "client_id": reg.client_id}
        )
    assert denied.status_code == 401


# --- 6. sign-in --------------------------------------------------------------------------------


async def test_wrong_password_and_unknown_user_are_indistinguishable(server, tenant):
    reg = await register(tenant)
    email = await new_user(tenant)

    url = authorize_query(reg)  # one request for all attempts: the pages can be compared

    async def attempt(who: str) -> tuple[httpx.Response, float]:
        async with browser(server) as b:
            page = await b.get(url)
            fields = hidden_fields(page.text)
            fields.update(email=who, password="wrong password!", decision="allow")
            started = time.perf_counter()
            r = await b.post("/oauth/authorize", data=fields)
            return r, time.perf_counter() - started

    wrong: list[tuple[httpx.Response, float]] = []
    unknown: list[tuple[httpx.Response, float]] = []
    for _ in range(3):  # interleaved, so load changes hit both alike
        wrong.append(await attempt(email))
        unknown.append(await attempt(fresh_email()))

    def scrubbed(r: httpx.Response) -> str:
        typed = re.search(
            r'name="email" type="email" autocomplete="username" value="([^"]*)"', r.text
        )
        assert typed is not None, "the email typed is kept for the next try"
        assert typed[1], "the email typed is kept for the next try"
        text = r.text.replace(hidden_fields(r.text)["csrf_token"], "CSRF")
        return text.replace(f'value="{typed[1]}"', 'value="EMAIL"')

    reference = wrong[0][0]
    assert f'value="{email}"' in reference.text
    for r, _ in wrong + unknown:
        assert "wrong password!" not in r.text
        assert r.status_code == reference.status_code == 401
        assert "location" not in r.headers
        assert notice(r.text) == "The email or password is incorrect."
        assert scrubbed(r) == scrubbed(reference)
    # both paths verify an Argon2 hash (a dummy one for unknown emails)
    wrong_median = statistics.median(t for _, t in wrong)
    unknown_median = statistics.median(t for _, t in unknown)
    assert unknown_median >= wrong_median / 3, (unknown_median, wrong_median)
    assert await codes_of(reg) == 0


async def test_failed_sign_ins_are_rate_limited_per_email(server, settings, tenant, frozen_limits):
    reg = await register(tenant)
    email = await new_user(tenant)
    bystander = await new_user(tenant)
    url = authorize_query(reg)
    limit = settings.login_attempts_per_minute
    async with browser(server) as b:
        statuses = [
            (await submit(b, url, email, password="wrong password!")).status_code
            for _ in range(limit + 1)
        ]
        assert statuses == [401] * limit + [429]
        # the right password is refused as well while the window lasts
        blocked = await submit(b, url, email)
        assert blocked.status_code == 429
        assert notice(blocked.text) == "Too many attempts. Wait a minute and try again."
        # one attempt comes back every 60 / limit seconds
        assert 0 < int(blocked.headers["retry-after"]) <= 60 // limit
        assert blocked.headers["ratelimit-policy"] == f'"sign-in";q={limit};w=60'
        assert "location" not in blocked.headers
        # the same limit holds for an email nobody has (no enumeration through 429s)
        ghost = fresh_email()
        ghost_statuses = [
            (await submit(b, url, ghost, password="wrong password!")).status_code
            for _ in range(limit + 1)
        ]
        assert ghost_statuses == [401] * limit + [429]
        # another person signing in from the same address is not held back
        ok = await submit(b, url, bystander)
    assert redirected(ok)["code"]
    assert await codes_of(reg) == 1


async def test_concurrent_guesses_are_counted_before_any_password_is_checked(
    server, settings, tenant, frozen_limits
):
    reg = await register(tenant)
    email = await new_user(tenant)
    limit = settings.login_attempts_per_minute
    async with browser(server) as b:
        page = await b.get(authorize_query(reg))
        fields = hidden_fields(page.text)
        fields.update(email=email, password="wrong password!", decision="allow")
        replies = await asyncio.gather(
            *(b.post("/oauth/authorize", data=fields) for _ in range(40))
        )
    statuses = [r.status_code for r in replies]
    # 401 means the password was checked; the other 35 never reached it
    assert statuses.count(401) == limit, statuses
    assert statuses.count(429) == 40 - limit, statuses


async def test_a_successful_sign_in_does_not_count_against_the_limit(
    server, settings, tenant, frozen_limits
):
    reg = await register(tenant)
    email = await new_user(tenant)
    url = authorize_query(reg)
    limit = settings.login_attempts_per_minute
    async with browser(server) as b:
        for _ in range(limit - 1):
            assert (await submit(b, url, email, password="wrong password!")).status_code == 401
        for _ in range(3):  # signing in gives its attempt back, every time
            assert redirected(await submit(b, url, email))["code"]
        assert (await submit(b, url, email, password="wrong password!")).status_code == 401
        assert (await submit(b, url, email, password="wrong password!")).status_code == 429


@pytest.mark.parametrize("forgery", ["no-cookie", "no-field", "wrong-token"])
async def test_the_sign_in_form_needs_its_csrf_token(server, tenant, forgery):
    reg = await register(tenant)
    email = await new_user(tenant)
    url = authorize_query(reg)
    async with browser(server) as b:
        page = await b.get(url)
        assert page.status_code == 200
        fields = hidden_fields(page.text)
        fields.update(email=email, password=PASSWORD, decision="allow")
        if forgery == "no-cookie":
            b.cookies.clear()
        elif forgery == "no-field":
            del fields["csrf_token"]
        else:
            fields["csrf_token"] = secrets.token_urlsafe(24)
        r = await b.post("/oauth/authorize", data=fields)
    assert r.status_code == 400, r.text
    assert "location" not in r.headers
    assert await codes_of(reg) == 0


async def test_a_user_of_another_organization_cannot_sign_in_through_the_client(
    server, tenant, other_tenant
):
    reg = await register(tenant)
    stranger = await new_user(other_tenant)
    async with browser(server) as b:
        r = await submit(b, authorize_query(reg), stranger)
    assert r.status_code == 401, r.text
    assert "location" not in r.headers
    assert notice(r.text) == "The email or password is incorrect."  # as for a wrong password
    assert await codes_of(reg) == 0


async def test_deny_redirects_with_access_denied(server, tenant):
    reg = await register(tenant)
    email = await new_user(tenant)
    url = authorize_query(reg, state="st-123")
    async with browser(server) as b:
        r = await submit(b, url, email, decision="deny")
    query = redirected(r)
    assert query["error"] == "access_denied"
    assert query["state"] == "st-123"
    assert "code" not in query
    assert await codes_of(reg) == 0


# --- 7. the sync/async bridge -------------------------------------------------------------------


async def test_token_burst_does_not_block_the_event_loop(server, tenant):
    reg = await register_machine(tenant)
    burst_size = 50
    health: list[tuple[float, float, int]] = []  # (started, latency, status)
    limits = httpx.Limits(max_connections=burst_size + 10, max_keepalive_connections=burst_size)
    async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=60) as client:

        async def token() -> int:
            r = await client.post(
                "/oauth/token", auth=reg.auth, data={"grant_type": "client_credentials"}
            )
            return r.status_code

        async def probe(stop: asyncio.Event) -> None:
            while not stop.is_set():
                started = time.perf_counter()
                r = await client.get("/healthz")
                health.append((started, time.perf_counter() - started, r.status_code))
                await asyncio.sleep(0.002)

        stop = asyncio.Event()
        prober = asyncio.create_task(probe(stop))
        await asyncio.sleep(0.01)
        started = time.perf_counter()
        statuses = await asyncio.gather(*(token() for _ in range(burst_size)))
        burst = time.perf_counter() - started
        stop.set()
        await prober

    assert statuses == [200] * burst_size
    assert all(status == 200 for _, _, status in health)
    during = [latency for t, latency, _ in health if started <= t <= started + burst]
    assert len(during) >= 3, (len(during), burst)
    # health checks were answered while tokens were being minted, each far quicker than
    # the burst: the loop never waited for authlib
    assert statistics.median(during) < burst / 4, (statistics.median(during), burst)
    assert max(during) < burst * 0.75, (max(during), burst)


# --- 8. discovery ----------------------------------------------------------------------------


async def test_authorization_server_metadata(server, settings, anon):
    r = await anon.get("/.well-known/oauth-authorization-server")
    assert r.status_code == 200
    meta = r.json()
    issuer = settings.issuer
    assert meta["issuer"] == issuer
    assert meta["authorization_endpoint"] == f"{issuer}/oauth/authorize"
    assert meta["token_endpoint"] == f"{issuer}/oauth/token"
    assert meta["revocation_endpoint"] == f"{issuer}/oauth/revoke"
    assert meta["introspection_endpoint"] == f"{issuer}/oauth/introspect"
    assert meta["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert set(meta["grant_types_supported"]) == {
        "authorization_code",
        "client_credentials",
        "refresh_token",
    }
    assert "none" in meta["token_endpoint_auth_methods_supported"]
    assert "none" not in meta["introspection_endpoint_auth_methods_supported"]
    # the advertised endpoints are the ones that answer
    for key in ("token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        path = urlsplit(meta[key]).path
        assert (await anon.post(path, data={})).status_code in (400, 401), key


async def test_jwks_publishes_public_keys_only(server, settings, tenant, anon):
    r = await anon.get("/.well-known/jwks.json")
    assert r.status_code == 200
    keys = r.json()["keys"]
    assert keys
    private_parts = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
    for key in keys:
        assert key["kid"]
        assert key["alg"] == settings.jwt_algorithm
        assert key["kty"] in ("EC", "RSA", "OKP")
        assert not private_parts & set(key), key
    assert len({key["kid"] for key in keys}) == len(keys)
    # and it verifies what the token endpoint issues
    reg = await register_machine(tenant)
    async with oauth(server, reg) as client:
        token = await client.fetch_token("/oauth/token", grant_type="client_credentials")
    claims = await verified_claims(server, settings, token["access_token"])
    assert claims["iss"] == settings.issuer


# --- edges: over-long identifiers, invalid emails, the bridge -----------------------------


async def test_over_long_identifiers_are_refused_without_a_server_error(server, tenant):
    reg = await register(tenant)
    async with http(server) as client:
        token = await client.post(
            "/oauth/token", auth=("c" * 300, "s"), data={"grant_type": "client_credentials"}
        )
        assert token.status_code == 401
        page = await client.get(authorize_query(reg, client_id="c" * 300))
        assert page.status_code == 400
    async with browser(server) as b:
        login = await submit(b, authorize_query(reg), "a" * 300 + "@example.test")
    assert login.status_code == 401


@pytest.mark.parametrize("email", ["not an email", "a@", "@example.test", "a b@example.test"])
async def test_users_need_a_valid_email(tenant, email):
    with pytest.raises(InvalidArgument, match="email"):
        await create_user(tenant.id, email, PASSWORD, "staff")


async def test_authlib_is_never_called_on_the_event_loop_thread():
    """The bridge refuses instead of deadlocking (the hook would wait for its own loop)."""
    bridge = Bridge()
    bridge.loop = asyncio.get_running_loop()

    async def nothing() -> None:
        return None

    with pytest.raises(RuntimeError, match="worker thread"):
        bridge.run(nothing())
    assert await asyncio.to_thread(bridge.run, nothing()) is None
