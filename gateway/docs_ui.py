"""Self-hosted Swagger UI at ``/docs`` for the OpenAPI document at ``/api/v1/openapi.json``.

Every asset is served by the gateway itself (``gateway/static``; the Swagger UI
build is vendored in ``gateway/static/vendor``, see its README), so the page
works offline and under a ``script-src 'self'`` Content-Security-Policy: the
page has no inline script or style and its initialiser is a separate file.

sanic-ext's own OpenAPI/docs blueprint also claims ``/docs``; apps using this
module must turn it off with ``app.config.OAS = False`` before the server starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sanic import Request, Sanic
from sanic.response import HTTPResponse, file

STATIC_DIR = Path(__file__).parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
DOCS_HTML = STATIC_DIR / "docs.html"
DOCS_INIT_JS = STATIC_DIR / "docs-init.js"

DOCS_URI = "/docs"
DOCS_INIT_URI = "/docs/docs-init.js"
VENDOR_URI = "/vendor"


async def _docs_page(request: Request) -> HTTPResponse:
    return await file(
        DOCS_HTML,
        mime_type="text/html; charset=utf-8",
        headers={
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
            "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        },
    )


async def _docs_init_js(request: Request) -> HTTPResponse:
    return await file(DOCS_INIT_JS, mime_type="text/javascript; charset=utf-8")


def setup_docs_ui(app: Sanic[Any, Any]) -> None:
    """Register ``/docs``, its initialiser script and the ``/vendor`` static assets."""
    app.static(VENDOR_URI, VENDOR_DIR, name="vendor")
    app.add_route(_docs_page, DOCS_URI, methods=["GET", "HEAD"], name="docs_ui")
    app.add_route(_docs_init_js, DOCS_INIT_URI, methods=["GET", "HEAD"], name="docs_ui_init")
