"""Edge middleware: request ids, security headers and the access log."""

from __future__ import annotations

import itertools
import re
import secrets
import time
from typing import TYPE_CHECKING

from gateway.logs import AccessLog, request_id_var

if TYPE_CHECKING:
    from sanic import HTTPResponse, Request
    from sanic.response import BaseHTTPResponse

    from gateway.context import GatewayApp


_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# JSON APIs need little here (OWASP REST cheat sheet): no sniffing. Pages (docs)
# set their own framing and referrer policy.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff"}

# Request ids: a random per-process prefix and a counter, 32 hex digits like a
# UUID's. Unique across workers and hosts without a getrandom() call per request.
_ID_PREFIX = secrets.token_hex(8)
_id_counter = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


def setup_edge(app: GatewayApp) -> None:
    settings = app.ctx.settings
    access_log = AccessLog(settings.log_format, settings.access_log)

    async def assign_request_id(request: Request) -> None:
        incoming = request.headers.get("x-request-id")
        request_id = (
            incoming if incoming and _VALID_REQUEST_ID.match(incoming) else new_request_id()
        )
        request.ctx.request_id = request_id
        request.ctx.started = time.perf_counter()
        request_id_var.set(request_id)

    async def finish(request: Request, response: BaseHTTPResponse) -> HTTPResponse | None:
        request_id = getattr(request.ctx, "request_id", None)
        if request_id:
            response.headers["X-Request-ID"] = request_id
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if access_log.enabled:
            principal = getattr(request.ctx, "principal", None)
            started = getattr(request.ctx, "started", None)
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
        return None

    app.register_middleware(assign_request_id, "request", priority=1000)
    app.register_middleware(finish, "response", priority=1000)
