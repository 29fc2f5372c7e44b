"""Cross-origin requests: CORS for every HTTP door, ``Origin`` checks for WebSockets.

Pages on the origins in ``CORS_ALLOW_ORIGINS`` (exact ``scheme://host[:port]``, or
``*`` for any page when no credentials are allowed) may call REST, ``/graphql``,
the OAuth endpoints and the event streams. A response to an allowed origin says
so, lists the headers a page may read (``EXPOSED_HEADERS``) and varies by
``Origin``; any other origin gets no CORS header, so its page cannot read the
answer. A preflight is answered before routing reaches a handler: 204 with the
route's methods, the request headers we accept and a max-age, or 403 problem for
an origin not allowed. Error responses (401, 422, 429, ...) carry the same
headers, so a page can read why it failed.

A WebSocket handshake is not covered by CORS: a page on any origin may open one.
``Cors.socket_refusal`` refuses an upgrade whose ``Origin`` is neither the
gateway's own nor an allowed one (403, before the upgrade). Clients that are not
browsers send no ``Origin`` and are not concerned.

All the header values are computed once; a request without ``Origin`` costs one
dictionary lookup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sanic.response import HTTPResponse

from gateway.caching import add_vary
from gateway.errors import OriginNotAllowed, problem_response

if TYPE_CHECKING:
    from sanic import Request
    from sanic.response import BaseHTTPResponse

    from gateway.settings import Settings

# What a page may read of our responses (besides the CORS-safelisted ones).
EXPOSED_HEADERS = (
    "ETag",
    "Last-Modified",
    "Link",
    "Location",
    "X-Request-ID",
    "RateLimit",
    "RateLimit-Policy",
    "Retry-After",
    "Idempotent-Replayed",
    "WWW-Authenticate",
    "Content-Disposition",
)
# What a page may send (besides the CORS-safelisted ones).
ALLOWED_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Accept",
    "X-API-Key",
    "Idempotency-Key",
    "If-Match",
    "If-None-Match",
    "If-Modified-Since",
    "X-Request-ID",
    "Last-Event-ID",
)
_ALLOWED_LOWER = frozenset(name.lower() for name in ALLOWED_REQUEST_HEADERS)
PREFLIGHT_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


class Cors:
    """The CORS policy of one app, from its settings."""

    def __init__(self, settings: Settings) -> None:
        origins = settings.cors_allow_origins
        self.any_origin = origins == ["*"]
        self.origins = frozenset(o for o in origins if o != "*")
        self.credentials = settings.cors_allow_credentials
        self.public_origin = _origin_of(settings.public_url) if settings.public_url else None
        common = {"Access-Control-Expose-Headers": ", ".join(EXPOSED_HEADERS)}
        if self.credentials:
            common["Access-Control-Allow-Credentials"] = "true"
        self._common = common
        self._preflight = {
            "Access-Control-Allow-Headers": ", ".join(ALLOWED_REQUEST_HEADERS),
            "Access-Control-Max-Age": str(settings.cors_max_age_seconds),
            "Vary": PREFLIGHT_VARY,
        }
        if self.credentials:
            self._preflight["Access-Control-Allow-Credentials"] = "true"

    @property
    def enabled(self) -> bool:
        return self.any_origin or bool(self.origins)

    def allows(self, origin: str) -> bool:
        return self.any_origin or origin.lower() in self.origins

    def allow_origin_value(self, origin: str) -> str:
        # ``*`` is only sent when credentials are off (settings refuse the mix).
        return "*" if self.any_origin else origin

    def is_own_origin(self, request: Request, origin: str) -> bool:
        """Whether ``origin`` is the gateway's own (a page it served, e.g. GraphiQL)."""
        origin = origin.lower()
        if self.public_origin is not None and origin == self.public_origin:
            return True
        scheme = {"ws": "http", "wss": "https"}.get(request.scheme, request.scheme)
        return origin == f"{scheme}://{request.host}".lower()

    def decorate(self, request: Request, response: BaseHTTPResponse) -> None:
        """Add the CORS headers for an allowed ``Origin`` (response middleware)."""
        origin = request.headers.get("origin")
        if origin is None:
            return
        if request.method == "OPTIONS" and "access-control-request-method" in request.headers:
            return  # a preflight: ``preflight`` answered it whole
        headers = response.headers
        if not self.allows(origin):
            if not self.any_origin:
                add_vary(headers, "Origin")
            return
        headers["Access-Control-Allow-Origin"] = self.allow_origin_value(origin)
        headers.update(self._common)
        if not self.any_origin:
            add_vary(headers, "Origin")

    def preflight(self, request: Request, allow: str) -> HTTPResponse:
        """The answer to ``OPTIONS`` with ``Access-Control-Request-Method``."""
        origin = request.headers.get("origin", "")
        wanted = request.headers.get("access-control-request-method", "").upper()
        asked = {
            h.strip().lower()
            for h in request.headers.get("access-control-request-headers", "").split(",")
            if h.strip()
        }
        methods = [m.strip() for m in allow.split(",") if m.strip()]
        if not self.allows(origin) or wanted not in methods or not asked <= _ALLOWED_LOWER:
            return HTTPResponse(status=403, headers={"Vary": PREFLIGHT_VARY})
        headers = dict(self._preflight)
        headers["Access-Control-Allow-Origin"] = self.allow_origin_value(origin)
        headers["Access-Control-Allow-Methods"] = ", ".join(m for m in methods if m != "OPTIONS")
        headers["Allow"] = allow
        return HTTPResponse(status=204, headers=headers)

    def socket_refusal(self, request: Request) -> HTTPResponse | None:
        """403 for a WebSocket handshake from a page on an origin not allowed."""
        origin = request.headers.get("origin")
        if origin is None or self.allows(origin) or self.is_own_origin(request, origin):
            return None
        return problem_response(
            OriginNotAllowed("pages on this origin may not open sockets here (CORS_ALLOW_ORIGINS)"),
            getattr(request.ctx, "request_id", None),
        )


def _origin_of(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}".lower()
