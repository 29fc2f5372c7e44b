"""Caching and security headers: Cache-Control per response class, Vary, Last-Modified
with If-Modified-Since, the security headers on every response, HSTS only over https,
and a Content-Security-Policy on every HTML page that allows its inline code by hash."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from db.models import Customer
from gateway.caching import http_date, parse_http_date
from tests.auth.test_grants import authorize_query, register, register_machine
from tests.factories import make_customer

API_READ = "private, no-cache"


def directives(policy: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def inline_hash(html: str, tag: str) -> list[str]:
    bodies = re.findall(rf"<{tag}>(.*?)</{tag}>", html, re.S)
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() + "'"
        for b in bodies
    ]


# --- security headers ----------------------------------------------------------------------

SECURITY = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


@pytest.mark.parametrize(
    "path", ["/healthz", "/api/v1/openapi.json", "/api/v1/customers", "/nope", "/docs"]
)
async def test_every_response_has_the_security_headers(anon, path):
    response = await anon.get(path)
    for name, value in SECURITY.items():
        assert response.headers[name] == value, (path, name)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "strict-transport-security" not in response.headers  # plain http


async def test_json_gets_a_csp_that_loads_nothing(tenant):
    response = await tenant.client.get("/api/v1/customers")
    assert (
        response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    )


async def test_hsts_only_when_a_trusted_proxy_says_https(server, anon, monkeypatch):
    forwarded = {"X-Forwarded-Proto": "https"}
    untrusted = await anon.get("/healthz", headers=forwarded)
    assert "strict-transport-security" not in untrusted.headers  # anyone can send the header
    monkeypatch.setattr(
        server.app.ctx.settings, "trusted_proxies", [ipaddress.ip_network("127.0.0.0/8")]
    )
    trusted = await anon.get("/healthz", headers=forwarded)
    assert trusted.headers["strict-transport-security"] == "max-age=31536000"
    rfc7239 = await anon.get("/healthz", headers={"Forwarded": "for=1.2.3.4;proto=https"})
    assert rfc7239.headers["strict-transport-security"] == "max-age=31536000"
    # the last hop is the one the trusted proxy wrote
    spoofed = await anon.get("/healthz", headers={"X-Forwarded-Proto": "https, http"})
    assert "strict-transport-security" not in spoofed.headers
    plain = await anon.get("/healthz", headers={"X-Forwarded-Proto": "http"})
    assert "strict-transport-security" not in plain.headers
    monkeypatch.setattr(
        server.app.ctx.settings, "trusted_proxies", [ipaddress.ip_network("10.0.0.0/8")]
    )
    elsewhere = await anon.get("/healthz", headers=forwarded)
    assert "strict-transport-security" not in elsewhere.headers


# --- Cache-Control per class ---------------------------------------------------------------


async def test_api_reads_are_private_no_cache_with_an_etag(tenant):
    customer = await make_customer(tenant.owner)
    for path in ("/api/v1/customers", f"/api/v1/customers/{customer['id']}"):
        response = await tenant.client.get(path)
        assert response.headers["cache-control"] == API_READ, path
        assert response.headers["etag"], path
        again = await tenant.client.get(path, headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304
        assert again.headers["cache-control"] == API_READ


async def test_writes_errors_and_secrets_are_no_store(server, tenant, anon):
    created = await tenant.client.post(
        "/api/v1/customers", json={"name": "Ada", "email": "ada@example.com"}
    )
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    assert (await tenant.client.get("/api/v1/customers/99999999")).headers[
        "cache-control"
    ] == "no-store"
    assert (await anon.get("/api/v1/customers")).headers["cache-control"] == "no-store"  # 401
    key = await tenant.client.post(
        "/api/v1/api-keys", json={"name": "k", "scopes": ["orders:read"]}
    )
    assert key.status_code == 201, key.text
    assert key.headers["cache-control"] == "no-store"
    ticket = await tenant.client.post("/api/v1/events/tickets")
    assert ticket.headers["cache-control"] == "no-store"
    reg = await register_machine(tenant)
    token = await anon.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(reg.client_id, reg.secret)
    )
    assert token.status_code == 200, token.text
    assert token.headers["cache-control"] == "no-store"
    refused = await anon.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert refused.headers["cache-control"] == "no-store"


async def test_html_pages_are_no_cache_and_graphql_varies_on_accept(anon, tenant):
    docs = await anon.get("/docs")
    assert docs.headers["cache-control"] == "no-cache"
    page = await anon.get("/graphql", headers={"Accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    assert "Accept" in [v.strip() for v in page.headers["vary"].split(",")]
    data = await tenant.client.get("/graphql", params={"query": "{ __typename }"})
    assert data.headers["content-type"].startswith("application/json")
    assert "Accept" in [v.strip() for v in data.headers["vary"].split(",")]
    assert data.headers["cache-control"] == API_READ
    posted = await tenant.client.post("/graphql", json={"query": "{ __typename }"})
    assert "Accept" in [v.strip() for v in posted.headers["vary"].split(",")]


# --- Last-Modified / If-Modified-Since --------------------------------------------------------


async def test_a_single_read_has_last_modified_and_answers_if_modified_since(tenant):
    customer = await make_customer(tenant.owner)
    path = f"/api/v1/customers/{customer['id']}"
    row = await Customer.get(id=customer["id"])
    response = await tenant.client.get(path)
    last_modified = response.headers["last-modified"]
    assert last_modified == http_date(row.updated_at)
    assert re.fullmatch(
        r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT", last_modified
    )

    same = await tenant.client.get(path, headers={"If-Modified-Since": last_modified})
    assert same.status_code == 304
    assert same.headers["etag"] == response.headers["etag"]
    assert same.headers["last-modified"] == last_modified
    assert same.content == b""

    later = http_date(row.updated_at + timedelta(days=1))
    assert (await tenant.client.get(path, headers={"If-Modified-Since": later})).status_code == 304
    earlier = http_date(row.updated_at - timedelta(seconds=1))
    assert (
        await tenant.client.get(path, headers={"If-Modified-Since": earlier})
    ).status_code == 200
    garbage = await tenant.client.get(path, headers={"If-Modified-Since": "yesterday"})
    assert garbage.status_code == 200


async def test_if_none_match_takes_precedence_over_if_modified_since(tenant):
    customer = await make_customer(tenant.owner)
    path = f"/api/v1/customers/{customer['id']}"
    first = await tenant.client.get(path)
    since = first.headers["last-modified"]
    # A stale tag wins over a date that would say "not modified" (RFC 9110 13.2.2).
    stale = await tenant.client.get(
        path, headers={"If-None-Match": '"v0"', "If-Modified-Since": since}
    )
    assert stale.status_code == 200
    fresh = await tenant.client.get(
        path, headers={"If-None-Match": first.headers["etag"], "If-Modified-Since": "garbage"}
    )
    assert fresh.status_code == 304


async def test_an_update_moves_last_modified(tenant):
    customer = await make_customer(tenant.owner)
    path = f"/api/v1/customers/{customer['id']}"
    old = datetime.now(UTC) - timedelta(hours=1)
    await Customer.filter(id=customer["id"]).update(updated_at=old)
    before = await tenant.client.get(path)
    assert before.headers["last-modified"] == http_date(old)
    updated = await tenant.client.patch(path, json={"name": "Renamed"})
    assert updated.status_code == 200
    after = await tenant.client.get(
        path, headers={"If-Modified-Since": before.headers["last-modified"]}
    )
    assert after.status_code == 200
    assert parse_http_date(after.headers["last-modified"]) > old


# --- CSP on every HTML page -------------------------------------------------------------------


def assert_page_policy(policy: str, html: str) -> dict[str, list[str]]:
    d = directives(policy)
    assert d["default-src"] == ["'none'"]
    assert d["frame-ancestors"] == ["'none'"]
    assert d["base-uri"] == ["'none'"]
    assert "'unsafe-inline'" not in d["script-src"]
    assert "'unsafe-eval'" not in d["script-src"]
    for source in inline_hash(html, "script"):
        assert source in d["script-src"]
    return d


async def test_the_docs_page_csp(anon):
    page = await anon.get("/docs")
    d = assert_page_policy(page.headers["content-security-policy"], page.text)
    assert d["script-src"] == ["'self'"]  # no inline script at all
    assert "data:" in d["img-src"]  # Swagger UI's icons
    # Swagger UI's logo <style>, allowed by its hash, taken from the vendored bundle
    assert "'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='" in d["style-src-elem"]


async def test_the_graphiql_page_csp(anon):
    page = await anon.get("/graphql", headers={"Accept": "text/html"})
    d = assert_page_policy(page.headers["content-security-policy"], page.text)
    assert len(d["script-src"]) == 2  # 'self' and the page's one inline script
    assert "data:" in d["font-src"]  # GraphiQL's fonts: the 34 console errors of issue 14
    assert "'self'" in d["connect-src"]


async def test_the_sign_in_and_error_pages_csp(server, tenant, anon):
    reg = await register(tenant, public=True)
    page = await anon.get(authorize_query(reg))
    assert page.status_code == 200, page.text
    d = assert_page_policy(page.headers["content-security-policy"], page.text)
    for source in inline_hash(page.text, "style"):
        assert source in d["style-src-elem"]
    assert "'unsafe-inline'" not in d["style-src-elem"]
    assert "form-action" not in d  # the form's redirect goes to the client's own origin
    assert page.headers["cache-control"] == "no-store"

    error = await anon.get("/oauth/authorize?client_id=nobody")
    assert error.status_code == 400
    d = assert_page_policy(error.headers["content-security-policy"], error.text)
    assert inline_hash(error.text, "style")[0] in d["style-src-elem"]
    assert error.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("offset_hours", [None, 0, 2, -7])
def test_http_dates_are_gmt_whatever_the_zone(offset_hours):
    moment = datetime(1994, 11, 6, 8, 49, 37, 123, tzinfo=UTC)
    if offset_hours is None:
        moment = moment.replace(tzinfo=None)  # naive: UTC, as SQLite may return it
    else:
        moment = moment.astimezone(timezone(timedelta(hours=offset_hours)))
    assert http_date(moment) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == moment.replace(
        microsecond=0, tzinfo=moment.tzinfo or UTC
    )
