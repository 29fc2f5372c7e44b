"""Edge middleware: request ids, security and caching headers, the access log, client
addresses and schemes (``TRUSTED_PROXIES``)."""

from __future__ import annotations

import ipaddress
import itertools
import re
import secrets
import time
from typing import TYPE_CHECKING

from gateway import metrics
from gateway.caching import apply_default as apply_cache_default
from gateway.compression import strip_validator_codings
from gateway.logs import AccessLog, request_id_var

if TYPE_CHECKING:
    from sanic import Request
    from sanic.response import BaseHTTPResponse

    from gateway.settings import Settings


_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# On every response (OWASP REST and HTTP headers cheat sheets): no sniffing, no
# referrer, no framing. The CSP here is for what is not a page (JSON, documents,
# assets): it loads nothing. HTML pages set their own (gateway.csp), which wins.
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
)
# Only on responses to requests that came over https: a browser ignores it over
# http, and sending it there would claim what the gateway cannot know.
HSTS = ("Strict-Transport-Security", "max-age=31536000")

# Request ids: a random per-process prefix and a counter, 32 hex digits like a
# UUID's. Unique across workers and hosts without a getrandom() call per request.
_ID_PREFIX = secrets.token_hex(8)
_id_counter = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("["):  # "[2001:db8::1]:443"
        text = text[1 : text.find("]")]
    elif text.count(":") == 1:  # "203.0.113.7:5000"
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def resolve_client_address(peer: str, forwarded_for: list[str], trusted: list[Network]) -> str:
    """The address of the client, as far as trusted proxies vouch for it.

    ``X-Forwarded-For`` is believed only when the peer is a trusted proxy, and only
    back to the first hop that is not one: a client can put anything at the start
    of the header, but not past the proxy that appended its real address.
    """
    address = _address(peer)
    if address is None or not any(address in net for net in trusted):
        return peer
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        hop_address = _address(hop)
        if hop_address is None:  # garbage from before the trusted chain: stop here
            return str(address)
        address = hop_address
        if not any(address in net for net in trusted):
            return str(address)
    return str(address)


def client_address(request: Request) -> str:
    """The client's address for limits and logs (``TRUSTED_PROXIES``), once per request."""
    cached: str | None = getattr(request.ctx, "client_address", None)
    if cached is None:
        trusted = request.app.ctx.settings.trusted_proxies
        peer = request.ip or ""
        cached = (
            resolve_client_address(peer, request.headers.getall("x-forwarded-for", []), trusted)
            if trusted
            else peer
        )
        request.ctx.client_address = cached
    return cached


def _forwarded_proto(request: Request) -> str | None:
    """The scheme a proxy says the client used: the last ``X-Forwarded-Proto`` value
    (the one the proxy next to us wrote), else RFC 7239 ``Forwarded: proto=``."""
    headers = request.headers
    value: str | None = headers.get("x-forwarded-proto")
    if value is not None:
        return value.rsplit(",", 1)[-1].strip().lower()
    forwarded: str | None = headers.get("forwarded")
    if forwarded is None:
        return None
    for pair in reversed(forwarded.rsplit(",", 1)[-1].split(";")):
        key, _, proto = pair.partition("=")
        if key.strip().lower() == "proto":
            return str(proto).strip().strip('"').lower()
    return None


def request_is_https(request: Request) -> bool:
    """Whether the client reached us over https: TLS on our own socket, or a proxy in
    ``TRUSTED_PROXIES`` says so (a header from anyone else is ignored)."""
    conn = request.conn_info
    if conn is not None and conn.ssl:
        return True
    trusted = request.app.ctx.settings.trusted_proxies
    if not trusted:
        return False
    proto = _forwarded_proto(request)
    if proto != "https":
        return False
    peer = _address(request.ip or "")
    return peer is not None and any(peer in net for net in trusted)


class Edge:
    """The edge's two steps (``gateway.pipeline`` calls them): ``begin`` gives the
    request its id and start time, ``finish`` puts the edge's headers on the response
    and writes the access log line."""

    def __init__(self, settings: Settings) -> None:
        self.access_log = AccessLog(settings.log_format, settings.access_log)

    def begin(self, request: Request) -> None:
        incoming = request.headers.get("x-request-id")
        request_id = (
            incoming if incoming and _VALID_REQUEST_ID.match(incoming) else new_request_id()
        )
        ctx = request.ctx
        ctx.request_id = request_id
        ctx.started = time.perf_counter()
        request_id_var.set(request_id)
        strip_validator_codings(request)
        metrics.request_started(ctx, request.method, request_is_https(request))

    def finish(self, request: Request, response: BaseHTTPResponse) -> None:
        ctx = request.ctx
        request_id = getattr(ctx, "request_id", None)
        headers = response.headers
        if request_id:
            headers["X-Request-ID"] = request_id
        if "content-security-policy" in headers:  # a page (sets its own CSP): keep its own
            for name, value in SECURITY_HEADERS:
                headers.setdefault(name, value)
        else:
            headers.extend(SECURITY_HEADERS)
        if request_is_https(request):
            headers.setdefault(*HSTS)
        apply_cache_default(request, response)
        metrics.request_finished(request, ctx, response.status)
        decision = getattr(ctx, "rate_limit", None)
        if decision is not None:
            for name, value in decision.headers().items():
                headers.setdefault(name, value)
        access_log = self.access_log
        if access_log.enabled:
            principal = getattr(ctx, "principal", None)
            started = getattr(ctx, "started", None)
            fields = {
                "method": request.method,
                "path": request.path,
                "status": response.status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2)
                if started
                else None,
                "principal": f"{principal.subject}@{principal.organization_id}"
                if principal
                else None,
            }
            access_log.write(request_id, fields)
