"""Running a document: parse and validate once per distinct text, then graphql-core.

The handler runs documents with graphql-core's executor on the Strawberry schema
directly (``resolvers.fastexec.FastExecutor``; resolvers still get Strawberry's
``Info``) instead of ``strawberry.Schema.execute``: that path wraps every
operation in its extension runner, context managers and error processing, a
fixed cost that was most of a small query's time (see ops/bench/RESULTS.md).
What those extensions did here is done once per document instead: parsing with
the token limit, and validation with the standard rules plus the limits
(``limit_rules``), cached together by query text with what execution and
look-ahead work out for the document.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    OperationType,
    get_operation_ast,
    parse,
    specified_rules,
    validate,
)
from graphql.execution.executor import Executor
from strawberry.execution.is_awaitable import optimized_is_awaitable

from gateway.settings import Settings
from resolvers.direct import DirectRootFields
from resolvers.fastexec import FastExecutor, SharedPlans
from resolvers.schema import build_schema, limit_rules

CACHE_SIZE = 1000


class WrongOperationType(Exception):
    """The document's operation may not run over this method (a mutation over GET)."""


class Runner:
    def __init__(self, settings: Settings) -> None:
        self.schema = build_schema(settings)
        self.direct = DirectRootFields(self.schema)
        self._graphql_schema = self.schema._schema
        self._rules = (*specified_rules, *limit_rules(settings))
        if any(map(self._graphql_schema.get_directive, ("defer", "stream"))):
            raise RuntimeError("run() does not serve @defer/@stream results")
        self._max_tokens = settings.graphql_max_tokens
        self.prepare = lru_cache(maxsize=CACHE_SIZE)(self._prepare)
        # Tests run the same documents through graphql-core's standard executor.
        self.executor_class: type[Executor[Any]] = FastExecutor

    def _prepare(
        self, query: str
    ) -> tuple[DocumentNode | None, tuple[GraphQLError, ...], SharedPlans | None, dict[Any, Any]]:
        try:
            document = parse(query, max_tokens=self._max_tokens)
        except GraphQLError as error:
            return None, (error,), None, {}
        errors = validate(self._graphql_schema, document, self._rules)
        if errors:
            return None, tuple(errors), None, {}
        # Execution plans live as long as the document, and are shared between its
        # requests only when no directive (@skip/@include) makes them depend on
        # variables; an "@" anywhere, even inside a string, just means no sharing.
        return document, (), ({} if "@" not in query else None), {}

    async def run(
        self,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Any,
        allowed: Collection[OperationType],
    ) -> ExecutionResult:
        document, errors, plans, memo = self.prepare(query)
        if document is None:
            return ExecutionResult(data=None, errors=list(errors))
        operation = get_operation_ast(document, operation_name)
        if operation is not None and operation.operation not in allowed:
            raise WrongOperationType(operation.operation.value)
        context.memo = memo
        options: dict[str, Any] = (
            {"shared_plans": plans} if self.executor_class is FastExecutor else {}
        )
        # graphql-core's ``execute`` minus its checks for @defer/@stream, which this
        # schema does not have (asserted in __init__).
        executor = self.executor_class.build(
            self._graphql_schema, document, context_value=context,
            raw_variable_values=variables, operation_name=operation_name,
            is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
            **options,
        )  # fmt: skip
        if isinstance(executor, list):
            return ExecutionResult(data=None, errors=executor)
        result: Any = executor.execute_operation()
        if not isinstance(result, ExecutionResult):
            result = await result
        if not isinstance(result, ExecutionResult):  # incremental delivery: never enabled
            raise TypeError("this schema does not deliver results incrementally")
        return result
