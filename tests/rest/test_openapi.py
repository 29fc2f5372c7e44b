"""The OpenAPI document is valid, complete, and the docs UI works without a CDN."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from db.declare import with_article
from db.principal import PRIVILEGED
from tests.factories import TOKENS


async def test_openapi_document_is_valid_3_1(anon):
    r = await anon.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"] == "3.1.0"
    validate(doc)


NOT_OPERATIONS = {"api/v1/asyncapi.json", "api/v1/realtime"}


async def test_every_route_is_documented_with_summary_and_errors(anon, server):
    doc = (await anon.get("/api/v1/openapi.json")).json()
    documented = {
        (path, method)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if "servers" not in op  # the public operations outside /api/v1, below
    }
    routed = set()
    for route in server.app.router.routes:
        # The documents themselves, and the WebSocket channel (in the AsyncAPI document).
        if not route.path.startswith("api/v1/") or route.path in NOT_OPERATIONS:
            continue
        # `orders/<ident:(?P<ident>[^/:]+):pay>` -> `/orders/{id}:pay`
        path = "/" + route.path.removeprefix("api/v1/")
        path = re.sub(r"<method:\(\?P<method>([^)]+)\)>", r"\1", path)
        path = re.sub(  # ``ident`` is ``{id}``; another parameter keeps its name (``{letter}``)
            r"<(\w+):\(\?P<\1>\[\^/:\]\+\)(:\w+)?>",
            lambda m: ("{id}" if m[1] == "ident" else f"{{{m[1]}}}") + (m[2] or ""),
            path,
        )
        for method in route.methods:
            if method not in {"HEAD", "OPTIONS"}:
                routed.add((path, method.lower()))
    assert routed == documented
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if op["security"] == []:
                continue
            assert op["summary"], (path, method)
            assert "401" in op["responses"], (path, method)
            assert "403" in op["responses"], (path, method)


async def test_docs_ui_is_served_locally(anon):
    page = await anon.get("/docs")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources
    for source in sources:
        assert source.startswith("/"), f"{source} would load from another host"
        asset = await anon.get(source)
        assert asset.status_code == 200, source
        assert len(asset.content) > 0


async def test_every_operation_declares_the_credentials_swagger_sends(anon, tenant):
    """Swagger UI sends an authorized credential only to operations that list its
    scheme: each lists OAuth2 (client credentials, code + PKCE) with its scope, bearer
    and API key, and the scope it names is enough: a token holding only that scope
    gets through every documented read."""
    doc = (await anon.get("/api/v1/openapi.json")).json()
    schemes = doc["components"]["securitySchemes"]
    assert set(schemes) == {"oauth2", "bearer", "apiKey"}
    flows = schemes["oauth2"]["flows"]
    assert set(flows) == {"clientCredentials", "authorizationCode"}
    assert flows["clientCredentials"]["scopes"] == flows["authorizationCode"]["scopes"]
    declared_scopes = set(flows["clientCredentials"]["scopes"])
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if op["security"] == []:
                continue  # public: test_public_operations_declare_no_security
            names = [next(iter(requirement)) for requirement in op["security"]]
            # API keys never hold a privileged scope (api-keys:admin, audit:read), so those
            # operations do not offer them.
            privileged = set(op["security"][0]["oauth2"]) & PRIVILEGED
            keys = [] if privileged else ["apiKey"]
            assert names == ["oauth2", "bearer", *keys], (path, method)
            needed = op["security"][0]["oauth2"]
            assert set(needed) <= declared_scopes, (path, method)
            if method == "get" and "{" not in path and path != "/events":
                token = TOKENS.mint(tenant.id, "owner", scopes=needed)
                reply = await anon.get(
                    "/api/v1" + path, headers={"Authorization": f"Bearer {token}"}
                )
                assert reply.status_code not in (401, 403), (path, needed, reply.text)


async def test_generated_summaries_use_the_right_article(anon):
    doc = (await anon.get("/api/v1/openapi.json")).json()
    summaries = [op["summary"] for ops in doc["paths"].values() for op in ops.values()]
    assert "Create an order" in summaries
    assert "Create a customer" in summaries
    for summary in summaries:
        assert not re.search(r"\ba [aeiou]", summary, re.IGNORECASE), summary
        assert not re.search(r"\ban [bcdfgjklmnpqrstvwxyz]", summary, re.IGNORECASE), summary


def test_articles_follow_the_sound_not_the_letter():
    assert with_article("order") == "an order"
    assert with_article("product") == "a product"
    assert with_article("user") == "a user"
    assert with_article("hour") == "an hour"
    assert with_article("API key") == "an API key"


async def test_public_operations_declare_no_security(anon, server):
    """Health, the token endpoint and the document itself declare ``security: []`` and
    answer without a credential at the URL their servers give; every other operation
    is refused without one."""
    doc = (await anon.get("/api/v1/openapi.json")).json()
    public = {
        (path, method): op.get("servers", doc["servers"])[0]["url"].rstrip("/") + path
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if op["security"] == []
    }
    assert set(public) == {
        ("/openapi.json", "get"),
        ("/livez", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/oauth/token", "post"),
    }
    assert public[("/healthz", "get")] == "/healthz"
    assert public[("/openapi.json", "get")] == "/api/v1/openapi.json"
    for (_path, method), url in public.items():
        if method == "get":
            assert (await anon.get(url)).status_code == 200, url
    # The token endpoint authenticates the client, not a token: a client with a bad
    # secret is refused with OAuth2's own error, not a bearer challenge.
    refused = await anon.post(
        "/oauth/token", auth=("gw-nosuchclient", "x"), data={"grant_type": "client_credentials"}
    )
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    protected = [
        (path, method)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if op["security"] != []
    ]
    assert protected
    for path, method in protected:
        if method == "get" and "{" not in path:
            reply = await anon.get("/api/v1" + path)
            assert reply.status_code == 401, path


def test_behind_a_public_url_public_operations_point_at_its_root():
    from rest.docs import ApiDoc

    doc = ApiDoc(title="t", version="1").render([{"url": "https://api.example.com/api/v1"}])
    assert doc["paths"]["/healthz"]["get"]["servers"] == [{"url": "https://api.example.com"}]
    assert "servers" not in doc["paths"]["/openapi.json"]["get"]
