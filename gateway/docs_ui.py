"""Self-hosted Swagger UI at ``/docs`` for the OpenAPI document at ``/api/v1/openapi.json``.

Every asset is served by the gateway itself (``gateway/static``; the Swagger UI
build is vendored in ``gateway/static/vendor``, see its README), so the page
works offline. The page links its scripts and styles by their content-hashed URLs
(``gateway.assets``) and carries a Content-Security-Policy built from its own text
(``gateway.csp``): scripts from the gateway only, its initialiser a separate file.

sanic-ext's own OpenAPI/docs blueprint also claims ``/docs``; apps using this
module must turn it off with ``app.config.OAS = False`` before the server starts.
"""

from __future__ import annotations

import re
from typing import Any

from sanic import Request, Sanic
from sanic.response import HTTPResponse

from gateway.assets import STATIC_DIR, VENDOR_DIR, setup_assets
from gateway.csp import page_headers, page_policy, react_style_hashes

__all__ = ["DOCS_HTML", "DOCS_URI", "STATIC_DIR", "VENDOR_DIR", "setup_docs_ui"]

DOCS_HTML = STATIC_DIR / "docs.html"
DOCS_INIT_JS = STATIC_DIR / "docs-init.js"

DOCS_URI = "/docs"
DOCS_INIT_URI = "/docs/docs-init.js"
# Swagger UI's OAuth2 redirect page (gateway/static/docs-init.js names it): ours, not
# a CDN's, with its script in a file.
REDIRECT_HTML = STATIC_DIR / "oauth2-redirect.html"
REDIRECT_URI = "/docs/oauth2-redirect.html"


def setup_docs_ui(app: Sanic[Any, Any]) -> None:
    """Register ``/docs``, the ``/vendor`` and ``/static`` assets (``gateway.assets``)."""
    assets = setup_assets(app)
    html = assets.rewrite_urls(
        DOCS_HTML.read_text(encoding="utf-8").replace(
            f'"{DOCS_INIT_URI}"', '"/static/docs-init.js"'
        )
    )
    body = html.encode()
    # The constant <style> elements Swagger UI's React code adds (its logo's), by hash.
    swagger = [a for a in assets.assets() if re.fullmatch(r"/vendor/swagger-ui/.*\.js", a.url)]
    styles = [h for a in swagger for h in react_style_hashes(a.body.decode(errors="replace"))]
    headers = page_headers(page_policy(html, extra_styles=styles))

    async def docs_page(request: Request) -> HTTPResponse:
        return HTTPResponse(body, headers=headers, content_type="text/html; charset=utf-8")

    async def docs_init_js(request: Request) -> HTTPResponse:  # the old URL, for old pages
        return assets.response(request, "/static/docs-init.js")

    redirect_html = assets.rewrite_urls(REDIRECT_HTML.read_text(encoding="utf-8"))
    redirect_body = redirect_html.encode()
    redirect_headers = page_headers(page_policy(redirect_html))

    async def oauth2_redirect(request: Request) -> HTTPResponse:
        return HTTPResponse(
            redirect_body, headers=redirect_headers, content_type="text/html; charset=utf-8"
        )

    async def favicon(request: Request) -> HTTPResponse:
        # Browsers ask every origin for one; a 404 would be a console error on each page.
        return assets.response(request, "/vendor/swagger-ui/favicon-32x32.png")

    app.add_route(favicon, "/favicon.ico", methods=["GET", "HEAD"], name="favicon")
    app.add_route(docs_page, DOCS_URI, methods=["GET", "HEAD"], name="docs_ui")
    app.add_route(
        oauth2_redirect, REDIRECT_URI, methods=["GET", "HEAD"], name="docs_oauth2_redirect"
    )
    app.add_route(docs_init_js, DOCS_INIT_URI, methods=["GET", "HEAD"], name="docs_ui_init")
