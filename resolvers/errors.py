"""GraphQL errors on the wire, shaped once for every door (HTTP, WebSocket, streams).

A ``db`` error carries REST's ``code`` in ``extensions.code`` (and its field
errors); parse and validation errors, limits included, are
``GRAPHQL_VALIDATION_FAILED`` plus their own extensions; anything unexpected is
masked (``INTERNAL``, with the request id) and logged here.
"""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError

from db.errors import DomainError
from gateway.errors import database_unavailable
from gateway.logs import request_id_var

log = logging.getLogger("gateway.graphql")


def format_error(error: GraphQLError) -> dict[str, Any]:
    """``error`` as a response's ``errors`` entry."""
    out: dict[str, Any] = {"message": error.message}
    if error.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        out["path"] = error.path
    original = error.original_error
    if original is not None and not isinstance(original, DomainError | GraphQLError):
        original = database_unavailable(original) or original  # DATABASE_UNAVAILABLE
    if isinstance(original, DomainError):
        out["message"] = original.detail
        out["extensions"] = {"code": original.code}
        if original.errors:
            out["extensions"]["errors"] = [e.as_dict() for e in original.errors]
    elif original is None or isinstance(original, GraphQLError):
        # Parse and validation errors (limits included), and variables that do not fit
        # their types (graphql-core wraps the coercion's own error): the client's input.
        out["extensions"] = {"code": "GRAPHQL_VALIDATION_FAILED", **(error.extensions or {})}
    else:
        log.error("unhandled error in a resolver", exc_info=original)
        out["message"] = "Unexpected error."
        out["extensions"] = {"code": "INTERNAL", "request_id": request_id_var.get()}
    return out


class _Shaped(GraphQLError):
    """An error whose wire form is ``format_error``'s (codes, masking), as over HTTP."""

    def __init__(self, error: GraphQLError, shaped: dict[str, Any]) -> None:
        super().__init__(
            error.message,
            error.nodes,
            error.source,
            error.positions,
            error.path,
            error.original_error,
            error.extensions,
        )
        self._shaped = shaped

    @property
    def formatted(self) -> Any:
        return self._shaped


def shape(errors: list[GraphQLError] | tuple[GraphQLError, ...] | None) -> list[GraphQLError]:
    """Errors whose ``formatted`` is ``/graphql``'s wire form (syntax errors stay as they are),
    for the protocol handlers and streams, which send ``formatted``."""
    return [
        error if isinstance(error, GraphQLSyntaxError) else _Shaped(error, format_error(error))
        for error in errors or ()
    ]
