"""The authorization server end to end, driven by an independent OAuth2 client.

authlib's httpx client (``AsyncOAuth2Client``) runs every grant against the real
server: client credentials, authorization code with PKCE (confidential and public
clients, through the real sign-in page), refresh with rotation and reuse detection,
revocation (RFC 7009) and introspection (RFC 7662) of both token kinds. Plain httpx
sends what a well-behaved client never would (PKCE failures, replays).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from db.accounts import create_client, create_user
from db.errors import InvalidArgument
from gateway.auth.ratelimit import WINDOW_SECONDS
from gateway.auth.server import Bridge
from tests.factories import unique

REDIRECT = "https://app.example.test/callback"
PASSWORD = "correct horse battery"


@dataclass
class Registered:
    client_id: str
    secret: str | None


async def register(tenant: Any, *, public: bool = False, **kwargs: Any) -> Registered:
    kwargs.setdefault("grant_types", ["authorization_code", "refresh_token"])
    kwargs.setdefault("scopes", ["products:read", "orders:read", "customers:read"])
    kwargs.setdefault("redirect_uris", [REDIRECT])
    kwargs.setdefault("role", "staff")
    new = await create_client(tenant.id, unique("client "), public=public, **kwargs)
    return Registered(new.client.client_id, new.secret)


async def user_of(tenant: Any, role: str = "staff") -> str:
    email = f"{unique('user')}@example.test"
    await create_user(tenant.id, email, PASSWORD, role)
    return email


def oauth_client(server: Any, reg: Registered, **kwargs: Any) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=reg.client_id,
        client_secret=reg.secret,
        token_endpoint_auth_method="client_secret_basic" if reg.secret else "none",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        base_url=server.base_url,
        **kwargs,
    )


_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def form_fields(page: str) -> dict[str, str]:
    import html

    return {name: html.unescape(value) for name, value in _HIDDEN.findall(page)}


async def sign_in(
    browser: httpx.AsyncClient, authorize_url: str, email: str, password: str = PASSWORD,
    decision: str = "allow",
) -> httpx.Response:  # fmt: skip
    """What a person does in the browser: open the page, fill it in, submit."""
    page = await browser.get(authorize_url)
    assert page.status_code == 200, page.text
    assert "text/html" in page.headers["content-type"]
    fields = form_fields(page.text)
    assert fields["csrf_token"]
    fields.update(email=email, password=password, decision=decision)
    return await browser.post("/oauth/authorize", data=fields)


def code_from(response: httpx.Response) -> dict[str, list[str]]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT)
    return parse_qs(urlsplit(location).query)


@asynccontextmanager
async def code_flow(
    server: Any, reg: Registered, email: str, scope: str = "products:read orders:read"
) -> AsyncIterator[tuple[AsyncOAuth2Client, dict[str, Any]]]:
    """Sign ``email`` in through ``reg`` and exchange the code: (client, token)."""
    async with oauth_client(server, reg, scope=scope) as client:
        verifier = secrets.token_urlsafe(48)
        url, state = client.create_authorization_url("/oauth/authorize", code_verifier=verifier)
        async with httpx.AsyncClient(base_url=server.base_url) as browser:
            landed = await sign_in(browser, url, email)
        query = code_from(landed)
        assert query["state"] == [state]
        token = await client.fetch_token(
            "/oauth/token",
            grant_type="authorization_code",
            code=query["code"][0],
            code_verifier=verifier,
        )
        yield client, dict(token)


async def api(server: Any, token: str, path: str = "/api/v1/products") -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        return await http.get(path, headers={"Authorization": f"Bearer {token}"})


# --- client credentials ------------------------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_client_credentials_token_works_on_rest(server, settings, tenant, method):
    reg = await register(tenant, grant_types=["client_credentials"])
    async with AsyncOAuth2Client(
        reg.client_id, reg.secret, token_endpoint_auth_method=method, base_url=server.base_url
    ) as client:
        token = await client.fetch_token("/oauth/token", grant_type="client_credentials")
    assert token["token_type"].lower() == "bearer"
    assert token["expires_in"] == settings.access_token_ttl_seconds
    assert set(token["scope"].split()) == {"products:read", "orders:read", "customers:read"}
    assert "refresh_token" not in token
    assert (await api(server, token["access_token"])).status_code == 200
    # the client's registration caps the token: no write scope was registered
    denied = await api(server, token["access_token"], "/api/v1/stats/sales")
    assert denied.status_code == 403


async def test_a_token_carries_only_requested_and_registered_scopes(server, tenant):
    reg = await register(tenant, grant_types=["client_credentials"])
    async with AsyncOAuth2Client(reg.client_id, reg.secret, base_url=server.base_url) as client:
        narrow = await client.fetch_token(
            "/oauth/token", grant_type="client_credentials", scope="products:read"
        )
        assert narrow["scope"] == "products:read"
        assert (await api(server, narrow["access_token"], "/api/v1/orders")).status_code == 403
        wider = await client.fetch_token(
            "/oauth/token", grant_type="client_credentials", scope="products:read orders:write"
        )
        assert wider["scope"] == "products:read"  # orders:write was never registered
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        only_foreign = await http.post(
            "/oauth/token",
            auth=(reg.client_id, reg.secret or ""),
            data={"grant_type": "client_credentials", "scope": "orders:write"},
        )
    assert only_foreign.status_code == 400
    assert only_foreign.json()["error"] == "invalid_scope"


async def test_a_viewer_client_never_gets_write_scopes_it_was_registered_with(server, tenant):
    reg = await register(
        tenant, grant_types=["client_credentials"], scopes=["products:read", "products:write"],
        role="viewer",
    )  # fmt: skip
    async with AsyncOAuth2Client(reg.client_id, reg.secret, base_url=server.base_url) as client:
        token = await client.fetch_token("/oauth/token", grant_type="client_credentials")
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        r = await http.post(
            "/api/v1/products",
            json={"sku": unique("V-"), "name": "x", "price_cents": 1, "stock": 1},
            headers={"Authorization": f"Bearer {token['access_token']}"},
        )
    assert r.status_code == 403


async def test_wrong_secret_and_public_clients_get_no_client_credentials(server, tenant):
    reg = await register(tenant, grant_types=["client_credentials"])
    public = await register(tenant, public=True)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        wrong = await http.post(
            "/oauth/token", auth=(reg.client_id, "not-the-secret"),
            data={"grant_type": "client_credentials"},
        )  # fmt: skip
        assert wrong.status_code == 401
        assert wrong.json()["error"] == "invalid_client"
        unknown = await http.post(
            "/oauth/token", auth=("no-such-client", "x"), data={"grant_type": "client_credentials"}
        )
        assert unknown.status_code == 401
        anonymous = await http.post(
            "/oauth/token", data={"grant_type": "client_credentials", "client_id": public.client_id}
        )
        assert anonymous.status_code in (400, 401)
        assert "access_token" not in anonymous.json()
    with pytest.raises(InvalidArgument, match="public client cannot use client_credentials"):
        await register(tenant, public=True, grant_types=["client_credentials"])


# --- authorization code + PKCE ------------------------------------------------------


@pytest.mark.parametrize("public", [False, True], ids=["confidential", "public"])
async def test_code_flow_with_pkce_end_to_end(server, tenant, public):
    reg = await register(tenant, public=public)
    email = await user_of(tenant)
    async with code_flow(server, reg, email) as (_client, token):
        assert token["scope"] == "products:read orders:read"
        assert token["refresh_token"]
        r = await api(server, token["access_token"])
        assert r.status_code == 200
        assert (await api(server, token["access_token"], "/api/v1/customers")).status_code == 403


async def test_the_code_flow_gives_no_more_than_the_users_role(server, tenant):
    reg = await register(tenant, scopes=["products:read", "products:write"])
    viewer = await user_of(tenant, role="viewer")
    async with code_flow(server, reg, viewer, scope="products:read products:write") as (_, token):
        assert token["scope"] == "products:read"


async def test_a_code_granting_nothing_gives_no_token(server, tenant):
    """A viewer asking only for a write scope: the sign-in grants nothing, and the code
    must not turn into the client's other scopes (never more than requested)."""
    reg = await register(tenant, scopes=["products:read", "products:write"])
    viewer = await user_of(tenant, role="viewer")
    verifier = secrets.token_urlsafe(48)
    params = authorize_params(
        reg, scope="products:write", code_challenge=create_s256_code_challenge(verifier)
    )
    async with httpx.AsyncClient(base_url=server.base_url) as browser:
        landed = await sign_in(
            browser, "/oauth/authorize?" + str(httpx.QueryParams(params)), viewer
        )
    r = await _redeem(server, reg, code_from(landed)["code"][0], verifier)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_scope"
    assert "access_token" not in r.json()


async def test_authorize_refuses_scopes_the_client_was_never_given(server, tenant):
    reg = await register(tenant, scopes=["products:read"])
    async with httpx.AsyncClient(base_url=server.base_url) as browser:
        r = await browser.get(
            "/oauth/authorize", params=authorize_params(reg, scope="orders:write")
        )
    assert 'name="password"' not in r.text
    assert r.status_code == 302
    assert "error=invalid_scope" in r.headers["location"]


def authorize_params(reg: Registered, **overrides: str) -> dict[str, str]:
    verifier = secrets.token_urlsafe(48)
    params = {
        "response_type": "code", "client_id": reg.client_id, "redirect_uri": REDIRECT,
        "scope": "products:read", "state": "s1",
        "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256",
    }  # fmt: skip
    params.update(overrides)
    return {k: v for k, v in params.items() if v != ""}


@pytest.mark.parametrize(
    "overrides",
    [
        {"code_challenge": "", "code_challenge_method": ""},
        {"code_challenge_method": ""},
        {"code_challenge_method": "plain"},
        {"code_challenge": "short"},
    ],
    ids=["no-pkce", "no-method", "plain", "malformed-challenge"],
)
async def test_authorize_refuses_requests_without_s256_pkce(server, tenant, overrides):
    reg = await register(tenant)
    async with httpx.AsyncClient(base_url=server.base_url) as browser:
        r = await browser.get("/oauth/authorize", params=authorize_params(reg, **overrides))
    # refused before any sign-in page is shown: an error to the client, no form
    assert 'name="password"' not in r.text
    if r.status_code == 302:
        assert "error=invalid_request" in r.headers["location"]
        assert "code=" not in r.headers["location"]
    else:
        assert r.status_code == 400, r.text


async def test_authorize_refuses_an_unregistered_redirect_uri(server, tenant):
    reg = await register(tenant)
    async with httpx.AsyncClient(base_url=server.base_url) as browser:
        r = await browser.get(
            "/oauth/authorize", params=authorize_params(reg, redirect_uri="https://evil.test/cb")
        )
    assert r.status_code == 400
    assert "evil.test" not in r.headers.get("location", "")


async def _code(server: Any, reg: Registered, email: str, verifier: str) -> str:
    params = authorize_params(reg, code_challenge=create_s256_code_challenge(verifier))
    async with httpx.AsyncClient(base_url=server.base_url) as browser:
        landed = await sign_in(
            browser, "/oauth/authorize?" + httpx.QueryParams(params).__str__(), email
        )
    return code_from(landed)["code"][0]


async def _redeem(
    server: Any, reg: Registered, code: str, verifier: str | None, **extra: str
) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, **extra}
    if verifier is not None:
        data["code_verifier"] = verifier
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        return await http.post("/oauth/token", data=data, auth=(reg.client_id, reg.secret or ""))


async def test_token_endpoint_pkce_failures(server, tenant):
    reg = await register(tenant)
    email = await user_of(tenant)
    verifier = secrets.token_urlsafe(48)

    wrong = await _redeem(server, reg, await _code(server, reg, email, verifier), "x" * 50)
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"

    missing = await _redeem(server, reg, await _code(server, reg, email, verifier), None)
    assert missing.status_code == 400
    assert "access_token" not in missing.json()

    code = await _code(server, reg, email, verifier)
    first = await _redeem(server, reg, code, verifier)
    assert first.status_code == 200, first.text
    replay = await _redeem(server, reg, code, verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"


async def test_a_code_belongs_to_its_client_and_redirect_uri(server, tenant):
    reg = await register(tenant)
    other = await register(tenant)
    email = await user_of(tenant)
    verifier = secrets.token_urlsafe(48)
    stolen = await _redeem(server, other, await _code(server, reg, email, verifier), verifier)
    assert stolen.status_code == 400
    moved = await _redeem(
        server, reg, await _code(server, reg, email, verifier), verifier,
        redirect_uri="https://app.example.test/other",
    )  # fmt: skip
    assert moved.status_code == 400


async def test_deny_redirects_with_access_denied(server, tenant):
    reg = await register(tenant)
    email = await user_of(tenant)
    async with httpx.AsyncClient(base_url=server.base_url) as browser:
        url = "/oauth/authorize?" + str(httpx.QueryParams(authorize_params(reg)))
        r = await sign_in(browser, url, email, decision="deny")
    query = code_from(r)
    assert query["error"] == ["access_denied"]
    assert "code" not in query


async def test_a_user_of_another_organization_cannot_sign_in_through_the_client(
    server, tenant, other_tenant
):
    reg = await register(tenant)
    stranger = await user_of(other_tenant)
    async with httpx.AsyncClient(base_url=server.base_url) as browser:
        url = "/oauth/authorize?" + str(httpx.QueryParams(authorize_params(reg)))
        r = await sign_in(browser, url, stranger)
    assert r.status_code == 401
    assert "location" not in r.headers


async def test_over_long_identifiers_are_refused_without_a_server_error(server, tenant):
    reg = await register(tenant)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        token = await http.post(
            "/oauth/token", auth=("c" * 300, "s"), data={"grant_type": "client_credentials"}
        )
        assert token.status_code == 401
        page = await http.get("/oauth/authorize", params=authorize_params(reg, client_id="c" * 300))
        assert page.status_code == 400
        url = "/oauth/authorize?" + str(httpx.QueryParams(authorize_params(reg)))
        login = await sign_in(http, url, "a" * 300 + "@example.test")
        assert login.status_code == 401


@pytest.mark.parametrize("email", ["not an email", "a@", "@example.test", "a b@example.test"])
async def test_users_need_a_valid_email(tenant, email):
    with pytest.raises(InvalidArgument, match="email"):
        await create_user(tenant.id, email, PASSWORD, "staff")


# --- sign-in page ---------------------------------------------------------------------


async def test_wrong_password_and_unknown_user_look_the_same(server, tenant):
    reg = await register(tenant)
    email = await user_of(tenant)
    url = "/oauth/authorize?" + str(httpx.QueryParams(authorize_params(reg)))

    async def attempt(who: str, password: str) -> tuple[httpx.Response, float]:
        async with httpx.AsyncClient(base_url=server.base_url) as browser:
            started = time.perf_counter()
            r = await sign_in(browser, url, who, password=password)
            return r, time.perf_counter() - started

    wrong, wrong_t = await attempt(email, "wrong password!!")
    unknown, unknown_t = await attempt(f"{unique('nobody')}@example.test", "wrong password!!")
    assert wrong.status_code == unknown.status_code == 401

    def notice(r: httpx.Response) -> str:
        return re.findall(r'<p class="error" role="alert">(.*?)</p>', r.text)[0]

    assert notice(wrong) == notice(unknown) == "The email or password is incorrect."
    # both paths verify an Argon2 hash (a dummy one for unknown emails)
    assert unknown_t > wrong_t / 3


async def test_sign_in_is_rate_limited(server, settings, tenant):
    reg = await register(tenant)
    email = await user_of(tenant)
    url = "/oauth/authorize?" + str(httpx.QueryParams(authorize_params(reg)))
    statuses = []
    # The limiter counts per wall-clock minute: do not start just before one ends.
    if time.time() % WINDOW_SECONDS > WINDOW_SECONDS - 10:
        await asyncio.sleep(WINDOW_SECONDS - time.time() % WINDOW_SECONDS + 0.1)
    async with httpx.AsyncClient(base_url=server.base_url) as browser:
        for _ in range(settings.login_attempts_per_minute + 1):
            r = await sign_in(browser, url, email, password="wrong password!!")
            statuses.append(r.status_code)
        # the right password is refused too while the window lasts
        blocked = await sign_in(browser, url, email)
    assert statuses[:-1] == [401] * settings.login_attempts_per_minute
    assert statuses[-1] == 429
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0


async def test_the_form_needs_its_csrf_token(server, tenant):
    reg = await register(tenant)
    email = await user_of(tenant)
    url = "/oauth/authorize?" + str(httpx.QueryParams(authorize_params(reg)))
    async with httpx.AsyncClient(base_url=server.base_url) as browser:
        page = await browser.get(url)
        fields = form_fields(page.text)
        fields.update(email=email, password=PASSWORD, decision="allow")
        forged = await browser.post("/oauth/authorize", data={**fields, "csrf_token": "guessed"})
        assert forged.status_code == 400
        assert "location" not in forged.headers
    async with httpx.AsyncClient(base_url=server.base_url) as cookieless:
        no_cookie = await cookieless.post("/oauth/authorize", data=fields)
    assert no_cookie.status_code == 400
    assert "location" not in no_cookie.headers
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


# --- refresh tokens ----------------------------------------------------------------------


async def test_refresh_rotates_and_reuse_revokes_the_family(server, tenant):
    reg = await register(tenant)
    email = await user_of(tenant)
    async with code_flow(server, reg, email) as (client, first):
        second = await client.refresh_token("/oauth/token", refresh_token=first["refresh_token"])
        assert second["refresh_token"] != first["refresh_token"]
        assert second["access_token"] != first["access_token"]
        third = await client.refresh_token("/oauth/token", refresh_token=second["refresh_token"])
        assert (await api(server, third["access_token"])).status_code == 200

        # an attacker replays the first (already rotated) refresh token
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            replay = await http.post(
                "/oauth/token",
                data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
                auth=(reg.client_id, reg.secret or ""),
            )
            assert replay.status_code == 400
            assert replay.json()["error"] == "invalid_grant"
            # ... and the whole family is gone: the newest refresh token and access token too
            newest = await http.post(
                "/oauth/token",
                data={"grant_type": "refresh_token", "refresh_token": third["refresh_token"]},
                auth=(reg.client_id, reg.secret or ""),
            )
            assert newest.status_code == 400
        for token in (first, second, third):
            assert (await api(server, token["access_token"])).status_code == 401


async def test_a_public_client_refreshes_without_a_secret(server, tenant):
    reg = await register(tenant, public=True)
    email = await user_of(tenant)
    async with code_flow(server, reg, email) as (client, first):
        second = await client.refresh_token("/oauth/token", refresh_token=first["refresh_token"])
    assert (await api(server, second["access_token"])).status_code == 200


# --- revocation and introspection ---------------------------------------------------------


async def introspect(server: Any, reg: Registered, token: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        r = await http.post(
            "/oauth/introspect", data={"token": token}, auth=(reg.client_id, reg.secret or "")
        )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_revoke_and_introspect_an_access_token(server, tenant, other_tenant):
    reg = await register(tenant, grant_types=["client_credentials"])
    async with AsyncOAuth2Client(reg.client_id, reg.secret, base_url=server.base_url) as client:
        token = (await client.fetch_token("/oauth/token", grant_type="client_credentials"))[
            "access_token"
        ]
        info = await introspect(server, reg, token)
        assert info["active"] is True
        assert info["client_id"] == reg.client_id
        assert info["sub"] == f"client:{reg.client_id}"
        assert info["exp"] > time.time()
        assert "products:read" in info["scope"].split()

        # a client of another organization learns nothing about it
        foreign = await register(other_tenant, grant_types=["client_credentials"])
        assert (await introspect(server, foreign, token)) == {"active": False}

        r = await client.revoke_token("/oauth/revoke", token, token_type_hint="access_token")
        assert r.status_code == 200
    assert (await introspect(server, reg, token))["active"] is False
    assert (await api(server, token)).status_code == 401


async def test_revoke_and_introspect_a_refresh_token(server, tenant):
    reg = await register(tenant)
    email = await user_of(tenant)
    async with code_flow(server, reg, email) as (client, token):
        info = await introspect(server, reg, token["refresh_token"])
        assert info["active"] is True
        assert info["client_id"] == reg.client_id
        r = await client.revoke_token(
            "/oauth/revoke", token["refresh_token"], token_type_hint="refresh_token"
        )
        assert r.status_code == 200
    assert (await introspect(server, reg, token["refresh_token"]))["active"] is False
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        again = await http.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
            auth=(reg.client_id, reg.secret or ""),
        )
    assert again.status_code == 400
    # revoking the refresh token ends the sign-in: its access token is denied too
    assert (await api(server, token["access_token"])).status_code == 401


async def test_revoking_an_unknown_token_is_quietly_ok(server, tenant):
    reg = await register(tenant, grant_types=["client_credentials"])
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        r = await http.post(
            "/oauth/revoke", data={"token": "nonsense"}, auth=(reg.client_id, reg.secret or "")
        )
    assert r.status_code == 200  # RFC 7009 section 2.2


# --- the sync/async bridge ---------------------------------------------------------------


async def test_fifty_concurrent_token_requests_while_other_requests_answer(server, tenant):
    reg = await register(tenant, grant_types=["client_credentials"])
    latencies: list[float] = []
    health_done: list[float] = []
    token_done: list[float] = []
    async with httpx.AsyncClient(
        base_url=server.base_url, limits=httpx.Limits(max_connections=100), timeout=60
    ) as http:

        async def token() -> int:
            r = await http.post(
                "/oauth/token", auth=(reg.client_id, reg.secret or ""),
                data={"grant_type": "client_credentials"},
            )  # fmt: skip
            token_done.append(time.perf_counter())
            return r.status_code

        async def health(stop: asyncio.Event) -> None:
            while not stop.is_set():
                started = time.perf_counter()
                r = await http.get("/healthz")
                assert r.status_code == 200
                latencies.append(time.perf_counter() - started)
                health_done.append(time.perf_counter())
                await asyncio.sleep(0.005)

        stop = asyncio.Event()
        probe = asyncio.create_task(health(stop))
        started = time.perf_counter()
        statuses = await asyncio.gather(*(token() for _ in range(50)))
        burst = time.perf_counter() - started
        stop.set()
        await probe
    assert statuses == [200] * 50
    # The loop kept serving while token requests were in flight: health checks kept
    # completing during the burst, each far quicker than the burst itself.
    during = [t for t in health_done if t < max(token_done)]
    assert len(during) >= 3, (len(during), burst)
    assert statistics.median(latencies) < max(burst / 4, 0.02), (latencies, burst)


# --- discovery ------------------------------------------------------------------------------


async def test_metadata_and_jwks(server, settings, anon):
    meta = (await anon.get("/.well-known/oauth-authorization-server")).json()
    assert meta["issuer"] == settings.issuer
    assert meta["token_endpoint"] == f"{settings.issuer}/oauth/token"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert set(meta["grant_types_supported"]) == {
        "authorization_code", "client_credentials", "refresh_token",
    }  # fmt: skip
    jwks = (await anon.get("/.well-known/jwks.json")).json()
    assert jwks["keys"]
    for key in jwks["keys"]:
        assert key["kid"]
        assert key["alg"] in ("ES256", "RS256")
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


async def test_authlib_is_never_called_on_the_event_loop_thread():
    """The bridge refuses instead of deadlocking (the hook would wait for its own loop)."""
    bridge = Bridge()
    bridge.loop = asyncio.get_running_loop()

    async def nothing() -> None:
        return None

    with pytest.raises(RuntimeError, match="worker thread"):
        bridge.run(nothing())
    assert await asyncio.to_thread(bridge.run, nothing()) is None
