"""OAuth2 to the letter: what the RFCs ask of the authorization server beyond the
happy paths that ``test_grants.py`` drives.

- A reused authorization code revokes every token its first redemption issued, the
  refresh family descended from it included (RFC 6749 4.1.2), also when the two
  redemptions race; the reuse itself stays ``invalid_grant``.
- ``redirect_uri`` is required at ``/oauth/authorize``, must equal a registered URI
  character for character, and the token request must repeat it identically (OAuth 2.1
  4.1.1, 4.1.3).
- ``/oauth/authorize`` answers a malformed, missing or unregistered ``redirect_uri`` or
  ``client_id`` with a self-contained 400 page: never a 500, never a redirect.
- A client-credentials token's scopes are requested ∩ client ∩ role; introspection
  reports exactly the token's scopes; registration refuses scopes the role cannot hold.
- ``/oauth/revoke`` answers every token it does not revoke exactly as it answers one it
  does (RFC 7009 2.2), and treats ``token_type_hint`` as a hint (2.1).

authlib's ``AsyncOAuth2Client`` plays the well-behaved client; plain httpx the rest.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from authlib.integrations.base_client import OAuthError
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography.hazmat.primitives.asymmetric import ec

from db.accounts import create_client, create_user, secret_digest
from db.catalog import ALL_SCOPES, role_scopes
from db.errors import InvalidArgument
from db.models import AuthorizationCode, OAuthClient
from gateway.auth.routes import PAGE_HEADERS
from tests.auth.test_grants import (
    OTHER_REDIRECT,
    PASSWORD,
    REDIRECT,
    Registered,
    api_status,
    authorize_query,
    browser,
    code_flow,
    codes_of,
    hidden_fields,
    http,
    introspect,
    new_user,
    oauth,
    redeem,
    redirected,
    refresh,
    register,
    register_machine,
    sign_in_for_code,
    submit,
    verified_claims,
)

# --- helpers ---------------------------------------------------------------------------


async def redeem_with_authlib(server: Any, reg: Registered, code: str, verifier: str) -> Any:
    async with oauth(server, reg) as client:
        return await client.fetch_token(
            "/oauth/token", grant_type="authorization_code", code=code, code_verifier=verifier
        )


def assert_error_page(r: httpx.Response) -> None:
    """The authorization endpoint's own 400 page: nothing sent on to any redirect URI,
    no sign-in form, no cookie, nothing loaded from elsewhere, no traceback."""
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("text/html"), r.headers
    assert "location" not in r.headers
    assert "set-cookie" not in r.headers
    for name, value in PAGE_HEADERS.items():
        assert r.headers.get(name) == value, name
    page = r.text
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert "Traceback" not in page
    assert 'name="password"' not in page
    assert not re.search(r"\b(src|href|action)\s*=", page, re.I), page  # self-contained
    assert "<script" not in page.lower()


# --- 1. a reused code revokes what it issued ----------------------------------------------


async def test_a_reused_code_revokes_the_tokens_of_its_first_redemption(server, tenant):
    reg = await register(tenant)
    email = await new_user(tenant)
    other_sign_in = await code_flow(server, reg, email)  # another code: untouched
    verifier = secrets.token_urlsafe(48)
    code = await sign_in_for_code(server, reg, email, verifier)

    first = await redeem_with_authlib(server, reg, code, verifier)
    async with oauth(server, reg) as client:  # the sign-in lives on through a rotation
        rotated = await client.refresh_token("/oauth/token", refresh_token=first["refresh_token"])
    assert await api_status(server, first["access_token"]) == 200
    assert await api_status(server, rotated["access_token"]) == 200

    with pytest.raises(OAuthError) as reused:
        await redeem_with_authlib(server, reg, code, verifier)
    assert reused.value.error == "invalid_grant"

    for token in (first, rotated):
        assert await api_status(server, token["access_token"]) == 401
        assert (await introspect(server, reg, token["access_token"]))["active"] is False
    again = await refresh(server, reg, rotated["refresh_token"])
    assert again.status_code == 400, again.text
    assert again.json()["error"] == "invalid_grant"
    assert (await introspect(server, reg, rotated["refresh_token"]))["active"] is False

    assert await api_status(server, other_sign_in["access_token"]) == 200
    assert (await refresh(server, reg, other_sign_in["refresh_token"])).status_code == 200


async def test_a_reused_code_revokes_an_access_token_that_came_without_a_refresh_token(
    server, tenant
):
    reg = await register(tenant, grant_types=["authorization_code"])
    email = await new_user(tenant)
    verifier = secrets.token_urlsafe(48)
    code = await sign_in_for_code(server, reg, email, verifier)
    first = await redeem_with_authlib(server, reg, code, verifier)
    assert "refresh_token" not in first
    assert await api_status(server, first["access_token"]) == 200

    with pytest.raises(OAuthError) as reused:
        await redeem_with_authlib(server, reg, code, verifier)
    assert reused.value.error == "invalid_grant"
    assert await api_status(server, first["access_token"]) == 401


async def test_racing_redemptions_of_one_code_leave_no_live_token(server, tenant):
    """Whichever way the winner's token save and a loser's revocation interleave, the
    winner's tokens end up revoked."""
    reg = await register(tenant)
    email = await new_user(tenant)
    verifier = secrets.token_urlsafe(48)
    code = await sign_in_for_code(server, reg, email, verifier)
    results = await asyncio.gather(*(redeem(server, reg, code, verifier) for _ in range(4)))
    assert sorted(r.status_code for r in results) == [200, 400, 400, 400]
    assert {r.json()["error"] for r in results if r.status_code == 400} == {"invalid_grant"}
    won = next(r.json() for r in results if r.status_code == 200)
    assert await api_status(server, won["access_token"]) == 401
    assert (await refresh(server, reg, won["refresh_token"])).status_code == 400


async def test_another_client_presenting_a_used_code_revokes_nothing(server, tenant):
    """A code is bound to its client: another client's attempt is not a reuse of it."""
    reg = await register(tenant)
    other = await register(tenant)
    email = await new_user(tenant)
    verifier = secrets.token_urlsafe(48)
    code = await sign_in_for_code(server, reg, email, verifier)
    first = await redeem_with_authlib(server, reg, code, verifier)
    stolen = await redeem(server, other, code, verifier)
    assert stolen.status_code == 400, stolen.text
    assert stolen.json()["error"] == "invalid_grant"
    assert await api_status(server, first["access_token"]) == 200


# --- 2. redirect_uri: required, exact, repeated --------------------------------------------


async def test_authorize_requires_redirect_uri_even_with_one_registered(server, tenant):
    reg = await register(tenant)  # exactly one registered URI
    async with browser(server) as b:
        r = await b.get(authorize_query(reg, redirect_uri=None))
    assert_error_page(r)
    assert await codes_of(reg) == 0


@pytest.mark.parametrize(
    "variant",
    [
        REDIRECT + "/",
        REDIRECT.replace("app.example.com", "APP.example.com"),
        REDIRECT.replace("https:", "HTTPS:"),
        REDIRECT.replace("app.example.com", "app.example.com:443"),
        REDIRECT.replace("callback", "%63allback"),
        REDIRECT + "?",
        REDIRECT + "#",
        " " + REDIRECT,
    ],
    ids=[
        "slash",
        "host-case",
        "scheme-case",
        "default-port",
        "encoded",
        "query",
        "fragment",
        "space",
    ],
)
async def test_redirect_uri_is_matched_by_string_equality(server, tenant, variant):
    """Variants a URL normalizer would call equal are different URIs here, at the
    authorization endpoint and at the token endpoint alike."""
    reg = await register(tenant)
    email = await new_user(tenant)
    verifier = secrets.token_urlsafe(48)
    async with browser(server) as b:
        assert_error_page(await b.get(authorize_query(reg, verifier, redirect_uri=variant)))

    code = await sign_in_for_code(server, reg, email, verifier)
    r = await redeem(server, reg, code, verifier, redirect_uri=variant)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_grant"


async def test_the_token_request_must_repeat_the_redirect_uri(server, tenant):
    reg = await register(tenant, redirect_uris=[REDIRECT, OTHER_REDIRECT])
    email = await new_user(tenant)
    verifier = secrets.token_urlsafe(48)
    for sent in (None, REDIRECT):  # missing, or another registered one
        code = await sign_in_for_code(server, reg, email, verifier, redirect_uri=OTHER_REDIRECT)
        r = await redeem(server, reg, code, verifier, redirect_uri=sent)
        assert r.status_code == 400, (sent, r.text)
        assert r.json()["error"] == "invalid_grant"
        assert "access_token" not in r.json()
    code = await sign_in_for_code(server, reg, email, verifier, redirect_uri=OTHER_REDIRECT)
    async with http(server) as client:  # sent twice: which one would count?
        twice = await client.post(
            "/oauth/token",
            auth=reg.auth,
            content=str(
                httpx.QueryParams(
                    [
                        ("grant_type", "authorization_code"),
                        ("code", code),
                        ("code_verifier", verifier),
                        ("redirect_uri", OTHER_REDIRECT),
                        ("redirect_uri", REDIRECT),
                    ]
                )
            ),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert twice.status_code == 400, twice.text
    assert twice.json()["error"] == "invalid_request"


async def test_a_code_stored_without_a_redirect_uri_is_not_redeemed(server, tenant):
    """A code from before redirect_uri was required holds none: authlib would skip the
    comparison; the grant refuses it instead of trusting whatever is sent."""
    reg = await register(tenant)
    user = await create_user(tenant.id, f"u{uuid.uuid4().hex[:12]}@example.com", PASSWORD, "staff")
    verifier = secrets.token_urlsafe(48)
    for sent in (REDIRECT, None):
        code = secrets.token_urlsafe(32)
        await AuthorizationCode.create(
            code_hash=secret_digest(code),
            client_id=reg.client_id,
            user_id=user.id,
            redirect_uri="",
            scope="products:read",
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
            expires_at=datetime.now(UTC) + timedelta(minutes=5),
        )
        r = await redeem(server, reg, code, verifier, redirect_uri=sent)
        assert r.status_code == 400, (sent, r.text)
        assert r.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "uri",
    [
        "/callback",
        "app.example.com/callback",
        REDIRECT + "#top",
        "https://app.example.com/a b",
        "https://app.example.com/caf\u00e9",
        "https://app.example.com/\tx",
        "javascript:alert(1)",
        "data:text/html,hi",
        "https://app.example.com/" + "x" * 2000,
        "",
    ],
    ids=[
        "relative",
        "no-scheme",
        "fragment",
        "space",
        "non-ascii",
        "tab",
        "javascript",
        "data",
        "too-long",
        "empty",
    ],
)
async def test_registration_refuses_redirect_uris_that_cannot_be_matched_safely(tenant, uri):
    with pytest.raises(InvalidArgument, match="redirect URI"):
        await create_client(
            tenant.id,
            "app",
            grant_types=["authorization_code"],
            scopes=["products:read"],
            redirect_uris=[uri],
            public=True,
        )
    assert not await OAuthClient.filter(organization_id=tenant.id).exists()


# --- 3. hostile authorization requests: a 400 page, never a 500 or a redirect ------------

HOSTILE_REDIRECTS = {
    "tab": "https://app.example.com/call\tback",
    "newline": REDIRECT + "\n",
    "crlf-injection": REDIRECT + "\r\nLocation: https://evil.example/\r\n",
    "double-quote": 'https://app.example.com/"callback"',
    "single-quote": "https://app.example.com/'><img src=x onerror=alert(1)>",
    "backslash": "https://app.example.com\\@evil.example/callback",
    "non-ascii": "https://app.example.com/callb\u00e4ck",
    "homoglyph": "https://\u0430pp.example.com/callback",
    "bidi": "https://app.example.com/\u202ekcabllac",
    "emoji": "https://app.example.com/\U0001f600",
    "nul": REDIRECT + "\x00",
    "del": REDIRECT + "\x7f",
    "c1-control": REDIRECT + "\x85",
    "javascript": "javascript:alert(document.cookie)",
    "javascript-newline": "javascript://app.example.com/%0aalert(1)",
    "data": "data:text/html,<script>alert(1)</script>",
    "markup": "<script>alert(1)</script>",
    "fragment": REDIRECT + "#access_token=x",
    "protocol-relative": "//evil.example/callback",
    "unregistered": "https://evil.example/callback",
    "whitespace": "   ",
    "long": REDIRECT + "?pad=" + "a" * 4000,
}
HOSTILE_CLIENT_IDS = {
    "unknown": "gw-nosuchclient0000",
    "empty-ish": " ",
    "tab": "gw-\t",
    "newline": "gw-abc\r\nSet-Cookie: x=1",
    "quote-markup": "\"'><script>alert(1)</script>",
    "backslash": "gw-\\",
    "non-ascii": "gw-\u00e4\u00f6\u00fc",
    "nul": "gw-\x00",
    "long": "c" * 5000,
}


def hostile_form(reg: Registered, **overrides: str | None) -> dict[str, str]:
    params = dict(httpx.URL(authorize_query(reg, **overrides)).params)
    return {
        **params,
        "csrf_token": "c" * 32,
        "email": "x@example.com",
        "password": PASSWORD,
        "decision": "allow",
    }


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("value", HOSTILE_REDIRECTS.values(), ids=HOSTILE_REDIRECTS.keys())
async def test_a_hostile_redirect_uri_gets_the_error_page(server, tenant, method, value):
    reg = await register(tenant)
    async with browser(server) as b:
        if method == "GET":
            r = await b.get(authorize_query(reg, redirect_uri=value))
        else:
            b.cookies.set("gw_csrf", "c" * 32, domain="127.0.0.1", path="/oauth/authorize")
            r = await b.post("/oauth/authorize", data=hostile_form(reg, redirect_uri=value))
    assert_error_page(r)
    assert await codes_of(reg) == 0


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    "value", [*HOSTILE_CLIENT_IDS.values(), None], ids=[*HOSTILE_CLIENT_IDS.keys(), "missing"]
)
async def test_a_hostile_client_id_gets_the_error_page(server, tenant, method, value):
    reg = await register(tenant)
    async with browser(server) as b:
        if method == "GET":
            r = await b.get(authorize_query(reg, client_id=value))
        else:
            r = await b.post("/oauth/authorize", data=hostile_form(reg, client_id=value))
    assert_error_page(r)


async def test_a_nul_in_the_email_is_a_failed_sign_in_not_a_server_error(server, tenant):
    """PostgreSQL text cannot hold NUL: looked up, it would raise instead of finding no one."""
    reg = await register(tenant)
    async with browser(server) as b:
        r = await submit(b, authorize_query(reg), "ana\x00@example.com")
    assert r.status_code == 401, r.text
    assert "location" not in r.headers


@pytest.mark.parametrize(
    "query",
    [
        "redirect_uri=%C3%28",  # not UTF-8
        "redirect_uri=%ED%A0%80",  # a lone surrogate
        "redirect_uri=%zz",
        "redirect_uri=%",
        "redirect_uri=%00",
        f"redirect_uri={REDIRECT}&redirect_uri={REDIRECT}",  # sent twice
        f"redirect_uri={REDIRECT}&client_id=gw-other",  # client_id twice
    ],
    ids=["bad-utf8", "surrogate", "bad-escape", "lone-percent", "nul", "twice", "two-clients"],
)
async def test_a_malformed_authorization_query_gets_the_error_page(server, tenant, query):
    reg = await register(tenant)
    base = f"/oauth/authorize?response_type=code&client_id={reg.client_id}&state=s"
    async with browser(server) as b:
        r = await b.get(f"{base}&code_challenge={'a' * 43}&code_challenge_method=S256&{query}")
    assert_error_page(r)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("response_type", "code\tx"),
        ("response_type", "c\u00f6de"),
        ("response_type", "token"),
        ("response_type", None),
        ("scope", 'products:read\n"\\'),
        ("state", 's\t"\\\u00e4\r\n'),
        ("code_challenge", '\u00e4\t"'),
        ("code_challenge_method", "S256\n"),
    ],
    ids=["rt-tab", "rt-unicode", "rt-token", "rt-missing", "scope", "state", "challenge", "method"],
)
async def test_other_hostile_parameters_are_answered_at_the_verified_redirect_uri(
    server, tenant, name, value
):
    """Once client and redirect URI check out, errors go back to that URI (RFC 6749
    4.1.2.1), whatever the other parameters hold; or the sign-in page is shown."""
    reg = await register(tenant)
    overrides = {"state": "st", name: value}
    async with browser(server) as b:
        r = await b.get(authorize_query(reg, **overrides))
    assert r.status_code in (200, 302), (r.status_code, r.text[:300])
    if r.status_code == 302:
        query = redirected(r)
        assert query["error"] in ("invalid_request", "unsupported_response_type", "invalid_scope")
    else:
        assert 'name="password"' in r.text
        assert hidden_fields(r.text)["state"] == overrides["state"]


# --- 4. scopes: requested ∩ client ∩ role ----------------------------------------------------


async def test_a_client_credentials_token_holds_no_scope_its_role_lacks(server, settings, tenant):
    # A viewer client registered with every scope, as registration allowed before it
    # checked roles: its tokens still carry only what a viewer may hold.
    secret = secrets.token_urlsafe(32)
    row = await OAuthClient.create(
        organization_id=tenant.id,
        client_id=f"gw-{secrets.token_hex(8)}",
        secret_hash=secret_digest(secret),
        name="legacy viewer",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scopes=sorted(ALL_SCOPES),
        role="viewer",
    )
    reg = Registered(row.client_id, secret)
    viewer = sorted(role_scopes("viewer"))
    async with oauth(server, reg) as client:
        default = await client.fetch_token("/oauth/token", grant_type="client_credentials")
        mixed = await client.fetch_token(
            "/oauth/token",
            grant_type="client_credentials",
            scope="customers:write products:read api-keys:admin",
        )
        with pytest.raises(OAuthError) as refused:
            await client.fetch_token(
                "/oauth/token",
                grant_type="client_credentials",
                scope="customers:write api-keys:admin",
            )
    assert refused.value.error == "invalid_scope"

    for token, expected in ((default, viewer), (mixed, ["products:read"])):
        assert sorted(token["scope"].split()) == expected
        claims = await verified_claims(server, settings, token["access_token"])
        assert sorted(claims["scope"].split()) == expected  # what RFC 9068 consumers read
        info = await introspect(server, reg, token["access_token"])
        assert info["active"] is True
        assert sorted(info["scope"].split()) == expected
    assert await api_status(server, default["access_token"]) == 200


@pytest.mark.parametrize(
    ("role", "scopes", "named"),
    [
        ("viewer", ["products:read", "customers:write"], "customers:write"),
        ("staff", ["orders:read", "api-keys:admin"], "api-keys:admin"),
        ("viewer", ["orders:write", "api-keys:admin"], "api-keys:admin, orders:write"),
    ],
)
async def test_registration_refuses_scopes_the_role_cannot_hold(tenant, role, scopes, named):
    with pytest.raises(InvalidArgument) as refused:
        await create_client(
            tenant.id, "app", grant_types=["client_credentials"], scopes=scopes, role=role
        )
    assert named in refused.value.detail
    assert repr(role) in refused.value.detail
    assert not await OAuthClient.filter(organization_id=tenant.id).exists()
    # within the role, the same registration succeeds
    held = [s for s in scopes if s in role_scopes(role)]
    if held:
        await create_client(
            tenant.id, "app", grant_types=["client_credentials"], scopes=held, role=role
        )


# --- 5. revocation answers alike -----------------------------------------------------------

# Headers that differ between any two responses, whatever they answer.
PER_RESPONSE_HEADERS = {"date", "x-request-id", "ratelimit"}


def comparable(r: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    headers = sorted(
        (k.lower(), v) for k, v in r.headers.items() if k.lower() not in PER_RESPONSE_HEADERS
    )
    return r.status_code, r.content, headers


async def revoke(server: Any, reg: Registered, token: str, hint: str | None) -> httpx.Response:
    data = {"token": token}
    if hint is not None:
        data["token_type_hint"] = hint
    async with http(server) as client:
        if reg.secret is None:
            return await client.post("/oauth/revoke", data={**data, "client_id": reg.client_id})
        return await client.post("/oauth/revoke", data=data, auth=reg.auth)


async def test_revoke_answers_alike_for_every_token_it_does_not_revoke(
    server, tenant, other_tenant
):
    owner = await register(tenant)
    email = await new_user(tenant)
    signed_in = await code_flow(server, owner, email)
    machine = await register_machine(tenant)
    async with oauth(server, machine) as client:
        machine_token = (await client.fetch_token("/oauth/token", grant_type="client_credentials"))[
            "access_token"
        ]
    bystander = await register_machine(tenant)  # same organization, another client
    public = await register(tenant, public=True)
    foreign = await register_machine(other_tenant)
    expired, _ = server.app.ctx.auth.tokens.issue(
        subject=f"client:{bystander.client_id}",
        organization_id=tenant.id,
        client_id=bystander.client_id,
        scopes=["products:read"],
        roles=["staff"],
        ttl_seconds=-3600,
    )
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    unknown_jwt = jwt.encode(
        {"sub": "x", "client_id": bystander.client_id, "jti": "j", "exp": 4_000_000_000},
        stranger_key,
        algorithm="ES256",
        headers={"typ": "at+jwt", "kid": "nope"},
    )

    live = {
        "user access token": signed_in["access_token"],
        "refresh token": signed_in["refresh_token"],
        "client access token": machine_token,
    }
    attempts: list[tuple[str, Registered, str, str | None]] = [
        ("garbage", bystander, "garbage", None),
        ("garbage with a hint", bystander, "x.y.z", "access_token"),
        ("unknown refresh token", bystander, secrets.token_urlsafe(32), "refresh_token"),
        ("unknown JWT", bystander, unknown_jwt, None),
        ("its own expired token", bystander, expired, "access_token"),
        ("an unsupported hint", bystander, "garbage", "id_token"),
    ]
    for label, token in live.items():
        for hint in (None, "access_token", "refresh_token", "id_token"):
            attempts.append((f"another client's {label} ({hint})", bystander, token, hint))
        attempts.append((f"a public client and another's {label}", public, token, None))
        attempts.append((f"another organization and a {label}", foreign, token, None))

    answers = {
        label: await revoke(server, reg, token, hint) for label, reg, token, hint in attempts
    }
    reference = comparable(answers["garbage"])
    assert reference[0] == 200, reference
    for label, answer in answers.items():
        assert comparable(answer) == reference, label
    # and none of the live tokens was touched
    assert await api_status(server, signed_in["access_token"]) == 200
    assert await api_status(server, machine_token) == 200
    assert (await introspect(server, owner, signed_in["refresh_token"]))["active"] is True

    # The owner revokes, under a wrong hint (RFC 7009 2.1: the search goes on across
    # every token type): the answer is the same again, and this time the token is gone.
    done = await revoke(server, machine, machine_token, "refresh_token")
    assert comparable(done) == reference
    assert await api_status(server, machine_token) == 401
    done = await revoke(server, owner, signed_in["refresh_token"], "access_token")
    assert comparable(done) == reference
    assert (await introspect(server, owner, signed_in["refresh_token"]))["active"] is False
    assert await api_status(server, signed_in["access_token"]) == 401


async def test_a_revoked_token_stays_refused_through_the_expiry_leeway(server, tenant):
    """Verification allows 30 s of clock skew past ``exp``: a revocation must last longer
    than the token's ``exp``, or the token is accepted again within that window."""
    reg = await register_machine(tenant)
    token, _ = server.app.ctx.auth.tokens.issue(
        subject=f"client:{reg.client_id}",
        organization_id=tenant.id,
        client_id=reg.client_id,
        scopes=["products:read"],
        roles=["staff"],
        ttl_seconds=-1,
    )
    assert await api_status(server, token) == 200  # expired a second ago: within the leeway
    assert (await revoke(server, reg, token, "access_token")).status_code == 200
    assert await api_status(server, token) == 401
