"""GraphiQL at ``GET /graphql`` (for browsers), with every asset served by the app.

Strawberry's GraphiQL page loads React, GraphiQL and its explorer plugin from
unpkg; here those URLs point at the same files vendored under ``/vendor/``
(``gateway/static/vendor``, see its README). The files are byte-identical to the
npm packages, so the page's Subresource Integrity hashes still hold. The headers
editor starts with an ``Authorization`` line to fill in with a token.
"""

from __future__ import annotations

import re
from functools import cache

from sanic import HTTPResponse
from strawberry.http.ides import get_graphql_ide_html

_UNPKG = re.compile(r"https://unpkg\.com/((?:@[^/@]+/)?[^/@]+)@[^/]+/")
_HEADERS_STATE = "React.useState(parameters.headers)"
_DEFAULT_HEADERS = (
    'React.useState(parameters.headers || \'{\\n  "Authorization": "Bearer <access token>"\\n}\')'
)
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'"
)


@cache
def page() -> str:
    html = _UNPKG.sub(lambda m: f"/vendor/{m.group(1)}/", get_graphql_ide_html("graphiql"))
    if "unpkg.com" in html or _HEADERS_STATE not in html:
        raise RuntimeError("Strawberry's GraphiQL page changed: update resolvers/graphiql.py")
    return html.replace(_HEADERS_STATE, _DEFAULT_HEADERS).replace(
        "<title>Strawberry GraphiQL</title>", "<title>GraphiQL: commerce gateway</title>"
    )


def graphiql_response() -> HTTPResponse:
    return HTTPResponse(
        page(),
        content_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": CSP,
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
        },
    )


def wants_graphiql(method: str, accept: str, has_query: bool) -> bool:
    """A browser opening /graphql (HTML preferred, no operation in the URL)."""
    return method == "GET" and not has_query and "text/html" in accept
