"""The fast engine: graphql-core's executor straight on the Strawberry schema.

Queries and mutations run with ``FastExecutor`` (``resolvers.engine.fastexec``:
plain fields read directly, plans kept with the document) and, for the root
fields that allow it, without Strawberry's per-call resolver wrapper
(``resolvers.engine.direct``); resolvers still get Strawberry's ``Info``. This
skips ``strawberry.Schema.execute``, whose extension runner, context managers
and error processing were a fixed cost that was most of a small query's time
(ops/bench/RESULTS.md). Subscriptions run on graphql-core's ``subscribe`` with
``EventExecutor``. The look-ahead memo (``Context.memo``) lives with the prepared
document and serves all its requests.

All of this leans on private Strawberry and graphql-core APIs; each is listed,
with what is relied on, in ``tests/graphql/test_engine_upstream.py``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any

import strawberry
from graphql import ExecutionResult, GraphQLError, subscribe
from graphql.execution.executor import Executor
from graphql.execution.executor_throwing_on_incremental import ExecutorThrowingOnIncremental
from strawberry.execution.is_awaitable import optimized_is_awaitable

from resolvers.engine.direct import DirectRootFields
from resolvers.engine.fastexec import FastExecutor

if TYPE_CHECKING:
    from resolvers.engine.runner import Prepared


class EventExecutor(ExecutorThrowingOnIncremental):
    """graphql-core's subscription executor, with a memo of its own per event.

    graphql-core 3.3 runs each event on a shallow copy of the subscription's
    executor, and the copy shares the memo of collected subfields, keyed by the
    id of a list made anew per event: it grew by about a kilobyte per event for as
    long as the subscription lived (a dashboard open for a day held hundreds of
    megabytes). The memo is only useful within one event, so each gets a fresh one.
    """

    def build_per_event_executor(self, payload: Any) -> Executor[Any]:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor


class FastExecution:
    """Runs prepared documents with graphql-core directly (see the module doc)."""

    def __init__(self, schema: strawberry.Schema, hide_suggestions: bool) -> None:
        self._schema = schema._schema
        self.hide_suggestions = hide_suggestions
        if any(map(self._schema.get_directive, ("defer", "stream"))):
            raise RuntimeError("the fast engine does not serve @defer/@stream results")
        self.direct = DirectRootFields(schema)
        # Tests run the same documents through graphql-core's standard executor.
        self.executor_class: type[Executor[Any]] = FastExecutor

    async def execute(
        self,
        query: str,
        prepared: Prepared,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Any,
    ) -> ExecutionResult:
        document = prepared.document
        assert document is not None  # the runner only executes accepted documents
        context.memo = prepared.memo
        fast = self.executor_class is FastExecutor
        plans = prepared.plans
        executor: Executor[Any] | list[GraphQLError]
        if fast and plans is not None:
            executor = FastExecutor.for_document(
                self._schema,
                document,
                plans,
                context,
                variables,
                operation_name,
                self.hide_suggestions,
            )
        else:
            options: dict[str, Any] = {"shared_plans": plans} if fast else {}
            # graphql-core's ``execute`` minus its checks for @defer/@stream, which this
            # schema does not have (checked when built).
            executor = self.executor_class.build(
                self._schema,
                document,
                context_value=context,
                raw_variable_values=variables,
                operation_name=operation_name,
                is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
                hide_suggestions=self.hide_suggestions,
                **options,
            )
        if isinstance(executor, list):
            return ExecutionResult(data=None, errors=executor)
        result: Any = executor.execute_operation()
        if not isinstance(result, ExecutionResult):
            result = await result
        if not isinstance(result, ExecutionResult):  # incremental delivery: never enabled
            raise TypeError("this schema does not deliver results incrementally")
        return result

    async def subscribe(
        self,
        query: str,
        prepared: Prepared,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Any,
    ) -> AsyncGenerator[ExecutionResult, None] | list[GraphQLError]:
        document = prepared.document
        assert document is not None
        context.memo = prepared.memo
        source: Any = subscribe(
            self._schema,
            document,
            context_value=context,
            variable_values=variables,
            operation_name=operation_name,
            hide_suggestions=self.hide_suggestions,
            executor_class=EventExecutor,
        )
        if not isinstance(source, ExecutionResult | AsyncIterator):
            source = await source
        if isinstance(source, ExecutionResult):
            return list(source.errors or ())
        stream: AsyncGenerator[ExecutionResult, None] = source
        return stream
