"""The fast engine's shortcuts for a kept document's variables and root arguments
give exactly what graphql-core gives.

``FastExecutor.for_document`` coerces the variables of built-in scalar types itself
(``resolvers.engine.fastexec._coerce_scalar_variables``), and reads the root field's
arguments straight from them when each is a variable. Every value here runs
through both: the same ``VariableValues`` as graphql-core's ``get_variable_values``
(or no answer, and then graphql-core's), and the same result (data, and every
error's message, path and locations) as graphql-core's standard execution, for
right, wrong-typed, missing, null, extra and too-large values.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
import strawberry
from graphql import ExecutionResult, OperationDefinitionNode, execute, parse, validate
from graphql.execution.values import VariableValueSource, get_variable_values
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from resolvers.engine.fastexec import FastExecutor, _coerce_scalar_variables, _scalar_variables
from tests.conftest import GRAPHQL_ENGINE

pytestmark = pytest.mark.skipif(
    GRAPHQL_ENGINE != "fast",
    reason="the fast engine's internals; this pass runs the standard engine",
)


@strawberry.type
class Echo:
    text: str
    length: int


def echo(*values: Any) -> Echo:
    text = repr(tuple((type(v).__name__, v) for v in values))
    return Echo(text=text, length=len(text))


@strawberry.type
class Query:
    @strawberry.field
    async def loose(
        self,
        id: strawberry.ID | None = None,
        s: str | None = None,
        i: int | None = None,
        f: float | None = None,
        b: bool | None = None,
    ) -> Echo:
        return echo(id, s, i, f, b)

    @strawberry.field
    async def strict(self, id: strawberry.ID, s: str, i: int, f: float, b: bool) -> Echo:
        return echo(id, s, i, f, b)

    @strawberry.field
    async def defaults(self, i: int = 7, s: str | None = "x") -> Echo:
        return echo(i, s)

    @strawberry.field
    async def needs(self, i: int) -> Echo:
        return echo(i)

    @strawberry.field
    async def later(self, s: str, info: strawberry.Info) -> Echo:
        for _ in range(len(s) % 4):
            await asyncio.sleep(0)
        if s.startswith("fail"):
            raise ValueError(f"{s} failed")
        return echo(s, info.context)

    @strawberry.field
    async def maybe(self, kind: str) -> Echo | None:
        """Nothing, an object, a broken object (a non-null field null) or an error."""
        if kind == "none":
            return None
        if kind == "broken":
            return Echo(text=None, length=2**40)  # type: ignore[arg-type]
        if kind == "error":
            raise ValueError("no echo today")
        return echo(kind)


SCHEMA = strawberry.Schema(query=Query)

LOOSE = (
    "query L($id: ID, $s: String, $i: Int, $f: Float, $b: Boolean) "
    "{ loose(id: $id, s: $s, i: $i, f: $f, b: $b) { text length } }"
)
STRICT = (
    "query S($id: ID!, $s: String!, $i: Int!, $f: Float!, $b: Boolean!) "
    "{ strict(id: $id, s: $s, i: $i, f: $f, b: $b) { text } }"
)
# Non-null variables for nullable arguments, and a nullable one for an argument with a default.
MIXED = "query M($id: ID!, $i: Int) { loose(id: $id) { text } defaults(i: $i) { text } }"
TO_DEFAULTS = "query D($i: Int, $s: String) { defaults(i: $i, s: $s) { text } }"
WITH_DEFAULT = "query W($i: Int = 3) { loose(i: $i) { text } }"  # not built-in only: graphql-core's
# A nullable variable with a default for a non-null argument (null: an argument error).
NEEDS = "query N($i: Int = 3) { needs(i: $i) { text } }"
# Arguments the root field does not take all from variables, or takes through a fragment.
PARTLY = 'query P($i: Int) { x: loose(s: "lit", i: $i) { text } }'
SPREAD = (
    "query F($i: Int, $s: String) { ...Q } "
    "fragment Q on Query { x: defaults(i: $i, s: $s) { text } }"
)
NAMES = ("id", "s", "i", "f", "b")
VALID = {"id": "5", "s": "text", "i": 5, "f": 1.5, "b": True}


class Text(str):
    pass


VALUES: list[Any] = [
    "5",
    "",
    "çà 😀",
    Text("subclass"),
    5,
    0,
    -1,
    2**31 - 1,
    -(2**31),
    2**31,
    -(2**31) - 1,
    2**53,
    2**53 + 1,
    10**18 - 1,
    10**18,
    10**30,
    10**5000,  # graphql-core raises ValueError (repr of it in a message): so must we
    5.0,
    5.5,
    -0.0,
    1e300,
    math.inf,
    -math.inf,
    math.nan,
    True,
    False,
    None,
    [1],
    ["a"],
    {"a": 1},
]


def cases() -> list[tuple[str, dict[str, Any] | None]]:
    found: list[tuple[str, dict[str, Any] | None]] = []
    for name in NAMES:
        for value in VALUES:
            found.append((LOOSE, {name: value}))
            found.append((STRICT, {**VALID, name: value}))
        strict = dict(VALID)
        del strict[name]
        found.append((STRICT, strict))
    for value in VALUES:
        found += [(MIXED, {"id": value, "i": value}), (TO_DEFAULTS, {"i": value, "s": value})]
        found += [(query, {"i": value}) for query in (WITH_DEFAULT, NEEDS, PARTLY, SPREAD)]
        found.append((SPREAD, {"s": value}))
    found += [
        (LOOSE, None),
        (LOOSE, {}),
        (LOOSE, {**VALID, "extra": [1, 2], "other": None}),
        (STRICT, VALID),
        (STRICT, {**VALID, "extra": 1}),
        (STRICT, None),
        (MIXED, {"id": "1"}),
        (TO_DEFAULTS, {}),
        (WITH_DEFAULT, {}),
        (NEEDS, {}),
        (NEEDS, None),
        (PARTLY, {}),
        (SPREAD, {}),
    ]
    return found


CASES = cases()


def shaped(result: ExecutionResult) -> Any:
    errors = [
        (str(e.path), e.message, [(loc.line, loc.column) for loc in e.locations or []])
        for e in result.errors or []
    ]
    return result.data, errors


async def standard(query: str, variables: dict[str, Any] | None, context: Any = None) -> Any:
    document = parse(query)
    assert not validate(SCHEMA._schema, document)
    try:
        result: Any = execute(
            SCHEMA._schema,
            document,
            context_value=context,
            variable_values=variables,
            executor_class=StrawberryGraphQLCoreExecutionContext,
        )
    except ValueError as error:
        return "raised", str(error)
    if not isinstance(result, ExecutionResult):
        result = await result
    return shaped(result)


async def kept(
    query: str, variables: dict[str, Any] | None, plans: dict[Any, Any], context: Any = None
) -> Any:
    try:
        executor = FastExecutor.for_document(
            SCHEMA._schema, DOCUMENTS[query], plans, context, variables, None, False
        )
    except ValueError as error:
        return "raised", str(error)
    if isinstance(executor, list):
        return shaped(ExecutionResult(data=None, errors=executor))
    result = executor.execute_operation()
    if not isinstance(result, ExecutionResult):
        result = await result
    return shaped(result)


QUERIES = (LOOSE, STRICT, MIXED, TO_DEFAULTS, WITH_DEFAULT, NEEDS, PARTLY, SPREAD)
DOCUMENTS = {query: parse(query) for query in QUERIES}
PLANS: dict[str, dict[Any, Any]] = {query: {} for query in DOCUMENTS}


@pytest.mark.parametrize(("query", "variables"), CASES)
async def test_a_kept_document_answers_as_graphql_core(
    query: str, variables: dict[str, Any] | None
) -> None:
    """The document's plans are kept across all cases: every case after the first
    runs the shortcuts (the first builds the executor in full)."""
    plans = PLANS[query]
    expected = await standard(query, variables)
    assert await kept(query, variables, plans) == expected
    assert await kept(query, variables, plans) == expected
    # The root field's arguments are read from the variables (not for MIXED: two root
    # fields; PARTLY: a literal argument; WITH_DEFAULT: not all of loose's arguments).
    for root in [found for key, found in plans.items() if key[0] == "root"]:  # once it ran
        if query == MIXED:
            assert root is None
        else:
            assert (root[4] is None) == (query in (PARTLY, WITH_DEFAULT)), root  # arguments


def operation(query: str) -> OperationDefinitionNode:
    node = DOCUMENTS[query].definitions[0]
    assert isinstance(node, OperationDefinitionNode)
    return node


@pytest.mark.parametrize(("query", "variables"), CASES)
def test_the_variables_are_graphql_cores_or_left_to_it(
    query: str, variables: dict[str, Any] | None
) -> None:
    op = operation(query)
    plan = _scalar_variables(SCHEMA._schema, op)
    assert (plan is None) == (query in (WITH_DEFAULT, NEEDS))
    if plan is None:
        return
    ours = _coerce_scalar_variables(plan, variables or {})
    try:
        theirs = get_variable_values(SCHEMA._schema, op.variable_definitions, variables or {})
    except ValueError:
        assert ours is None
        return
    if ours is None:
        return  # left to graphql-core (an error, or a value it converts: 5.0 for an Int, ...)
    assert not isinstance(theirs, list), theirs
    assert list(ours.coerced.items()) == list(theirs.coerced.items())
    for name, value in theirs.coerced.items():
        assert type(ours.coerced[name]) is type(value), name
    # The signatures are kept with the document: the same but for the identity of
    # the non-null wrapper graphql-core makes anew each time (it has no equality).
    assert list(map(signature, ours.sources.values())) == list(
        map(signature, theirs.sources.values())
    )
    for name, source in theirs.sources.items():
        assert ours.sources[name].value is source.value, name


def signature(source: VariableValueSource) -> tuple[Any, ...]:
    name, type_, default, default_value = source.signature
    return name, type(type_), str(type_), getattr(type_, "of_type", type_), default, default_value


def test_valid_values_take_the_shortcut() -> None:
    plan = _scalar_variables(SCHEMA._schema, operation(STRICT))
    assert plan is not None
    for values in (VALID, {**VALID, "id": 12, "f": 3}, {**VALID, "extra": object()}):
        assert _coerce_scalar_variables(plan, values) is not None, values


async def test_the_root_object_built_by_its_kept_plan_answers_as_graphql_core() -> None:
    """What builds the root field's object is kept with the document once worked out;
    whatever the resolver gives first (nothing, an error), the later ones answer the same."""
    query = "query($k: String!) { maybe(kind: $k) { text length } }"
    DOCUMENTS[query] = parse(query)
    kinds = ["none", "error", "a", "broken", "none", "b", "error", "broken", "c"]
    for first in ("none", "error", "a", "broken"):
        plans: dict[Any, Any] = {}
        for kind in [first, *kinds]:
            expected = await standard(query, {"k": kind})
            assert await kept(query, {"k": kind}, plans) == expected, (first, kind)
        assert any(key[0] == "root build" and found for key, found in plans.items())


async def test_concurrent_requests_of_a_kept_document_keep_their_own_state() -> None:
    """Executors made from what the document keeps share nothing a request changes:
    requests interleaved at their awaits get their own context, variables and errors."""
    query = "query($s: String!) { later(s: $s) { text } }"
    DOCUMENTS[query] = parse(query)
    plans: dict[Any, Any] = {}
    await kept(query, {"s": "first"}, plans)
    cases = [({"s": f"{word}{n}"}, n) for n in range(40) for word in ("ok", "fail")]
    cases += [({"s": n}, n) for n in range(5)] + [({}, "missing")]
    expected = [await standard(query, variables, context) for variables, context in cases]
    got = await asyncio.gather(
        *(kept(query, variables, plans, context) for variables, context in cases)
    )
    assert got == expected
