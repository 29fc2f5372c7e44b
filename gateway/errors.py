"""One error model on the wire: RFC 9457 ``application/problem+json``.

Domain errors (``db.errors``) carry their code and status; the errors of the HTTP
edge are defined here, on the same base, and Sanic's own HTTP errors (unknown
route, wrong method, oversized body) are mapped to them; anything else is logged
with its traceback and answered with a generic 500 that leaks nothing.

    db.errors.DomainError          (code, status)
    ├── db.errors.InvalidArgument
    │   ├── MalformedBody          MALFORMED_JSON         400
    │   ├── MalformedXml           MALFORMED_XML          400
    │   └── BadRequest             BAD_REQUEST            400  (any other Sanic 4xx)
    ├── db.errors.NotFound         NOT_FOUND              404  (no such route or file too)
    ├── MethodNotAllowed           METHOD_NOT_ALLOWED     405  (with ``Allow``)
    ├── NotAcceptable              NOT_ACCEPTABLE         406
    ├── OriginNotAllowed           ORIGIN_NOT_ALLOWED     403  (a socket from a page's origin)
    ├── RequestTimeout             REQUEST_TIMEOUT        408
    ├── PayloadTooLarge            PAYLOAD_TOO_LARGE      413
    ├── UriTooLong                 URI_TOO_LONG           414
    ├── UnsupportedMediaType       UNSUPPORTED_MEDIA_TYPE 415
    ├── RateLimited                RATE_LIMITED           429  (with ``Retry-After``)
    ├── HeadersTooLarge            HEADERS_TOO_LARGE      431
    ├── db.errors.Unavailable      UNAVAILABLE            503
    │   └── DatabaseUnavailable    DATABASE_UNAVAILABLE   503  (with ``Retry-After``)
    └── InternalError              INTERNAL               500

Other layers: ``db.errors`` (the domain's tree), ``realtime.close_codes`` (how a
real-time connection ends); ``gateway.settings.SettingsError`` stops startup and
never reaches a client.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson
from sanic import exceptions as sanic_exceptions
from sanic.response import HTTPResponse
from tortoise.exceptions import DBConnectionError

from db.errors import DomainError, InvalidArgument, InvalidToken, NotFound, Unavailable

if TYPE_CHECKING:
    from sanic import Request, Sanic

log = logging.getLogger("gateway.errors")

PROBLEM_JSON = "application/problem+json"
# Seconds a client is told to wait (``Retry-After``) when the database is away: a
# restart or failover takes a few; a locked SQLite file is told 1.
DATABASE_RETRY_AFTER = 2


class MalformedBody(InvalidArgument):
    code = "MALFORMED_JSON"
    title = "Malformed JSON body"


class MalformedXml(InvalidArgument):
    """An XML request body we will not read: not well-formed, a DTD or entity, too
    deep (``rest.xml``); ``errors[].type`` says which."""

    code = "MALFORMED_XML"
    title = "Malformed XML body"


class UnsupportedMediaType(DomainError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    status = 415
    title = "Unsupported media type"


class PayloadTooLarge(DomainError):
    code = "PAYLOAD_TOO_LARGE"
    status = 413
    title = "Payload too large"


class UriTooLong(DomainError):
    code = "URI_TOO_LONG"
    status = 414
    title = "URI too long"


class HeadersTooLarge(DomainError):
    code = "HEADERS_TOO_LARGE"
    status = 431
    title = "Request header fields too large"


class MethodNotAllowed(DomainError):
    code = "METHOD_NOT_ALLOWED"
    status = 405
    title = "Method not allowed"

    def __init__(self, detail: str, *, allow: str | None = None) -> None:
        super().__init__(detail)
        self.allow = allow


class NotAcceptable(DomainError):
    code = "NOT_ACCEPTABLE"
    status = 406
    title = "Not acceptable"


class OriginNotAllowed(DomainError):
    code = "ORIGIN_NOT_ALLOWED"
    status = 403
    title = "Origin not allowed"


class BadRequest(InvalidArgument):
    code = "BAD_REQUEST"
    title = "Bad request"


class RequestTimeout(DomainError):
    code = "REQUEST_TIMEOUT"
    status = 408
    title = "Request timeout"


class RateLimited(DomainError):
    """Over a limit: try again in ``retry_after`` seconds (sent as ``Retry-After``).

    ``headers`` are sent with the 429 as well (e.g. the ``RateLimit`` fields).
    """

    code = "RATE_LIMITED"
    status = 429
    title = "Too many requests"

    def __init__(
        self, detail: str, *, retry_after: float, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.retry_after = max(1, math.ceil(retry_after))
        self.headers = dict(headers or {})


class DatabaseUnavailable(Unavailable):
    """The database cannot be reached (stopped, restarting, out of connections, a
    network that drops packets) or, for the embedded SQLite file, is locked or
    cannot be opened: try again in ``retry_after`` seconds (``Retry-After``).

    Not for a statement the database refused (a constraint, a syntax error): those
    are the request's or the code's fault and keep their own answer.
    """

    code = "DATABASE_UNAVAILABLE"
    title = "Database unavailable"

    def __init__(self, detail: str = "", *, retry_after: int = DATABASE_RETRY_AFTER) -> None:
        super().__init__(
            detail or "the database is not answering; nothing was changed, try again shortly"
        )
        self.retry_after = retry_after


# Statements that found the database away (asyncpg, Tortoise): SQLSTATE class 08
# (connection exceptions), an administrator's or a crash's shutdown, a server still
# starting, no connection slot left.
_OUTAGE_TYPES: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    DBConnectionError,
)
# SQLite (sqlite3.OperationalError): the file is busy or cannot be read or written.
_SQLITE_OUTAGES = (
    "database is locked",
    "database table is locked",
    "unable to open database file",
    "disk i/o error",
    "readonly database",
)
# Builtin errors count only when raised inside a database driver: a refused or reset
# connection, a connect or statement timeout.
_DRIVER_MODULES = ("asyncpg.", "tortoise.")


def _raised_in_driver(error: BaseException) -> bool:
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").startswith(_DRIVER_MODULES):
            return True
        tb = tb.tb_next
    return False


def _is_outage(error: BaseException) -> bool:
    if isinstance(error, _OUTAGE_TYPES):
        return True
    if isinstance(error, asyncpg.InterfaceError):  # most are misuse; a closed connection is not
        return "closed" in str(error)
    if isinstance(error, sqlite3.OperationalError):
        text = str(error).lower()
        return any(outage in text for outage in _SQLITE_OUTAGES)
    if isinstance(error, OSError):  # ConnectionError, TimeoutError (asyncio's too)
        return _raised_in_driver(error)
    return False


def database_unavailable(error: BaseException | None) -> DatabaseUnavailable | None:
    """``DatabaseUnavailable`` when ``error`` (or what it wraps: Tortoise re-raises the
    driver's errors, SQLite's as the first argument) says the database is away, else None.

    Run on errors only, never on the request path.
    """
    seen = 0
    while error is not None and seen < 6:
        if isinstance(error, DatabaseUnavailable):
            return error
        if _is_outage(error):
            return DatabaseUnavailable(retry_after=1 if _locked(error) else DATABASE_RETRY_AFTER)
        wrapped = error.args[0] if error.args else None
        error = (
            error.__cause__
            or error.__context__
            or (wrapped if isinstance(wrapped, BaseException) else None)
        )
        seen += 1
    return None


def _locked(error: BaseException) -> bool:
    """A locked SQLite file frees up in milliseconds: ask the client back sooner."""
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


class _OutageLog:
    """One warning per ``every`` seconds while requests find the database away (an
    outage answers thousands of requests; their tracebacks would bury the log)."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self.next_at = 0.0
        self.quiet = 0

    def note(self, cause: BaseException, path: str) -> None:
        now = time.monotonic()
        if now < self.next_at:
            self.quiet += 1
            return
        text = " ".join(str(cause).split())[:200]
        log.warning(
            "database unavailable: %s%s (answering 503)",
            f"{type(cause).__name__}: {text}" if text else type(cause).__name__,
            f"; {self.quiet} more requests since the last warning" if self.quiet else "",
            extra={"path": path},
        )
        self.next_at, self.quiet = now + self.every, 0


_outage_log = _OutageLog()


def note_database_outage(cause: BaseException | None, path: str) -> None:
    """Log (at most every 10 s) that a request found the database away."""
    if cause is not None:
        _outage_log.note(cause, path)


class InternalError(DomainError):
    code = "INTERNAL"
    status = 500
    title = "Internal server error"


def problem_type(code: str) -> str:
    return "/problems/" + code.lower().replace("_", "-")


# Another representation of a problem (``rest`` registers one for XML): given the
# request, the renderer to use, or None for problem+json. Looked up on errors only.
ProblemRenderer = Callable[[dict[str, Any]], tuple[bytes, str]]
ProblemNegotiator = Callable[["Request"], ProblemRenderer | None]


def problem_response(
    error: DomainError,
    request_id: str | None,
    headers: dict[str, str] | None = None,
    render: ProblemRenderer | None = None,
) -> HTTPResponse:
    body: dict[str, Any] = {
        "type": problem_type(error.code),
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "code": error.code,
        "request_id": request_id,
    }
    if error.errors:
        body["errors"] = [e.as_dict() for e in error.errors]
    if render is not None:
        payload, content_type = render(body)
        return HTTPResponse(
            payload, status=error.status, headers=headers, content_type=content_type
        )
    return HTTPResponse(
        orjson.dumps(body), status=error.status, headers=headers, content_type=PROBLEM_JSON
    )


def _head_too_large(request: Request) -> DomainError:
    """Sanic refuses a request head over ``REQUEST_MAX_HEADER_SIZE`` before it has a
    request (``method`` is ``NONE``) and calls it a payload too large. Tell the
    client what was too long: the request line (its URL: 414) when it takes half the
    limit or more, else the header fields (431)."""
    limit = request.app.config.REQUEST_MAX_HEADER_SIZE
    buffer = getattr(request.transport.get_protocol(), "recv_buffer", b"")
    end = bytes(buffer[:limit]).find(b"\r\n")
    if end == -1 or end >= limit // 2:
        return UriTooLong(
            f"the URL is longer than this API accepts (the request line must stay under "
            f"{limit // 2} bytes); send long filters in a POST body or page with cursors"
        )
    return HeadersTooLarge(f"the request's header fields exceed {limit} bytes")


def _translate(exc: Exception, request: Request) -> DomainError:
    if isinstance(exc, DomainError):
        return exc
    if isinstance(exc, sanic_exceptions.NotFound):
        return NotFound("no such endpoint; see /api/v1/openapi.json for the endpoint map")
    if isinstance(exc, sanic_exceptions.MethodNotAllowed):
        return MethodNotAllowed(str(exc))
    if isinstance(exc, sanic_exceptions.PayloadTooLarge) and request.method == "NONE":
        return _head_too_large(request)
    if isinstance(exc, sanic_exceptions.PayloadTooLarge):
        return PayloadTooLarge("the request body is larger than this API accepts (MAX_BODY_BYTES)")
    if isinstance(exc, sanic_exceptions.RequestTimeout):
        return RequestTimeout("the request body did not arrive in time")
    if isinstance(exc, sanic_exceptions.SanicException) and 400 <= exc.status_code < 500:
        return BadRequest(str(exc) or "bad request")
    outage = database_unavailable(exc)
    if outage is not None:
        note_database_outage(exc, request.path)
        return outage
    return InternalError("the server failed to handle this request; it has been logged")


def _allowed_methods(request: Request) -> str | None:
    """The methods routed for this path (RFC 9110: a 405 MUST carry ``Allow``).

    Sanic's router reports them only for static paths; for paths with parameters
    (``/customers/<id>``) ask it once per method.
    """
    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        try:
            request.app.router.get(request.path, method, request.headers.get("host"))
        except sanic_exceptions.SanicException:
            continue
        allowed.append(method)
    return ", ".join(allowed) or None


def _options(request: Request, exc: sanic_exceptions.MethodNotAllowed) -> HTTPResponse:
    """``OPTIONS`` on any route: a CORS preflight (gateway/cors.py) when it is one,
    else 204 with ``Allow`` (RFC 9110 9.3.7)."""
    allow = getattr(exc, "headers", {}).get("Allow") or _allowed_methods(request) or ""
    if "OPTIONS" not in allow:
        allow = f"{allow}, OPTIONS" if allow else "OPTIONS"
    if request.headers.get("origin") and request.headers.get("access-control-request-method"):
        preflight: HTTPResponse = request.app.ctx.cors.preflight(request, allow)
        return preflight
    return HTTPResponse(status=204, headers={"Allow": allow})


def setup_errors(app: Sanic[Any, Any]) -> None:
    """Install the one error handler for every route."""

    @app.exception(Exception)
    async def handle(request: Request, exc: Exception) -> HTTPResponse:
        if request.method == "OPTIONS" and isinstance(exc, sanic_exceptions.MethodNotAllowed):
            return _options(request, exc)
        error = _translate(exc, request)
        request_id = getattr(request.ctx, "request_id", None)
        headers: dict[str, str] = {}
        if error.status >= 500:
            span = getattr(request.ctx, "trace_span", None)
            if span is not None:  # tracing on (gateway.spans): the request's span says why
                span.record_exception(exc)
                span.set_attribute("error.type", f"{type(exc).__module__}.{type(exc).__qualname__}")
            if not isinstance(error, DatabaseUnavailable):
                log.error("unhandled error", exc_info=exc, extra={"path": request.path})
        if error.status == 401:
            headers["WWW-Authenticate"] = (
                'Bearer realm="gateway", error="invalid_token"'
                if isinstance(error, InvalidToken)
                else 'Bearer realm="gateway"'
            )
        if error.status == 403:
            principal = getattr(request.ctx, "principal", None)
            log.warning(
                "permission denied",
                extra={
                    "path": request.path,
                    "method": request.method,
                    "subject": getattr(principal, "subject", None),
                    "reason": error.detail,
                },
            )
        if error.status == 405 and isinstance(exc, sanic_exceptions.MethodNotAllowed):
            allow = getattr(exc, "headers", {}).get("Allow") or _allowed_methods(request)
            if allow:
                headers["Allow"] = allow
        elif isinstance(error, MethodNotAllowed) and error.allow:
            headers["Allow"] = error.allow
        if isinstance(error, RateLimited):
            headers.update(error.headers)
            headers["Retry-After"] = str(error.retry_after)
        elif isinstance(error, DatabaseUnavailable):
            headers["Retry-After"] = str(error.retry_after)
        if request_id:
            headers["X-Request-ID"] = request_id
        negotiate: ProblemNegotiator | None = getattr(request.app.ctx, "problem_negotiator", None)
        render = negotiate(request) if negotiate is not None else None
        return problem_response(error, request_id, headers, render)
