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
