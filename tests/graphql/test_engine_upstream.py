"""What the GraphQL engine relies on in Strawberry, graphql-core and Sanic, checked by name.

The fast engine (``resolvers/engine``) and the GraphQL doors (``resolvers/http.py``,
``resolvers/ws.py``) use private attributes, functions and signatures of these three
libraries. Each one is checked here: it exists, with the signature the engine calls
it with, and, where that is cheap, it behaves as relied on. An upgrade that changes
one fails the test whose id names it, before anything subtler fails elsewhere.

When one fails after an upgrade: set ``GRAPHQL_ENGINE=standard`` (Strawberry's own
execution, which relies on the short list marked "standard engine" below) until
the fast engine is adapted, or keep the pinned version (docs/decisions.md).
"""

from __future__ import annotations

import asyncio
import inspect
import re
import tomllib
from collections.abc import AsyncGenerator, Callable, Sequence
from importlib.metadata import version
from pathlib import Path as FilePath
from typing import Any

import pytest
import strawberry
from graphql import (
    FieldNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLInt,
    GraphQLResolveInfoHelpers,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    Undefined,
    build_schema,
    parse,
    specified_rules,
    subscribe,
    validate,
)
from graphql.execution.collect_fields import CollectedFields, FieldDetails, collect_fields
from graphql.execution.executor import (
    CollectedErrors,
    Executor,
    default_field_resolver,
    default_type_resolver,
)
from graphql.execution.executor_throwing_on_incremental import ExecutorThrowingOnIncremental
from graphql.execution.get_variable_signature import (
    GraphQLVariableSignature,
    get_variable_signature,
)
from graphql.execution.values import (
    VariableValues,
    VariableValueSource,
    get_argument_values,
    get_variable_values,
)
from graphql.pyutils import Path, RefMap
from graphql.pyutils.gather_with_cancel import gather_with_cancel
from sanic import Sanic
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.extensions import SchemaExtension
from strawberry.http.async_base_view import AsyncWebSocketAdapter
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.base import StrawberryMaybe, StrawberryOptional
from strawberry.types.cast import TYPE_CAST_ATTRIBUTE
from strawberry.types.field import StrawberryField

from resolvers.engine.direct import STRAWBERRY_DEFINITION, DirectRootFields
from resolvers.engine.fast import EventExecutor, FastExecution
from resolvers.engine.fastexec import (
    _SCALAR_VALUES,
    PER_REQUEST,
    FastExecutor,
    _coerce_scalar_variables,
    _scalar_variables,
)
from resolvers.engine.hints import fast_field
from resolvers.engine.runner import Prepared
from resolvers.engine.standard import StandardExecution, _no_operation, _StandardContext

PYPROJECT = FilePath(__file__).resolve().parents[2] / "pyproject.toml"
PINNED = ("strawberry-graphql", "graphql-core", "sanic")

CHECKS: dict[str, Callable[[], Any]] = {}


def relies_on(api: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    """Register a check of ``api`` (its test id, and the start of its failure message)."""

    def register(check: Callable[[], Any]) -> Callable[[], Any]:
        assert api not in CHECKS, api
        CHECKS[api] = check
        return check

    return register


def parameters(api: str, function: Any, expected: Sequence[str]) -> None:
    """``function`` takes ``expected`` first, in this order (self/cls aside)."""
    found = [
        name
        for name, parameter in inspect.signature(function).parameters.items()
        if name not in ("self", "cls")
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]
    assert found[: len(expected)] == list(expected), (
        f"{api}: the engine calls it with ({', '.join(expected)}); it now takes "
        f"({', '.join(found)})"
    )


def keywords(api: str, function: Any, names: Sequence[str], *, var_keyword: bool = False) -> None:
    """``function`` accepts each of ``names`` by keyword (and ``**kwargs`` when asked)."""
    signature = inspect.signature(function).parameters
    missing = [n for n in names if n not in signature]
    assert not missing, f"{api}: no longer accepts {', '.join(missing)}"
    if var_keyword:
        assert any(p.kind is p.VAR_KEYWORD for p in signature.values()), (
            f"{api}: no longer passes extra keywords on (the engine's own options)"
        )


def attributes(api: str, obj: Any, names: Sequence[str]) -> None:
    missing = [n for n in names if not hasattr(obj, n)]
    assert not missing, f"{api}: {type(obj).__name__} has no {', '.join(missing)} any more"


# -- a small schema to look at ------------------------------------------------------


@strawberry.type
class Item:
    name: str
    count: int

    @strawberry.field(metadata=fast_field(lambda item: item.name.upper()))
    def loud(self) -> str:
        return self.name.upper()


@strawberry.type
class Query:
    @strawberry.field
    async def item(self, info: strawberry.Info, name: str) -> Item:
        return Item(name=f"{name} {info.context['suffix']}", count=2)

    @strawberry.field
    async def items(self, first: int = 2) -> list[Item]:
        return [Item(name=f"item {n}", count=n) for n in range(first)]


async def _ticks(n: int) -> AsyncGenerator[int, None]:
    for tick in range(n):
        yield tick


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self, n: int) -> AsyncGenerator[int, None]:
        if n < 0:
            raise ValueError("n must not be negative")
        return _ticks(n)


def small_schema() -> strawberry.Schema:
    return strawberry.Schema(query=Query, subscription=Subscription)


def built(schema: GraphQLSchema, query: str, **options: Any) -> Any:
    return Executor.build(schema, parse(query), **options)


# -- graphql-core --------------------------------------------------------------------


@relies_on("graphql-core Executor.build(schema, document, context_value=..., ...)")
def _build() -> None:
    api = "graphql-core Executor.build"
    parameters(api, Executor.build, ["schema", "document"])
    keywords(
        api,
        Executor.build,
        ["context_value", "raw_variable_values", "operation_name", "is_awaitable"],
        var_keyword=True,
    )
    keywords(api, Executor.build, ["hide_suggestions"])
    executor = built(small_schema()._schema, "{ items { name } }")
    attributes(api, executor, ["schema", "is_awaitable", "middleware_manager"])
    assert isinstance(executor._relevant_sub_fields, dict), (
        f"{api}: executors keep no _relevant_sub_fields memo any more (EventExecutor resets it)"
    )


@relies_on("graphql-core Executor.build request errors (standard engine copies them)")
def _build_errors() -> None:
    schema = small_schema()._schema
    both = "query A { a: items { name } } query B { b: items { name } }"
    for query, name in (("{ items { name } }", "nope"), (both, None)):
        errors = built(schema, query, operation_name=name)
        assert isinstance(errors, list), "graphql-core Executor.build: no longer refuses"
        assert [e.message for e in errors] == [_no_operation(parse(query), name).message], (
            "graphql-core Executor.build: its message for a missing operation changed "
            "(resolvers/engine/standard.py answers it for Strawberry)"
        )


@relies_on("graphql-core Executor.execute_operation()")
def _execute_operation() -> None:
    parameters("graphql-core Executor.execute_operation", Executor.execute_operation, [])


@relies_on(
    "graphql-core Executor.execute_fields(parent_type, source_value, path, grouped_field_set, "
    "position_context)"
)
def _execute_fields() -> None:
    parameters(
        "graphql-core Executor.execute_fields",
        Executor.execute_fields,
        ["parent_type", "source_value", "path", "grouped_field_set", "position_context"],
    )


@relies_on(
    "graphql-core Executor.execute_field(parent_type, source, field_details_list, path, "
    "position_context)"
)
def _execute_field() -> None:
    parameters(
        "graphql-core Executor.execute_field",
        Executor.execute_field,
        ["parent_type", "source", "field_details_list", "path", "position_context"],
    )


@relies_on("graphql-core Executor.collect_subfields(return_type, field_details_list)")
def _collect_subfields() -> None:
    api = "graphql-core Executor.collect_subfields"
    parameters(api, Executor.collect_subfields, ["return_type", "field_details_list"])
    assert CollectedFields._fields == (
        "grouped_field_set",
        "new_defer_usages",
        "forbidden_directive_instances",
    ), f"{api}: CollectedFields is now {CollectedFields._fields} (the engine unpacks three)"
    assert "node" in FieldDetails._fields, f"{api}: FieldDetails has no node any more"


@relies_on(
    "graphql-core Executor.collect_and_execute_subfields(return_type, field_details_list, "
    "path, result, position_context)"
)
def _collect_and_execute_subfields() -> None:
    parameters(
        "graphql-core Executor.collect_and_execute_subfields",
        Executor.collect_and_execute_subfields,
        ["return_type", "field_details_list", "path", "result", "position_context"],
    )


@relies_on("graphql-core Executor.handle_field_error(raw_error, return_type, details, path)")
def _handle_field_error() -> None:
    parameters(
        "graphql-core Executor.handle_field_error",
        Executor.handle_field_error,
        ["raw_error", "return_type", "field_details_list", "path"],
    )


@relies_on(
    "graphql-core Executor(schema, fragment_definitions, fragments, root_value, ...) and the "
    "state FastExecutor.for_document keeps (operation, fragment_definitions, fragments)"
)
def _executor_constructor() -> None:
    api = "graphql-core Executor()"
    parameters(
        api,
        Executor.__init__,
        [
            "schema",
            "fragment_definitions",
            "fragments",
            "root_value",
            "context_value",
            "operation",
            "variable_values",
            "field_resolver",
            "type_resolver",
            "subscribe_field_resolver",
            "enable_early_execution",
            "middleware_manager",
            "is_awaitable",
            "is_async_iterable",
        ],
    )
    keywords(api, Executor.__init__, ["hide_suggestions", "abort_signal", "hooks"])
    parameters(
        "graphql-core get_variable_values",
        get_variable_values,
        ["schema", "var_def_nodes", "inputs", "max_errors", "hide_suggestions"],
    )
    schema = small_schema()
    document = parse("query($n: String!) { item(name: $n) { name } } fragment F on Item { name }")
    executor = Executor.build(
        schema._schema, document, context_value={"suffix": "!"}, raw_variable_values={"n": "a"}
    )
    assert isinstance(executor, Executor), executor
    attributes(
        api,
        executor,
        ["operation", "fragment_definitions", "fragments", "variable_values", "collected_errors"],
    )
    assert set(executor.fragments) == {"F"}, f"{api}: fragments are no longer kept by name"


@relies_on(
    "graphql-core Executor.__init__'s attributes: FastExecutor._fresh keeps all but "
    "PER_REQUEST with the document and makes those as __init__ does"
)
def _executor_state() -> None:
    api = "graphql-core Executor.__init__"
    assert GraphQLResolveInfoHelpers._fields == ("gather", "track"), f"{api}: helpers"
    schema = small_schema()._schema
    document = parse("query($n: String!) { item(name: $n) { name } }")
    plans: dict[Any, Any] = {}
    context = {"suffix": "b"}
    first = FastExecutor.for_document(schema, document, plans, {}, {"n": "x"}, None, False)
    again = FastExecutor.for_document(schema, document, plans, context, {"n": "y"}, None, False)
    assert isinstance(first, FastExecutor)
    assert isinstance(again, FastExecutor)
    made = FastExecutor(
        schema,
        first.fragment_definitions,
        first.fragments,
        None,
        context,
        first.operation,
        again.variable_values,
        default_field_resolver,
        default_type_resolver,
        default_field_resolver,
        False,
        None,
        optimized_is_awaitable,
        None,
        hide_suggestions=False,
        shared_plans=plans,
    )
    assert set(vars(again)) == set(vars(made)) == set(vars(first)), (
        f"{api}: its attributes are now {sorted(vars(made))}: say which are per request "
        "(resolvers.engine.fastexec.PER_REQUEST)"
    )
    for name, value in vars(made).items():
        ours = getattr(again, name)
        if name in PER_REQUEST:
            assert type(ours) is type(value), f"{api}: {name} is now a {type(value)}"
            if name in ("context_value", "variable_values"):
                assert ours is value, name
            elif name == "async_helpers":
                assert ours == (again.gather_async_work, again.track_async_work), name
            elif value is not None:
                empty = value.errors if isinstance(value, CollectedErrors) else value
                assert not empty, f"{api}: {name} starts non-empty"
                assert ours is not value, name
                assert ours is not getattr(first, name), f"{api}: {name} shared by requests"
        elif name == "_stream_usages":
            assert isinstance(value, RefMap), api
            assert not len(value), api
        else:
            assert ours is value or ours == value, f"{api}: {name} differs per request"


@relies_on(
    "graphql-core's steps FastExecutor runs one root field with: collect_fields, "
    "get_argument_values, complete_value, build_response"
)
def _one_root_field_steps() -> None:
    parameters(
        "graphql-core collect_fields",
        collect_fields,
        ["schema", "fragments", "variable_values", "runtime_type", "operation", "hide_suggestions"],
    )
    parameters(
        "graphql-core get_argument_values",
        get_argument_values,
        ["type_def", "node", "variable_values", "fragment_variable_values", "hide_suggestions"],
    )
    parameters(
        "graphql-core Executor.complete_value",
        Executor.complete_value,
        ["return_type", "field_details_list", "info", "path", "result", "position_context"],
    )
    parameters("graphql-core Executor.build_response", Executor.build_response, ["data"])
    assert "fragment_variable_values" in FieldDetails._fields, (
        "graphql-core FieldDetails: no fragment_variable_values any more"
    )


@relies_on(
    "graphql-core get_argument_values: an argument given as a variable is the variable's "
    "coerced value as is (FastExecutor reads a root field's from the variables)"
)
def _arguments_from_variables() -> None:
    api = "graphql-core get_argument_values"
    schema = build_schema("type Query { a(x: [Int], y: String!, z: Int = 4): Int }")
    document = parse("query($x: [Int], $y: String!, $z: Int) { a(x: $x, y: $y, z: $z) }")
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    assert schema.query_type is not None
    field = schema.query_type.fields["a"]
    node = operation.selection_set.selections[0]
    assert isinstance(node, FieldNode)
    attributes(api, field.args["x"], ["out_name", "type"])
    given = [7]
    values = get_variable_values(
        schema, operation.variable_definitions, {"x": given, "y": "b", "z": None}
    )
    assert isinstance(values, VariableValues)
    values.coerced["x"] = given  # the very object: no copy on the way
    arguments = get_argument_values(field, node, values)
    assert list(arguments.items()) == [("x", [7]), ("y", "b"), ("z", None)], f"{api}: {arguments}"
    assert arguments["x"] is given, f"{api}: copies a variable's value"
    # The cases FastExecutor leaves to it: a variable without a value, null for non-null.
    values = get_variable_values(schema, operation.variable_definitions, {"y": "b"})
    assert isinstance(values, VariableValues)
    assert get_argument_values(field, node, values) == {"y": "b", "z": 4}, api
    values.coerced["y"] = None
    with pytest.raises(GraphQLError, match="Argument 'y' has invalid value"):
        get_argument_values(field, node, values)


@relies_on("graphql-core Executor.settle_in_background(awaitables)")
def _settle_in_background() -> None:
    parameters(
        "graphql-core Executor.settle_in_background",
        Executor.settle_in_background,
        ["awaitables"],
    )


@relies_on("graphql-core ExecutorThrowingOnIncremental.build_per_event_executor(payload)")
def _per_event_executor() -> None:
    api = "graphql-core ExecutorThrowingOnIncremental.build_per_event_executor"
    parameters(api, ExecutorThrowingOnIncremental.build_per_event_executor, ["payload"])
    schema = small_schema()._schema
    executor = ExecutorThrowingOnIncremental.build(schema, parse("subscription { ticks(n: 1) }"))
    assert isinstance(executor, ExecutorThrowingOnIncremental)
    copy = executor.build_per_event_executor(1)
    assert copy._relevant_sub_fields is executor._relevant_sub_fields, (
        f"{api}: per-event executors no longer share the memo; EventExecutor's fix "
        "(resolvers/engine/fast.py) may be unneeded now"
    )
    for executor_class in (EventExecutor, _StandardContext):  # the fast and standard engines'
        ours = executor_class.build(schema, parse("subscription { ticks(n: 1) }"))
        assert isinstance(ours, executor_class)
        per_event = ours.build_per_event_executor(1)
        assert per_event._relevant_sub_fields is not ours._relevant_sub_fields


@relies_on("graphql-core subscribe(..., executor_class=, hide_suggestions=)")
def _subscribe() -> None:
    keywords("graphql-core subscribe", subscribe, ["executor_class", "hide_suggestions"])


@relies_on("graphql-core parse(max_lexical_tokens=, max_comments=, max_source_length=)")
def _parse() -> None:
    api = "graphql-core parse"
    keywords(api, parse, ["max_lexical_tokens", "max_comments", "max_source_length"])
    for options, query in (
        ({"max_lexical_tokens": 3}, "{ a b c d }"),
        ({"max_comments": 1}, "# one\n# two\n{ a }"),
    ):
        with pytest.raises(GraphQLError) as refused:
            parse(query, **options)
        # The runner tells a parser limit from a syntax error by these words.
        assert "more than" in refused.value.message, (
            f"{api}: a limit's message no longer says 'more than': {refused.value.message!r}"
        )


@relies_on("graphql-core validate(schema, document, rules, hide_suggestions=)")
def _validate() -> None:
    api = "graphql-core validate"
    parameters(api, validate, ["schema", "document_ast", "rules"])
    keywords(api, validate, ["hide_suggestions"])
    schema = small_schema()._schema
    [hidden] = validate(schema, parse("{ itemz { name } }"), specified_rules, hide_suggestions=True)
    [shown] = validate(schema, parse("{ itemz { name } }"), specified_rules)
    assert "Did you mean" in shown.message
    assert "Did you mean" not in hidden.message, f"{api}: hide_suggestions no longer hides"


@relies_on("graphql-core Path(prev, key, typename) and gather_with_cancel(*awaitables)")
def _pyutils() -> None:
    assert Path._fields == ("prev", "key", "typename"), f"graphql-core Path: {Path._fields}"
    assert inspect.iscoroutinefunction(gather_with_cancel), "graphql-core gather_with_cancel"
    assert asyncio.run(gather_with_cancel(asyncio.sleep(0, 1), asyncio.sleep(0, 2))) == [1, 2]


@relies_on("graphql-core GraphQLScalarType/GraphQLEnumType.coerce_output_value(value)")
def _coerce_output_value() -> None:
    api = "graphql-core coerce_output_value"
    assert GraphQLString.coerce_output_value("x") == "x", api
    with pytest.raises(GraphQLError):
        GraphQLInt.coerce_output_value(2**40)
    enum = GraphQLEnumType("Size", {"BIG": "big"})
    assert enum.coerce_output_value("big") == "BIG", api


@relies_on(
    "graphql-core get_variable_values' result for built-in scalar variables: "
    "VariableValues(sources, coerced), VariableValueSource(signature, value), "
    "get_variable_signature(schema, node), and the scalars' coerce_input_value"
)
def _variable_values() -> None:
    api = "graphql-core get_variable_values"
    assert VariableValues._fields == ("sources", "coerced"), f"{api}: {VariableValues._fields}"
    assert VariableValueSource._fields == ("signature", "value"), f"{api}: VariableValueSource"
    assert GraphQLVariableSignature._fields == ("name", "type", "default", "default_value")
    parameters("graphql-core get_variable_signature", get_variable_signature, ["schema"])
    schema = build_schema("type Query { a(id: ID, f: Float): Int }")
    document = parse("query($a: ID!, $b: Int, $c: String, $d: Float, $e: Boolean) { a }")
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    definitions = operation.variable_definitions
    plan = _scalar_variables(schema, operation)
    assert plan is not None, f"{api}: the built-in scalars are no longer the schema's"
    for inputs in ({"a": 5, "b": None, "d": 2, "e": False}, {"a": "x", "c": "y", "d": 1.5}):
        theirs = get_variable_values(schema, definitions, inputs)
        ours = _coerce_scalar_variables(plan, inputs)
        assert isinstance(theirs, VariableValues), f"{api}: {theirs}"
        assert ours is not None
        assert list(theirs.coerced.items()) == list(ours.coerced.items()), f"{api}: coerced"
        assert [
            (s.signature.name, s.signature.default, s.value) for s in theirs.sources.values()
        ] == [(s.signature.name, s.signature.default, s.value) for s in ours.sources.values()], (
            f"{api}: sources"
        )
    # What each scalar takes unchanged (or, ID, an int as a string) is what it still takes.
    samples = ["x", "", 0, -5, 2**31 - 1, 2**31, 2**53, 10**17, 1.5, -0.0, True, False]
    for scalar, ours_only in _SCALAR_VALUES.items():
        for value in samples:
            coerced = ours_only(value)
            if coerced is not Undefined:
                theirs_value = scalar.coerce_input_value(value)
                assert (type(theirs_value), theirs_value) == (type(coerced), coerced), (
                    f"graphql-core {scalar.name}.coerce_input_value({value!r}) changed"
                )


@relies_on("graphql-core GraphQLSchema.get_field(parent_type, field_name), get_directive(name)")
def _schema_lookups() -> None:
    schema = small_schema()._schema
    parameters("graphql-core GraphQLSchema.get_field", schema.get_field, ["parent_type"])
    assert schema.query_type is not None
    assert schema.get_field(schema.query_type, "items") is not None
    assert schema.get_directive("defer") is None, "graphql-core: @defer is now on by default"


# -- Strawberry ----------------------------------------------------------------------


@relies_on("strawberry Schema._schema (the graphql-core schema)")
def _schema_attribute() -> None:
    assert isinstance(small_schema()._schema, GraphQLSchema), "strawberry Schema._schema"


@relies_on("strawberry StrawberryGraphQLCoreExecutionContext.build_resolve_info(...)")
def _build_resolve_info() -> None:
    api = "strawberry StrawberryGraphQLCoreExecutionContext.build_resolve_info"
    parameters(
        api,
        StrawberryGraphQLCoreExecutionContext.build_resolve_info,
        ["field_def", "field_nodes", "parent_type", "path"],
    )
    assert FastExecutor.build_resolve_info is (
        StrawberryGraphQLCoreExecutionContext.build_resolve_info
    )
    # Borrowed by FastExecutor (a plain graphql-core Executor): it must still run there.
    schema = small_schema()
    fast = FastExecution(schema, hide_suggestions=False)
    document = parse("query($n: String!) { item(name: $n) { name count loud } }")
    prepared = Prepared(document, (), {}, {}, {})

    class Context(dict[str, Any]):
        memo: Any = None

    result = asyncio.run(fast.execute("", prepared, {"n": "a"}, None, Context(suffix="b")))
    assert result.errors is None, f"{api}: {result.errors}"
    assert result.data == {"item": {"name": "a b", "count": 2, "loud": "A B"}}, api


@relies_on("strawberry optimized_is_awaitable(value)")
def _is_awaitable() -> None:
    from strawberry.execution.is_awaitable import optimized_is_awaitable

    coroutine = asyncio.sleep(0)
    assert optimized_is_awaitable(coroutine), "strawberry optimized_is_awaitable"
    coroutine.close()
    assert not optimized_is_awaitable(1), "strawberry optimized_is_awaitable"


@relies_on("strawberry TYPE_CAST_ATTRIBUTE (set in the object's __dict__ by strawberry.cast)")
def _type_cast() -> None:
    item = Item(name="a", count=1)
    strawberry.cast(Item, item)
    assert TYPE_CAST_ATTRIBUTE in item.__dict__, "strawberry TYPE_CAST_ATTRIBUTE"


@relies_on("strawberry 'strawberry-definition' in graphql-core extensions, field attributes")
def _definitions() -> None:
    api = "strawberry 'strawberry-definition'"
    schema = small_schema()._schema
    item_type: Any = schema.get_type("Item")
    definition = item_type.extensions.get(STRAWBERRY_DEFINITION)
    attributes(api, definition, ["origin", "is_type_of"])
    assert definition.origin is Item, api
    plain = item_type.fields["name"]
    field = plain.extensions.get(STRAWBERRY_DEFINITION)
    assert isinstance(field, StrawberryField), f"{api}: no StrawberryField on a graphql-core field"
    attributes(
        "strawberry StrawberryField",
        field,
        ["base_resolver", "extensions", "permission_classes", "arguments", "python_name"],
    )
    attributes("strawberry StrawberryField", field, ["default_resolver", "metadata"])
    assert getattr(plain.resolve, "_is_default", False), (
        "strawberry: a field without a resolver is no longer marked _is_default"
    )
    resolved = item_type.fields["loud"]
    assert not getattr(resolved.resolve, "_is_default", False), api
    assert "gateway.fast_getter" in resolved.extensions[STRAWBERRY_DEFINITION].metadata, (
        "strawberry: field metadata no longer reaches the graphql-core field"
    )


@relies_on("strawberry StrawberryResolver attributes (direct root fields)")
def _resolver_attributes() -> None:
    schema = small_schema()
    query_type: Any = schema._schema.query_type
    field = query_type.fields["item"].extensions[STRAWBERRY_DEFINITION]
    attributes(
        "strawberry StrawberryResolver",
        field.base_resolver,
        ["is_async", "root_parameter", "parent_parameter", "wrapped_func"],
    )
    attributes(
        "strawberry StrawberryResolver", field.base_resolver, ["info_parameter", "self_parameter"]
    )
    api = "strawberry Schema.schema_converter._get_field_exception_handlers(field)"
    parameters(api, schema.schema_converter._get_field_exception_handlers, ["field"])
    assert schema.config.name_converter.get_graphql_name(field.arguments[0]) == "name"
    parameters("strawberry Info(_raw_info, _field)", schema.config.info_class, ["_raw_info"])
    keywords("strawberry Info(_raw_info, _field)", schema.config.info_class, ["_field"])
    assert StrawberryOptional(int).of_type is int, "strawberry StrawberryOptional.of_type"
    assert StrawberryMaybe is not None
    # The direct path gives what Strawberry's wrapper gives.
    direct = DirectRootFields(schema)
    assert {"item", "items"} <= set(direct.names), "strawberry: direct root fields found none"


@relies_on("strawberry Info._raw_info (field_nodes, fragments: the look-ahead)")
def _raw_info() -> None:
    seen: list[Any] = []

    @strawberry.type
    class Looking:
        @strawberry.field
        def me(self, info: strawberry.Info) -> str:
            seen.append(info._raw_info)
            return "me"

    result = strawberry.Schema(query=Looking).execute_sync("{ me }")
    assert result.errors is None
    attributes("strawberry Info._raw_info", seen[0], ["field_nodes", "fragments"])


@relies_on("strawberry AsyncWebSocketAdapter(view): iter_json, send_json, close")
def _socket_adapter() -> None:
    api = "strawberry AsyncWebSocketAdapter"
    parameters(api, AsyncWebSocketAdapter.__init__, ["view"])
    assert AsyncWebSocketAdapter.__abstractmethods__ == {"iter_json", "send_json", "close"}, (
        f"{api}: abstract methods are now {sorted(AsyncWebSocketAdapter.__abstractmethods__)}"
    )
    parameters(api + ".iter_json", AsyncWebSocketAdapter.iter_json, [])
    keywords(api + ".iter_json", AsyncWebSocketAdapter.iter_json, ["ignore_parsing_errors"])


@relies_on("strawberry BaseGraphQLTransportWSHandler / BaseGraphQLWSHandler(view, ..., schema)")
def _socket_handlers() -> None:
    parameters(
        "strawberry BaseGraphQLTransportWSHandler",
        BaseGraphQLTransportWSHandler.__init__,
        ["view", "websocket", "context", "root_value", "schema", "connection_init_wait_timeout"],
    )
    keywords(
        "strawberry BaseGraphQLTransportWSHandler",
        BaseGraphQLTransportWSHandler.__init__,
        ["max_subscriptions_per_connection"],
    )
    parameters(
        "strawberry BaseGraphQLWSHandler",
        BaseGraphQLWSHandler.__init__,
        ["view", "websocket", "context", "root_value", "schema", "keep_alive"],
    )
    keywords(
        "strawberry BaseGraphQLWSHandler",
        BaseGraphQLWSHandler.__init__,
        ["keep_alive_interval", "max_subscriptions_per_connection"],
    )
    # What they call on the "view" and the "schema" that resolvers/ws.py gives them.
    calls = {BaseGraphQLTransportWSHandler: "stream", BaseGraphQLWSHandler: "subscribe"}
    for handler, method in calls.items():
        source = inspect.getsource(handler)
        assert "self.view.on_ws_connect(self.context)" in source, f"strawberry {handler.__name__}"
        assert f"self.schema.{method}(" in source, (
            f"strawberry {handler.__name__} no longer calls schema.{method}"
        )


@relies_on("strawberry Schema.execution_context_class, extensions, on_execute (standard engine)")
def _standard_engine() -> None:
    api = "strawberry Schema (standard engine)"
    schema = small_schema()
    attributes(api, schema, ["execution_context_class", "extensions"])
    assert "on_execute" in vars(SchemaExtension), api
    standard = StandardExecution(schema, hide_suggestions=True)

    async def run() -> None:
        class Context:
            memo: Any = None

        def prepared(query: str) -> Prepared:
            return Prepared(parse(query), (), None, {}, {})

        query = "subscription($n: Int!) { ticks(n: $n) }"
        refused = await standard.subscribe(query, prepared(query), {"n": -1}, None, Context())
        assert isinstance(refused, list), f"{api}: an error before the stream starts is no list"
        assert "must not be negative" in refused[0].message
        stream = await standard.subscribe(query, prepared(query), {"n": 2}, None, Context())
        assert not isinstance(stream, list)
        assert [r.data async for r in stream] == [{"ticks": 0}, {"ticks": 1}]
        # In production the standard engine's requests carry no suggestions either.
        query = "query($i: Int!) { items(first: $i) { name } }"
        result = await standard.execute(query, prepared(query), {"i": "x"}, None, Context())
        assert result.errors
        assert "Did you mean" not in result.errors[0].message

    asyncio.run(run())


# -- Sanic ---------------------------------------------------------------------------


@relies_on("sanic Sanic._websocket_handler(handler, request, *, subprotocols=)")
def _websocket_handler() -> None:
    api = "sanic Sanic._websocket_handler"
    parameters(api, Sanic._websocket_handler, ["handler", "request"])
    keywords(api, Sanic._websocket_handler, ["subprotocols"])
    parameters("sanic Sanic.enable_websocket", Sanic.enable_websocket, ["enable"])


@relies_on("sanic handler.is_websocket (a handler that may return no response)")
def _is_websocket() -> None:
    source = inspect.getsource(Sanic.handle_request)
    assert 'hasattr(handler, "is_websocket")' in source, (
        "sanic Sanic.handle_request no longer lets an is_websocket handler return no response "
        "(resolvers/http.py serves HTTP and WebSocket on one route this way)"
    )


@relies_on("sanic sanic.server.websockets.impl.WebsocketImplProtocol: recv, send, close")
def _websocket_protocol() -> None:
    from sanic.server.websockets.impl import WebsocketImplProtocol

    api = "sanic WebsocketImplProtocol"
    attributes(api, WebsocketImplProtocol, ["recv", "send", "close", "subprotocol"])
    parameters(api + ".close", WebsocketImplProtocol.close, ["code", "reason"])


@pytest.mark.parametrize("api", list(CHECKS), ids=list(CHECKS))
def test_the_engine_finds_what_it_relies_on(api: str) -> None:
    CHECKS[api]()


@pytest.mark.parametrize("name", PINNED)
def test_installed_versions_are_the_pinned_ones(name: str) -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pins = [
        found.group(1)
        for spec in dependencies
        if (found := re.fullmatch(rf"{re.escape(name)}(?:\[[^\]]*\])?\s*==\s*([^\s,;]+)", spec))
    ]
    if not pins:
        pytest.skip(f"pyproject.toml does not pin {name} with == yet")
    assert version(name) == pins[0], (
        f"{name} {version(name)} is installed, pyproject.toml pins {pins[0]}: run "
        "ops/scripts/install, or check this file's APIs before moving the pin"
    )
