"""The standard engine: Strawberry's own ``Schema.execute`` and ``Schema.subscribe``.

The fallback for when an upgrade of Strawberry or graphql-core breaks what the
fast engine relies on (``GRAPHQL_ENGINE=standard``). Documents are still prepared
by the runner first, so the limits, the refusals and their codes are the same;
only accepted documents reach Strawberry, which parses and validates them again
(they pass) and executes them with its extensions, resolver wrappers and
execution context, as a plain Strawberry application would. Results and errors
are the same as with the fast engine (``tests/graphql`` runs both ways in CI);
it is slower (ops/bench/RESULTS.md), and each request gets a look-ahead memo of
its own, since Strawberry parses every request anew.

What it uses beyond Strawberry's documented surface: an execution context class
(Strawberry's, subclassed) that in production asks graphql-core to leave "Did you
mean ...?" out of request errors (``Executor.build(hide_suggestions=...)``, public
in graphql-core) and gives each subscription event a fresh memo when graphql-core
still keeps one the old way (guarded: it never fails on a change); and a schema
extension whose ``on_execute`` tells a subscription's opener that its source
stream exists, so that errors stopping it before it starts are told apart from a
stream still waiting for its first event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Iterator
from typing import TYPE_CHECKING, Any

import strawberry
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    OperationDefinitionNode,
    get_operation_ast,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.execution import ExecutionResult as StrawberryResult
from strawberry.types.execution import PreExecutionError

if TYPE_CHECKING:
    from resolvers.engine.runner import Prepared


class _StandardContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, with a fresh memo for each subscription event.

    graphql-core 3.3 builds each event's executor as a shallow copy of the
    subscription's, sharing its memo of collected subfields, which then grows with
    every event for as long as the subscription lives (``resolvers.engine.fast``'s
    ``EventExecutor``). The memo is replaced only if it is still there, as the dict
    it was: should graphql-core change it, this does nothing rather than fail.
    """

    hide_every_suggestion = False

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        if cls.hide_every_suggestion:
            kwargs["hide_suggestions"] = True
        return super().build(*args, **kwargs)

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        if isinstance(vars(executor).get("_relevant_sub_fields"), dict):
            executor._relevant_sub_fields = {}
        return executor


class _ProductionContext(_StandardContext):
    """In production, suggestions ("Did you mean ...?") are left out of request errors."""

    hide_every_suggestion = True


def _no_operation(document: DocumentNode, operation_name: str | None) -> GraphQLError:
    """graphql-core's error when no operation of ``document`` is the one to run
    (Strawberry raises instead of answering it)."""
    if operation_name is not None:
        return GraphQLError(f"Unknown operation named '{operation_name}'.")
    if any(isinstance(d, OperationDefinitionNode) for d in document.definitions):
        return GraphQLError("Must provide operation name if query contains multiple operations.")
    return GraphQLError("Must provide an operation.")


def _core(result: StrawberryResult) -> ExecutionResult:
    return ExecutionResult(data=result.data, errors=result.errors)


class StandardExecution:
    """Runs prepared documents through Strawberry's ``Schema`` (see the module doc)."""

    def __init__(self, schema: strawberry.Schema, hide_suggestions: bool) -> None:
        self.schema = schema
        # Subscriptions being opened: their context's id -> set once the source stream exists.
        opening: dict[int, asyncio.Future[None]] = {}
        self._opening = opening

        class SourceStreamOpened(SchemaExtension):
            def on_execute(self) -> Iterator[None]:
                yield
                future = opening.pop(id(self.execution_context.context), None)
                if future is not None and not future.done():
                    future.set_result(None)

        schema.extensions = (*schema.extensions, SourceStreamOpened)
        schema.execution_context_class = (
            _ProductionContext if hide_suggestions else _StandardContext
        )

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
        if get_operation_ast(document, operation_name) is None:
            return ExecutionResult(data=None, errors=[_no_operation(document, operation_name)])
        context.memo = {}
        result = await self.schema.execute(
            query, variable_values=variables, context_value=context, operation_name=operation_name
        )
        return _core(result)

    async def subscribe(
        self,
        query: str,
        prepared: Prepared,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Any,
    ) -> AsyncGenerator[ExecutionResult, None] | list[GraphQLError]:
        """The stream, once its source exists; or the errors that stopped it first.

        Strawberry yields those errors as the stream's first item, and a stream that
        started yields its first event whenever it comes: the first item is awaited
        until the source stream exists (``SourceStreamOpened``), and only taken now
        if it is already there.
        """
        context.memo = {}
        key = id(context)
        opened = self._opening[key] = asyncio.get_running_loop().create_future()
        try:
            results = await self.schema.subscribe(
                query,
                variable_values=variables,
                context_value=context,
                operation_name=operation_name,
            )
            first = asyncio.ensure_future(anext(results))
            try:
                await asyncio.wait((first, opened), return_when=asyncio.FIRST_COMPLETED)
            except BaseException:
                first.cancel()
                raise
        finally:
            self._opening.pop(key, None)
        if first.done() and not first.cancelled() and first.exception() is None:
            item = first.result()
            if isinstance(item, PreExecutionError):
                await results.aclose()
                return list(item.errors or ())
        return self._events(results, first)

    @staticmethod
    async def _events(
        results: AsyncGenerator[StrawberryResult, None],
        first: asyncio.Future[StrawberryResult],
    ) -> AsyncGenerator[ExecutionResult, None]:
        try:
            try:
                item = await first
            except StopAsyncIteration:
                return
            yield _core(item)
            async for item in results:
                yield _core(item)
        finally:
            if not first.done():
                first.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await first
            await results.aclose()
