"""Typed exceptions, built from the gateway's RFC 9457 problem documents.

Every error the API answers is ``application/problem+json`` with a stable ``code``
(``NOT_FOUND``, ``PRECONDITION_FAILED``, ...), field errors and the request id. The
exception class is chosen by ``code`` first (the contract), then by HTTP status, so a
code this release does not know still lands on the right family (``Conflict``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class FieldIssue:
    """One problem with one input: where (``("body", "email")``), what, and its kind."""

    loc: tuple[str | int, ...]
    msg: str
    type: str


class GatewayError(Exception):
    """Base of every error this package raises."""


class ConnectionFailed(GatewayError):
    """The gateway could not be reached (or stopped answering) and retries ran out."""


class UnexpectedResponse(GatewayError):
    """A success status whose body is not the JSON this call expects (a proxy's HTML page,
    a truncated or wrong-shaped body): carries what is needed to report it."""

    def __init__(
        self, status: int, content_type: str | None, request_id: str | None, body: bytes
    ) -> None:
        super().__init__(
            f"unexpected {status} response ({content_type or 'no content-type'},"
            f" request id {request_id}): {body[:200]!r}"
        )
        self.status, self.content_type, self.request_id = status, content_type, request_id
        self.body = body[:200]


class PagingError(GatewayError):
    """The gateway handed back a page token already followed: paging would never end."""

    def __init__(self, token: str) -> None:
        super().__init__(
            f"next_page_token {token!r} was returned twice; stopping to avoid an endless loop"
        )
        self.token = token


class StreamEnded(GatewayError):
    """The gateway ended a real-time stream for a reason a reconnect cannot fix."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"stream closed ({code}): {reason}")
        self.code, self.reason = code, reason


class ApiError(GatewayError):
    """The gateway answered with an error (a problem document).

    ``code`` is the stable error code, ``errors`` the field-level issues (validation,
    filters), ``request_id`` the ``X-Request-ID`` to quote to the operator.
    """

    status_code: ClassVar[int | None] = None
    codes: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str = "",
        request_id: str | None = None,
        errors: tuple[FieldIssue, ...] = (),
        headers: Mapping[str, str] | None = None,
        problem: Mapping[str, Any] | None = None,
    ) -> None:
        where = f" [request {request_id}]" if request_id else ""
        super().__init__(f"{status} {code}: {detail}{where}")
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title
        self.request_id = request_id
        self.errors = errors
        self.headers: Mapping[str, str] = dict(headers or {})
        self.problem: Mapping[str, Any] = dict(problem or {})


class InvalidArgument(ApiError):
    status_code = 400
    codes = frozenset({"INVALID_ARGUMENT", "MALFORMED_JSON", "MALFORMED_XML", "BAD_REQUEST"})


class Unauthenticated(ApiError):
    """Missing, expired, refused or revoked credentials (401), or a refused token grant."""

    status_code = 401
    codes = frozenset({"UNAUTHENTICATED", "TOKEN_EXPIRED", "TOKEN_REVOKED"})


class PermissionDenied(ApiError):
    status_code = 403
    codes = frozenset({"PERMISSION_DENIED", "ORIGIN_NOT_ALLOWED"})


class NotFound(ApiError):
    status_code = 404
    codes = frozenset({"NOT_FOUND"})


class Conflict(ApiError):
    status_code = 409
    codes = frozenset({"CONFLICT"})


class InvalidTransition(Conflict):
    codes = frozenset({"INVALID_TRANSITION"})


class InsufficientStock(Conflict):
    codes = frozenset({"INSUFFICIENT_STOCK"})


class LimitReached(Conflict):
    """A per-organization cap (e.g. 20 webhook endpoints): delete one first."""

    codes = frozenset({"LIMIT_REACHED"})


class ResyncRequired(ApiError):
    """The stream position to resume from is no longer kept (or never was): reload the
    state you mirror, then stream again without a position."""

    status_code = 410
    codes = frozenset({"RESYNC_REQUIRED"})


class PreconditionFailed(ApiError):
    """``If-Match`` no longer matches: someone changed the resource since you read it."""

    status_code = 412
    codes = frozenset({"PRECONDITION_FAILED"})


class ValidationFailed(ApiError):
    status_code = 422
    codes = frozenset({"VALIDATION_ERROR"})


class IdempotencyKeyReused(ValidationFailed):
    codes = frozenset({"IDEMPOTENCY_KEY_REUSED"})


class RateLimited(ApiError):
    """Over a rate limit, and retries ran out; ``retry_after`` is in seconds."""

    status_code = 429
    codes = frozenset({"RATE_LIMITED"})

    @property
    def retry_after(self) -> float | None:
        raw = self.headers.get("retry-after")
        try:
            return float(raw) if raw is not None else None
        except ValueError:
            return None


class ServerError(ApiError):
    """A 5xx the client could not recover from by retrying."""

    status_code = 500
    codes = frozenset({"INTERNAL"})


class Unavailable(ServerError):
    status_code = 503
    codes = frozenset({"UNAVAILABLE"})


class DatabaseUnavailable(Unavailable):
    codes = frozenset({"DATABASE_UNAVAILABLE"})


_ALL: tuple[type[ApiError], ...] = (
    InvalidArgument,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    Conflict,
    InvalidTransition,
    InsufficientStock,
    LimitReached,
    ResyncRequired,
    PreconditionFailed,
    ValidationFailed,
    IdempotencyKeyReused,
    RateLimited,
    ServerError,
    Unavailable,
    DatabaseUnavailable,
)
_BY_CODE = {code: cls for cls in _ALL for code in cls.codes}
_BY_STATUS = {cls.status_code: cls for cls in reversed(_ALL) if cls.status_code is not None}
# Subclasses repeat their parent's status; the family (the parent) wins for unknown codes.
_BY_STATUS.update({409: Conflict, 422: ValidationFailed, 503: Unavailable, 500: ServerError})


def _issues(raw: object) -> tuple[FieldIssue, ...]:
    if not isinstance(raw, list):
        return ()
    found = []
    for item in raw:
        if isinstance(item, Mapping):
            loc = item.get("loc")
            found.append(
                FieldIssue(
                    loc=tuple(loc) if isinstance(loc, list) else (),
                    msg=str(item.get("msg", "")),
                    type=str(item.get("type", "")),
                )
            )
    return tuple(found)


def error_class(status: int, code: str) -> type[ApiError]:
    if code in _BY_CODE:
        return _BY_CODE[code]
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else ApiError


def from_problem(
    status: int, body: object, headers: Mapping[str, str], request_id: str | None
) -> ApiError:
    """The exception for an error response (``body``: its parsed JSON, or None).

    OAuth2 token errors (``{"error": ..., "error_description": ...}``) become
    ``Unauthenticated`` with the OAuth2 error as ``code``."""
    problem: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    if "code" in problem:
        code = str(problem["code"])
        detail = str(problem.get("detail", ""))
    elif "error" in problem:  # RFC 6749 error from the token endpoint
        code = str(problem["error"]).upper()
        detail = str(problem.get("error_description", problem["error"]))
        cls: type[ApiError] = Unauthenticated if status in (400, 401) else error_class(status, "")
        return cls(status, code, detail, request_id=request_id, headers=headers, problem=problem)
    else:
        code = f"HTTP_{status}"
        detail = "the gateway answered without a problem document"
    rid = problem.get("request_id") or request_id
    return error_class(status, code)(
        status,
        code,
        detail,
        title=str(problem.get("title", "")),
        request_id=str(rid) if rid else None,
        errors=_issues(problem.get("errors")),
        headers=headers,
        problem=problem,
    )
