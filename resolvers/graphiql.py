"""GraphiQL at ``GET /graphql`` (for browsers), with every asset served by the app.

Strawberry's GraphiQL page loads React, GraphiQL and its explorer plugin from
unpkg; here those URLs point at the same files vendored under ``/vendor/``
(``gateway/static/vendor``, see its README). The files are byte-identical to the
npm packages, so the page's Subresource Integrity hashes still hold; the page
links their content-hashed URLs (``gateway.assets``). The headers editor starts
with an ``Authorization`` line to fill in with a token. Its Content-Security-Policy
(``gateway.csp``) allows the inline script by its hash, GraphiQL's ``data:`` fonts,
and the ``<style>`` elements GraphiQL adds at run time.
"""

from __future__ import annotations

import re
from functools import cache

from sanic import HTTPResponse
from strawberry.http.ides import get_graphql_ide_html

from gateway.assets import registry
from gateway.csp import page_headers, page_policy

_UNPKG = re.compile(r"https://unpkg\.com/((?:@[^/@]+/)?[^/@]+)@[^/]+/")
_HEADERS_STATE = "React.useState(parameters.headers)"
_DEFAULT_HEADERS = (
    'React.useState(parameters.headers || \'{\\n  "Authorization": "Bearer <access token>"\\n}\')'
)


@cache
def page() -> str:
    html = _UNPKG.sub(lambda m: f"/vendor/{m.group(1)}/", get_graphql_ide_html("graphiql"))
    if "unpkg.com" in html or _HEADERS_STATE not in html:
        raise RuntimeError("Strawberry's GraphiQL page changed: update resolvers/graphiql.py")
    html = html.replace(_HEADERS_STATE, _DEFAULT_HEADERS).replace(
        "<title>Strawberry GraphiQL</title>", "<title>GraphiQL: commerce gateway</title>"
    )
    return registry().rewrite_urls(html)


@cache
def _rendered() -> tuple[bytes, dict[str, str]]:
    html = page()
    policy = page_policy(html, connect="'self' ws: wss:", runtime_styles=True)
    # HTML or JSON at GET /graphql by Accept: caches must key on it.
    return html.encode(), {**page_headers(policy), "Vary": "Accept"}


def graphiql_response() -> HTTPResponse:
    body, headers = _rendered()
    return HTTPResponse(body, content_type="text/html; charset=utf-8", headers=headers)


def wants_graphiql(method: str, accept: str, has_query: bool) -> bool:
    """A browser opening /graphql (HTML preferred, no operation in the URL)."""
    return method == "GET" and not has_query and "text/html" in accept
