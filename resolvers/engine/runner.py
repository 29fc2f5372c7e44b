"""Running a document: parse, measure and validate once per distinct text, then execute.

Every document, whichever engine runs it, is first prepared here: parsed with
the size and token limits, measured against the other limits in linear time
(``resolvers.limits``) before graphql-core's standard rules validate it, cached
by query text within a memory budget. A refused document is refused here, with
the same errors and codes for both engines.

What then executes it is chosen once, when the runner is built
(``GRAPHQL_ENGINE``): ``fast`` (``resolvers.engine.fast``: graphql-core's
executor on the Strawberry schema, plain fields read directly, plans and
look-ahead kept with the document) or ``standard`` (``resolvers.engine.standard``:
Strawberry's own ``Schema.execute`` and ``Schema.subscribe``). Both give the same
results; the fast one leans on private Strawberry and graphql-core APIs
(``tests/graphql/test_engine_upstream.py`` lists them), the standard one does not.

While tracing is on (``gateway.tracing``), a request's span gets ``graphql.parse``
and ``graphql.validate`` children only when its document is prepared now: a cache
hit has neither. ``graphql.execute`` (operation type and name) wraps each run,
whichever the engine; Strawberry's own parse and validation of an accepted
document in the standard engine are inside it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Collection
from typing import Any, NamedTuple, Protocol

import strawberry
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    NoSchemaIntrospectionCustomRule,
    OperationType,
    get_operation_ast,
    parse,
    specified_rules,
    validate,
)

from db import tracing
from gateway.settings import Settings
from gateway.spans import traced_execution
from resolvers.engine.fast import FastExecution
from resolvers.engine.fastexec import SharedPlans
from resolvers.engine.standard import StandardExecution
from resolvers.limits import DocumentLimits, measure
from resolvers.schema import build_schema

# What a prepared document holds: its text, and per token of it the syntax tree and
# token chain (measured at 440-800 bytes per token with the validation results),
# plus the execution plans and look-ahead built for it as it runs.
BYTES_PER_TOKEN = 1500
ENTRY_OVERHEAD = 8192
# Larger documents are prepared on every request and never cached.
MAX_CACHED_CHARACTERS = 16_384


class WrongOperationType(Exception):
    """The document's operation may not run over this method (a mutation over GET)."""


class Prepared(NamedTuple):
    """A document parsed, measured and validated once: the document (None when it
    was refused, with the errors saying why), execution plans to share, look-ahead
    memo, and the estimated cost of each operation (for rate limits)."""

    document: DocumentNode | None
    errors: tuple[GraphQLError, ...]
    plans: SharedPlans | None
    memo: dict[Any, Any]
    costs: dict[str | None, int]

    def cost(self, operation_name: str | None) -> int:
        """The cost of the operation that runs (the only one, or the named one)."""
        if operation_name in self.costs:
            return self.costs[operation_name]
        if len(self.costs) == 1:
            return next(iter(self.costs.values()))
        return 1


class PreparedCache:
    """Prepared documents by text, least recently used first out, bounded by an
    estimate of the memory they hold (``GRAPHQL_CACHE_BYTES``), not by a count."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[str, tuple[Prepared, int]] = OrderedDict()
        self.hits = self.misses = 0  # gateway_cache_requests_total (gateway.metrics)

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def estimate(query: str, tokens: int) -> int:
        """The memory an entry holds: its text and what its tokens became."""
        return ENTRY_OVERHEAD + 2 * len(query) + BYTES_PER_TOKEN * tokens

    def get(self, query: str) -> Prepared | None:
        found = self._entries.get(query)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(query)
        return found[0]

    def put(self, query: str, prepared: Prepared, tokens: int) -> None:
        size = self.estimate(query, tokens)
        if len(query) > MAX_CACHED_CHARACTERS or size > self.max_bytes:
            return
        self._entries[query] = (prepared, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self.bytes -= evicted

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0


def _refused(error: GraphQLError) -> tuple[Prepared, int]:
    return Prepared(None, (error,), None, {}, {}), 0


def _tokens(document: DocumentNode) -> int:
    """The document's tokens, comments included (each is kept, linked from the tree)."""
    count = 0
    token = document.loc.start_token if document.loc is not None else None
    while token is not None:
        count += 1
        token = token.next
    return count


class Execution(Protocol):
    """How an engine executes a prepared (accepted) document."""

    async def execute(
        self,
        query: str,
        prepared: Prepared,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Any,
    ) -> ExecutionResult: ...

    async def subscribe(
        self,
        query: str,
        prepared: Prepared,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Any,
    ) -> AsyncGenerator[ExecutionResult, None] | list[GraphQLError]: ...


# The engines, by their ``GRAPHQL_ENGINE`` name.
EXECUTIONS: dict[str, Callable[[strawberry.Schema, bool], Execution]] = {
    "fast": FastExecution,
    "standard": StandardExecution,
}
ENGINES = tuple(EXECUTIONS)


class Runner:
    """The schema built for ``settings``, its prepared documents, and the engine that runs them."""

    def __init__(self, settings: Settings) -> None:
        self.schema = build_schema(settings)
        self._graphql_schema = self.schema._schema
        self.limits = DocumentLimits.from_settings(settings)
        self._rules = (
            specified_rules
            if settings.introspection_enabled
            else (*specified_rules, NoSchemaIntrospectionCustomRule)
        )
        # "Did you mean ...?" names fields a caller may not know about.
        self.hide_suggestions = settings.environment == "production"
        self.cache = PreparedCache(settings.graphql_cache_bytes)
        self.engine = settings.graphql_engine
        self.execution = EXECUTIONS[self.engine](self.schema, self.hide_suggestions)
        # Bound once: running a document costs no choice per request.
        self._execute = self.execution.execute
        self._subscribe = self.execution.subscribe

    def prepare(self, query: str) -> Prepared:
        """``query`` parsed, measured and validated: from the cache, or now."""
        prepared = self.cache.get(query)
        if prepared is None:
            prepared, tokens = self._prepare(query)
            self.cache.put(query, prepared, tokens)
        return prepared

    def _prepare(self, query: str) -> tuple[Prepared, int]:
        """The prepared document and how many tokens it has (what its memory grows with)."""
        limits = self.limits
        size = len(query.encode("utf-8", "surrogatepass"))
        if size > limits.max_bytes:
            return _refused(
                GraphQLError(
                    f"the document is {size} bytes, more than the limit of {limits.max_bytes}: "
                    "send a smaller document (or register it as a persisted query)",
                    extensions={
                        "code": "QUERY_TOO_LARGE",
                        "bytes": size,
                        "limit": limits.max_bytes,
                    },
                )
            )
        try:
            with tracing.child_span("graphql.parse"):  # a cache miss only (db/tracing.py)
                document = parse(
                    query,
                    max_lexical_tokens=limits.max_tokens,
                    max_comments=limits.max_tokens,
                    max_source_length=limits.max_bytes,
                )
        except GraphQLError as error:
            if "more than" in error.message:  # a parser limit, not a syntax error
                error.extensions = {"code": "QUERY_TOO_LARGE", "limit": limits.max_tokens}
            return _refused(error)
        tokens = _tokens(document)
        with tracing.child_span("graphql.validate"):
            measured = measure(document, limits)
            if measured.errors:
                return Prepared(None, tuple(measured.errors), None, {}, measured.costs), tokens
            errors = validate(
                self._graphql_schema, document, self._rules, hide_suggestions=self.hide_suggestions
            )
        if errors:
            return Prepared(None, tuple(errors), None, {}, measured.costs), tokens
        # Execution plans live as long as the document, and are shared between its
        # requests only when no directive (@skip/@include) makes them depend on
        # variables; an "@" anywhere, even inside a string, just means no sharing.
        plans: SharedPlans | None = {} if "@" not in query else None
        return Prepared(document, (), plans, {}, measured.costs), tokens

    async def run(
        self,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Any,
        allowed: Collection[OperationType],
        prepared: Prepared | None = None,
    ) -> ExecutionResult:
        """Run ``query`` (``prepared`` when the caller has prepared it already).

        Raises ``WrongOperationType`` when its operation is not one of ``allowed``.
        """
        if prepared is None:
            prepared = self.prepare(query)
        document = prepared.document
        if document is None:
            return ExecutionResult(data=None, errors=list(prepared.errors))
        operation = get_operation_ast(document, operation_name)
        if operation is not None and operation.operation not in allowed:
            raise WrongOperationType(operation.operation.value)
        if tracing.tracer is not None:
            return await traced_execution(
                self._execute, operation, query, prepared, variables, operation_name, context
            )
        return await self._execute(query, prepared, variables, operation_name, context)

    async def open_stream(
        self,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Any,
        prepared: Prepared | None = None,
    ) -> AsyncGenerator[ExecutionResult, None] | list[GraphQLError]:
        """A subscription's results, or the errors that stopped it before it started."""
        if prepared is None:
            prepared = self.prepare(query)
        if prepared.document is None:
            return list(prepared.errors)
        return await self._subscribe(query, prepared, variables, operation_name, context)
