"""The demo shows the product: orders over the last 90 days (full charts), and a
public client with which the API docs sign in through code + PKCE.

authlib's OAuth2 client plays Swagger UI: the demo's public client, no secret, the
docs' redirect URI, S256.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from authlib.integrations.httpx_client import AsyncOAuth2Client

from db.models import Order, Organization
from db.seed import DEMO_DAYS, DEMO_DOCS_CLIENT_ID, seed_demo
from tests.auth.test_grants import browser, redirected, submit
from tests.conftest import RunningServer

DOCS_REDIRECT = "http://127.0.0.1:8000/docs/oauth2-redirect.html"


async def test_the_demo_fills_its_charts_and_its_docs_client_signs_in(server: RunningServer):
    now = datetime.now(UTC).replace(microsecond=0)
    creds = await seed_demo(now=now, docs_redirect_uris=[DOCS_REDIRECT])
    assert creds is not None, "the test database already had a demo organization"
    assert await seed_demo(now=now) is None  # once

    org = await Organization.get(slug="demo")
    times = await Order.filter(organization_id=org.id).values_list("created_at", flat=True)
    assert times
    assert min(times) >= now - timedelta(days=DEMO_DAYS)
    assert max(times) < now

    async with AsyncOAuth2Client(
        client_id=DEMO_DOCS_CLIENT_ID,
        client_secret=None,
        redirect_uri=DOCS_REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
        base_url=server.base_url,
        timeout=30,
        scope="orders:read stats:read",
    ) as swagger:
        verifier = secrets.token_urlsafe(48)
        url, state = swagger.create_authorization_url("/oauth/authorize", code_verifier=verifier)
        async with browser(server) as page:
            query = redirected(
                await submit(page, url, creds["user"], creds["password"]), DOCS_REDIRECT
            )
        assert query["state"] == state
        token = await swagger.fetch_token(
            "/oauth/token",
            grant_type="authorization_code",
            code=query["code"],
            code_verifier=verifier,
        )
        # The default chart (the 30 days up to now, a bucket a day) is full.
        start = (now - timedelta(days=30)).isoformat()
        reply = await swagger.get(
            "/api/v1/stats/sales", params={"start": start, "end": now.isoformat()}
        )
    assert token["access_token"]
    assert "refresh_token" in token
    assert reply.status_code == 200, reply.text
    buckets = reply.json()["data"]
    assert len(buckets) >= 30
    empty = [b for b in buckets if not b["order_count"]]
    assert len(empty) <= 2, buckets
