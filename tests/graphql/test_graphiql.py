"""GraphiQL works offline: the page and every asset it loads come from the gateway."""

from __future__ import annotations

import base64
import hashlib
import re

from resolvers.graphiql import page


async def test_graphiql_is_served_with_local_assets_only(anon):
    r = await anon.get("/graphql", headers={"Accept": "text/html,application/xhtml+xml"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    html = r.text
    assert "unpkg.com" not in html
    assert "https://" not in re.sub(r"<!--.*?-->", "", html, flags=re.S).replace(
        "http://www.w3.org/2000/svg", ""
    )
    assert '"Authorization": "Bearer <access token>"' in html  # the headers editor's start
    assets = re.findall(r'(?:src|href)="(/vendor/[^"]+)"\s+integrity="sha384-([^"]+)"', html)
    assert len(assets) == 7
    for path, integrity in assets:
        asset = await anon.get(path)
        assert asset.status_code == 200, path
        digest = base64.b64encode(hashlib.sha384(asset.content).digest()).decode()
        assert digest == integrity, path  # byte-identical to the npm package


async def test_api_clients_still_get_graphql_on_get(tenant):
    r = await tenant.client.get(
        "/graphql", params={"query": "{ orders(first: 1) { nodes { databaseId } } }"}
    )
    assert r.status_code == 200
    assert r.json()["data"] == {"orders": {"nodes": []}}


def test_the_page_is_built_once():
    assert page() is page()


def test_the_page_says_how_to_get_a_token_and_its_first_query_is_valid():
    from graphql import parse, validate

    from resolvers.schema import build_schema

    schema = build_schema()

    html = page()
    assert "/oauth/token" in html
    assert "Headers tab" in html
    query = re.search(r"query FirstOrders \{.*?\n\}", html, re.S)
    assert query is not None
    assert validate(schema._schema, parse(query[0])) == []


def test_headers_persist_and_a_settled_edit_introspects_again():
    html = page()
    assert "shouldPersistHeaders: true" in html
    # a new fetcher per settled headers edit makes GraphiQL fetch the schema again
    assert "fetcher: schemaFetcher," in html
    assert "[headersVersion]" in html
    assert "setHeadersVersion" in html.split("function onEditHeaders", 1)[1]
