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
# What the headers editor starts with: the URL's, else what this browser kept from its
# last visit (GraphiQL's own storage key), else a line to put a token in.
_DEFAULT_HEADERS = (
    'React.useState(parameters.headers || window.localStorage.getItem("graphiql:headers")'
    ' || \'{\\n  "Authorization": "Bearer <access token>"\\n}\')'
)


# The first thing a newcomer reads: how to get the token the headers editor asks for.
_WELCOME = re.compile(r"const EXAMPLE_QUERY = `.*?`;", re.S)
_HINT = """const EXAMPLE_QUERY = `# GraphiQL for the commerce gateway
#
# Every operation needs a token. Get one, then paste it into the Authorization
# line of the Headers tab below (GraphiQL keeps it in this browser):
#
#   curl -s -u CLIENT_ID:CLIENT_SECRET -d grant_type=client_credentials \\
#        ${window.location.origin}/oauth/token
#
# (the demo's client is in var/demo-credentials.json; any client:
#  gateway create-client). The schema (Docs, completion) loads as soon as the
# headers hold a valid token.
#
# Run: Ctrl-Enter. Complete: Ctrl-Space.

query FirstOrders {
  orders(first: 5) {
    edges { node { id status totalCents } }
  }
}
`;"""
# A new fetcher makes GraphiQL introspect again: one per settled edit of the headers,
# so the schema arrives once a token is pasted (not only at page load).
_FETCHER = "fetcher: fetcher,"
_FETCHER_PER_HEADERS = "fetcher: schemaFetcher,"
_EDIT_HEADERS = """function onEditHeaders(newHeaders) {
          setHeaders(newHeaders);
        }"""
_REFETCH_ON_HEADERS = """const [headersVersion, setHeadersVersion] = React.useState(0);
        const schemaFetcher = React.useMemo(function () {
          const network = GraphiQL.createFetcher({
            url: fetchURL, headers: defaultHeaders, subscriptionUrl,
          });
          // Without a token, say how to get one instead of asking for a 401.
          return function (params, options) {
            const sent = (options && options.headers) || {};
            const auth = sent.Authorization || sent.authorization || "";
            if (!auth || auth.indexOf("<access token>") !== -1) {
              return Promise.resolve({ errors: [{ message:
                "Put a token in the Authorization header (Headers, below): "
                + "the comment at the top of the editor says how to get one." }] });
            }
            return network(params, options);
          };
        }, [headersVersion]);
        const settle = React.useRef(null);

        function onEditHeaders(newHeaders) {
          setHeaders(newHeaders);
          clearTimeout(settle.current);
          settle.current = setTimeout(function () {
            try { JSON.parse(newHeaders || "{}"); } catch (e) { return; }
            setHeadersVersion(function (n) { return n + 1; });
          }, 600);
        }"""


@cache
def page() -> str:
    html = _UNPKG.sub(lambda m: f"/vendor/{m.group(1)}/", get_graphql_ide_html("graphiql"))
    if (
        "unpkg.com" in html
        or _HEADERS_STATE not in html
        or _FETCHER not in html
        or _EDIT_HEADERS not in html
        or not _WELCOME.search(html)
    ):
        raise RuntimeError("Strawberry's GraphiQL page changed: update resolvers/graphiql.py")
    html = _WELCOME.sub(lambda _m: _HINT, html, count=1)
    html = html.replace(_FETCHER, _FETCHER_PER_HEADERS).replace(_EDIT_HEADERS, _REFETCH_ON_HEADERS)
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
