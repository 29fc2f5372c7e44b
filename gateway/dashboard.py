"""The live dashboard at ``/dashboard``: a page for people, and an example for
frontend teams of the gateway's pieces working together.

It signs in with the authorization code flow and PKCE as the demo's public client
``demo-dashboard`` (``db/seed.py``), reads ``orderActivity`` (numbers as of a
change-log position) and keeps them current with the ``orderEvents`` subscription
over WebSocket, resuming after that position when the connection drops. Its files
are plain ES modules in ``gateway/static`` (``dashboard*.js``, no build step, no
library), served like the API docs' (``gateway.assets``: content-hashed URLs,
precompressed); the page carries a Content-Security-Policy built from its own text
(``gateway.csp``): no inline script, connections to its own origin only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sanic import HTTPResponse, Request

from gateway.assets import STATIC_DIR, registry
from gateway.csp import page_headers, page_policy

if TYPE_CHECKING:
    from gateway.context import GatewayApp
    from gateway.settings import Settings

DASHBOARD_URI = "/dashboard"
DASHBOARD_HTML = STATIC_DIR / "dashboard.html"


def dashboard_redirect_uris(settings: Settings) -> list[str]:
    """Where the sign-in sends the dashboard's code: the page itself, under
    ``PUBLIC_URL`` (https; or plain http on a loopback address, where browsers
    allow it: a local proxy in front), else this port on loopback."""
    if settings.public_url:
        uri = settings.public_url.rstrip("/") + DASHBOARD_URI
        loopback = uri.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))
        return [uri] if uri.startswith("https://") or loopback else []
    return [f"http://{host}:{settings.port}{DASHBOARD_URI}" for host in ("127.0.0.1", "localhost")]


def setup_dashboard(app: GatewayApp) -> None:
    """Register ``/dashboard``. Its scripts and styles are ``/static`` assets, whose
    route ``gateway.docs_ui`` registers (``setup_assets``)."""
    html = registry().rewrite_urls(DASHBOARD_HTML.read_text(encoding="utf-8"))
    body = html.encode()
    # connect-src 'self' covers the page's own ws:/wss: origin too (CSP 3).
    headers = page_headers(page_policy(html))

    async def dashboard(request: Request) -> HTTPResponse:
        return HTTPResponse(body, headers=headers, content_type="text/html; charset=utf-8")

    app.add_route(dashboard, DASHBOARD_URI, methods=["GET", "HEAD"], name="dashboard")
