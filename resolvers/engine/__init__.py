"""The GraphQL execution engine, fenced: everything that runs a document is here.

The doors (``resolvers.http``, ``resolvers.ws``, ``resolvers.streaming``) use
``Runner`` only: ``prepare`` (parse, measure, validate, cached), ``run`` (a query
or mutation) and ``open_stream`` (a subscription). Which engine executes is
``GRAPHQL_ENGINE``, chosen once when the runner is built: ``fast`` (graphql-core
driven directly, on private Strawberry and graphql-core APIs) or ``standard``
(Strawberry's ``Schema.execute`` / ``Schema.subscribe``). Type definitions only
need ``resolvers.engine.hints`` (``fast_field``, ``NOT_LOADED``), which imports
nothing else from here.

Names other than the hints load on first use, so that ``resolvers.types`` can
import the hints while ``resolvers.engine.runner`` imports the schema built from
those types.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from resolvers.engine.hints import NOT_LOADED, fast_field

if TYPE_CHECKING:
    from resolvers.engine.runner import (
        ENGINES,
        MAX_CACHED_CHARACTERS,
        Prepared,
        PreparedCache,
        Runner,
        WrongOperationType,
    )

__all__ = [
    "ENGINES",
    "MAX_CACHED_CHARACTERS",
    "NOT_LOADED",
    "Prepared",
    "PreparedCache",
    "Runner",
    "WrongOperationType",
    "fast_field",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(import_module("resolvers.engine.runner"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
