"""Domain errors with a stable ``code``; each door maps them once.

    DomainError                    (code, status)
    ├── Unauthenticated            UNAUTHENTICATED        401
    │   └── InvalidToken           UNAUTHENTICATED        401
    ├── PermissionDenied           PERMISSION_DENIED      403
    ├── NotFound                   NOT_FOUND              404
    ├── Conflict                   CONFLICT               409
    │   ├── InvalidTransition      INVALID_TRANSITION     409
    │   ├── InsufficientStock      INSUFFICIENT_STOCK     409
    │   └── LimitReached           LIMIT_REACHED          409  (a per-organization cap)
    ├── PreconditionFailed         PRECONDITION_FAILED    412
    ├── InvalidArgument            INVALID_ARGUMENT       400  (query parameters, filters)
    ├── ValidationFailed           VALIDATION_ERROR       422  (bodies; per-field errors)
    ├── IdempotencyKeyReused       IDEMPOTENCY_KEY_REUSED 422
    ├── ResyncRequired             RESYNC_REQUIRED        410  (a resume past the change log)
    └── Unavailable                UNAVAILABLE            503  (a dependency is away)

``status`` is the HTTP status REST uses; GraphQL puts ``code`` in
``extensions.code``. Messages are written for the API client: they say what was
wrong and how to fix it, and never contain SQL or internals. The HTTP edge's own
errors (``gateway.errors``) and the GraphQL door's (``resolvers``) derive from
``DomainError`` too, so every door maps one base.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one input field: ``loc`` is the path to it, in one shape for
    every door. Its first element says where the value came from, as in a REST
    request: ``body`` (a GraphQL mutation's ``input``), ``query`` (a list's
    parameters; GraphQL: the field's arguments), ``path`` or ``header``; then field
    names and list indexes (``["body", "items", 0, "product_id"]``)."""

    loc: tuple[str | int, ...]
    msg: str
    type: str

    def as_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


class DomainError(Exception):
    code: ClassVar[str] = "INTERNAL"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, *, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, detail={self.detail!r})"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"
    status = 401
    title = "Authentication required"


class InvalidToken(Unauthenticated):
    """A credential was sent but is not valid (bad signature, expired, revoked...)."""


class PermissionDenied(DomainError):
    code = "PERMISSION_DENIED"
    status = 403
    title = "Permission denied"


class NotFound(DomainError):
    code = "NOT_FOUND"
    status = 404
    title = "Not found"

    @classmethod
    def for_resource(cls, resource: str, ident: object) -> NotFound:
        return cls(f"{resource} {ident} does not exist")


class Conflict(DomainError):
    code = "CONFLICT"
    status = 409
    title = "Conflict"


class InvalidTransition(Conflict):
    code = "INVALID_TRANSITION"
    title = "Invalid state transition"


class InsufficientStock(Conflict):
    code = "INSUFFICIENT_STOCK"
    title = "Insufficient stock"


class LimitReached(Conflict):
    code = "LIMIT_REACHED"
    title = "Limit reached"


class PreconditionFailed(DomainError):
    code = "PRECONDITION_FAILED"
    status = 412
    title = "Precondition failed"


class InvalidArgument(DomainError):
    code = "INVALID_ARGUMENT"
    status = 400
    title = "Invalid argument"


class ValidationFailed(DomainError):
    code = "VALIDATION_ERROR"
    status = 422
    title = "Validation failed"


class IdempotencyKeyReused(DomainError):
    code = "IDEMPOTENCY_KEY_REUSED"
    status = 422
    title = "Idempotency key reused"


class ResyncRequired(DomainError):
    """A resume position older than the change log keeps: reload, then subscribe afresh."""

    code = "RESYNC_REQUIRED"
    status = 410
    title = "Resync required"


class Unavailable(DomainError):
    """A dependency is not ready yet (or is away); try again shortly."""

    code = "UNAVAILABLE"
    status = 503
    title = "Service unavailable"
