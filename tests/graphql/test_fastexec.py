"""``FastExecutor`` gives exactly what graphql-core's standard executor gives.

The same documents run through both executors (Strawberry's standard execution
context and ``resolvers.engine.fastexec.FastExecutor``) and the results must be equal:
data, and every error's message, path and locations. A small schema made for
this covers what the plain path must get right (null propagation through
non-null fields and list items, scalar coercion errors, enums, fallbacks to the
real resolver, awaitables below plain fields, abstract types, aliases,
fragments, ``@skip``/``@include``); the gateway's own schema is then compared on
real documents over HTTP. Each check also asserts the plain path really ran.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from enum import Enum
from typing import Any

import httpx
import pytest
import strawberry
from graphql import ExecutionResult, execute, parse, validate
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from resolvers.engine import NOT_LOADED, Runner, fast_field
from resolvers.engine.fast import FastExecution
from resolvers.engine.fastexec import FastExecutor
from resolvers.types import global_id
from tests.conftest import GRAPHQL_ENGINE
from tests.factories import make_customer, make_order, make_product

pytestmark = pytest.mark.skipif(
    GRAPHQL_ENGINE != "fast",
    reason="the fast engine's internals; this pass runs the standard engine",
)


class Counting(FastExecutor):
    """A FastExecutor that counts how much of the plain path it used: objects built
    whole, plain fields read one by one, and fallbacks to the general path (the
    product class keeps no counters: it only runs the plain path)."""

    runs: list[Counting] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.built_objects = self.fast_fields = self.fallbacks = 0
        super().__init__(*args, **kwargs)
        Counting.runs.append(self)

    def _plan(self, *args: Any) -> Any:
        plan = super()._plan(*args)
        if plan is None or plan.build is None:
            return plan
        build = plan.build

        def counted(value: Any) -> Any:
            try:
                built = build(value)
            except Exception:
                self.fallbacks += 1
                raise
            self.built_objects += 1
            return built

        return replace(plan, build=counted)

    def _fast(self, *args: Any) -> Any:
        try:
            value = super()._fast(*args)
        except Exception:
            self.fallbacks += 1
            raise
        self.fast_fields += 1
        return value


@strawberry.enum
class Kind(Enum):
    BIG = "big"
    SMALL = "small"


def prefetched(attribute: str) -> dict[str, Any]:
    return fast_field(lambda obj: getattr(obj, attribute))


def broken(_obj: Any) -> Any:
    raise RuntimeError("getter failed")


async def later(value: Any) -> Any:
    await asyncio.sleep(0)
    return value


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Thing(Named):
    name: str
    count: int
    note: str | None
    tags: list[str]
    kind: Kind
    pre_child: strawberry.Private[Any] = NOT_LOADED
    pre_children: strawberry.Private[Any] = NOT_LOADED
    pre_maybe: strawberry.Private[Any] = NOT_LOADED
    lazy_child: strawberry.Private[Any] = None
    fail_slow: strawberry.Private[bool] = False

    @strawberry.field(metadata=prefetched("pre_child"))
    def child(self) -> Thing | None:
        """Prefetched, or else an awaitable (an async load)."""
        if self.pre_child is not NOT_LOADED:
            return self.pre_child  # type: ignore[no-any-return]
        return later(self.lazy_child)  # type: ignore[return-value]

    @strawberry.field(metadata=prefetched("pre_children"))
    def children(self) -> list[Thing]:
        if self.pre_children is not NOT_LOADED:
            return self.pre_children  # type: ignore[no-any-return]
        return later([])  # type: ignore[return-value]

    @strawberry.field(metadata=prefetched("pre_maybe"))
    def maybe_children(self) -> list[Thing | None] | None:
        if self.pre_maybe is not NOT_LOADED:
            return self.pre_maybe  # type: ignore[no-any-return]
        return None

    @strawberry.field(metadata=fast_field(broken))
    def checked(self) -> str:
        """Its getter always fails: the real resolver answers."""
        return f"checked {self.name}"

    @strawberry.field(metadata=prefetched("pre_child"))
    def strict_child(self) -> Thing:
        return self.pre_child  # type: ignore[no-any-return]

    @strawberry.field
    def strict_sync(self) -> str:
        if self.fail_slow:
            raise ValueError(f"strict sync failed for {self.name}")
        return f"sync {self.name}"

    @strawberry.field
    async def slow(self) -> str | None:
        if self.fail_slow:
            raise ValueError(f"slow failed for {self.name}")
        return f"slow {self.name}"

    @strawberry.field
    async def strict_slow(self) -> str:
        if self.fail_slow:
            raise ValueError(f"strict slow failed for {self.name}")
        return f"strict {self.name}"


def thing(name: str, **kw: Any) -> Thing:
    fields = {"count": 1, "note": None, "tags": ["t"], "kind": Kind.SMALL, **kw}
    private = {k: fields.pop(k) for k in list(fields) if k.startswith(("pre_", "lazy_", "fail_"))}
    obj = Thing(name=name, **fields)
    for key, value in private.items():
        setattr(obj, key, value)
    return obj


def world() -> list[Thing | None]:
    leaf = thing("leaf", count=7, tags=["a", "b"], kind=Kind.BIG)
    return [
        thing("plain", note="n", pre_child=leaf, pre_children=[leaf, leaf], pre_maybe=[leaf, None]),
        thing("overflow", count=2**40, pre_child=None, pre_children=[]),
        thing("lazy", lazy_child=leaf, pre_children=[thing("deep", lazy_child=leaf)]),
        thing("hole", pre_child=leaf, pre_children=[leaf, None]),
        thing("bad tags", tags=["x", None], pre_children=[]),
        thing("failing", fail_slow=True, pre_children=[leaf]),
        thing("bad kind", kind="medium", pre_children=[]),
        thing("bad count", count="12", pre_children=[]),
        thing("no children", pre_child=None, pre_children=None),
        thing("failing child", pre_child=leaf, pre_children=[leaf, thing("f", fail_slow=True)]),
        None,
    ]


@strawberry.type
class Query:
    @strawberry.field
    async def things(self) -> list[Thing | None]:
        return world()

    @strawberry.field
    def strict_things(self, upto: int = 1) -> list[Thing]:
        return [t for t in world()[:upto] if t is not None]

    @strawberry.field
    def named(self) -> list[Named]:
        return [t for t in world()[:3] if t is not None]

    @strawberry.field
    async def first(self, name: str = "plain") -> Thing | None:
        return next((t for t in world() if t is not None and t.name == name), None)

    @strawberry.field
    async def strict_first(self, name: str = "plain") -> Thing:
        if name == "boom":
            raise ValueError("no first thing today")
        return next((t for t in world() if t is not None and t.name == name), None)  # type: ignore[return-value]


SCHEMA = strawberry.Schema(query=Query)

ALL = (
    "name count note tags kind checked slow child { name count } children { name } "
    "maybeChildren { name }"
)
DOCUMENTS: list[tuple[str, dict[str, Any] | None]] = [
    ("{ things { " + ALL + " } }", None),
    ("{ things { name strictSlow } }", None),
    ("{ things { name checked count kind tags child { name checked } } }", None),
    (
        "{ things { __typename name count kind tags note child { name count } "
        "children { name count } maybeChildren { name } strictChild { kind } } }",
        None,
    ),
    ("{ things { name strictChild { name } } }", None),
    ("{ things { name children { name strictSync } } }", None),
    ("{ things { name maybeChildren { name strictSync } } }", None),
    ("{ things { name children { name child { name count kind } } } }", None),
    ("{ things { name maybeChildren { name tags } } }", None),
    ("{ strictThings(upto: 1) { name count child { name } } }", None),
    ("{ strictThings(upto: 3) { name count } }", None),  # overflow nulls the whole list
    ("{ strictThings(upto: 2) { name children { name strictSlow } } }", None),
    (
        "{ a: things { ...F __typename } b: things { n: name } } "
        "fragment F on Thing { n: name child { ...G } children { ...G } } "
        "fragment G on Thing { name count __typename }",
        None,
    ),
    ("{ things { name ... on Thing { count } ... on Named { name } } }", None),
    ("{ named { __typename name ... on Thing { count child { name } } } }", None),
    (
        "query($x: Boolean!) { things { name count @include(if: $x) "
        "child @skip(if: $x) { name } children { name @skip(if: $x) count } } }",
        {"x": True},
    ),
    (
        "query($x: Boolean!) { things { name count @include(if: $x) "
        "child @skip(if: $x) { name } children { name @skip(if: $x) count } } }",
        {"x": False},
    ),
]


def run(query: str, variables: dict[str, Any] | None, executor: type) -> Any:
    document = parse(query)
    assert not validate(SCHEMA._schema, document)
    return execute(SCHEMA._schema, document, variable_values=variables, executor_class=executor)


async def outcome(query: str, variables: dict[str, Any] | None, executor: type) -> Any:
    result: Any = run(query, variables, executor)
    if not isinstance(result, ExecutionResult):
        result = await result
    errors = sorted(
        (str(e.path), e.message, [(loc.line, loc.column) for loc in e.locations or []])
        for e in result.errors or []
    )
    return result.data, errors


@pytest.mark.parametrize(("query", "variables"), DOCUMENTS)
async def test_the_plain_path_matches_the_standard_executor(
    query: str, variables: dict[str, Any] | None
) -> None:
    Counting.runs.clear()
    expected = await outcome(query, variables, StrawberryGraphQLCoreExecutionContext)
    got = await outcome(query, variables, Counting)
    assert got == expected
    [run_] = Counting.runs
    assert run_.built_objects + run_.fast_fields > 0, "the plain path never ran"


# Documents of one root field returning an object: ``execute_operation`` takes its
# shorter way for them when plans are shared (with other documents for contrast).
ONE_ROOT_FIELD: list[tuple[str, dict[str, Any] | None]] = [
    ("{ first { name count kind tags note child { name count } children { name } } }", None),
    ('{ first(name: "lazy") { name child { name } children { name child { name } } } }', None),
    ('{ first(name: "bad tags") { name tags } }', None),
    ('{ first(name: "overflow") { name count } }', None),
    ('{ first(name: "nobody") { name } }', None),
    ('{ first(name: "failing") { name slow strictSlow } }', None),
    ('{ strictFirst(name: "nobody") { name } }', None),
    ('{ strictFirst(name: "boom") { name } }', None),
    ('{ strictFirst(name: "bad tags") { name tags } }', None),
    ("query($n: String!) { first(name: $n) { name count } }", {"n": "hole"}),
    ("{ a: first { n: name ...F } } fragment F on Thing { count checked }", None),
    ("{ ...Q } fragment Q on Query { first { name } }", None),
    ("{ first { name } strictFirst { count } }", None),
    ("{ __typename }", None),
    ("{ things { name } }", None),
]


async def shared_outcome(
    query: str, variables: dict[str, Any] | None, plans: dict[Any, Any]
) -> Any:
    document = parse(query)
    assert not validate(SCHEMA._schema, document)
    executor = FastExecutor.for_document(
        SCHEMA._schema, document, plans, None, variables, None, False
    )
    if isinstance(executor, list):
        result: Any = ExecutionResult(data=None, errors=executor)
    else:
        result = executor.execute_operation()
        if not isinstance(result, ExecutionResult):
            result = await result
    errors = sorted(
        (str(e.path), e.message, [(loc.line, loc.column) for loc in e.locations or []])
        for e in result.errors or []
    )
    return result.data, errors


@pytest.mark.parametrize(("query", "variables"), ONE_ROOT_FIELD)
async def test_one_root_field_with_shared_plans_matches_the_standard_executor(
    query: str, variables: dict[str, Any] | None
) -> None:
    """The first request builds the executor in full and keeps what the document fixes;
    the second makes it from what was kept. Both answer as graphql-core does."""
    expected = await outcome(query, variables, StrawberryGraphQLCoreExecutionContext)
    plans: dict[Any, Any] = {}
    assert await shared_outcome(query, variables, plans) == expected
    assert await shared_outcome(query, variables, plans) == expected
    shorter = [found for key, found in plans.items() if key[0] == "root"]
    assert (shorter == [None]) == (query == "{ first { name } strictFirst { count } }"), shorter


async def test_variables_are_coerced_anew_for_a_document_kept() -> None:
    query = "query($n: String!) { first(name: $n) { name count } }"
    plans: dict[Any, Any] = {}
    for variables in ({"n": "hole"}, {"n": 5}, {}, {"n": "plain"}, None):
        expected = await outcome(query, variables, StrawberryGraphQLCoreExecutionContext)
        assert await shared_outcome(query, variables, plans) == expected, variables


async def test_the_documents_cover_fallbacks_and_errors() -> None:
    """The corpus is only a good check if it makes the plain path give up somewhere."""
    Counting.runs.clear()
    data, errors = await outcome(DOCUMENTS[0][0], None, Counting)
    assert Counting.runs[0].fallbacks > 0
    messages = " ".join(message for _, message, _ in errors)
    for expected in (
        "Int cannot represent",
        "Cannot return null for non-nullable field Thing.tags.",
        "Cannot return null for non-nullable field Thing.children.",
        "Enum 'Kind'",
        "slow failed",
    ):
        assert expected in messages, messages
    assert data["things"][0]["checked"] == "checked plain"
    assert data["things"][2]["child"] == {"name": "leaf", "count": 7}  # awaited below a plain field
    assert data["things"][7]["count"] == 12  # "12" is no int: coerced by the scalar, as usual


# -- the gateway's schema, over HTTP -------------------------------------------------


@pytest.fixture
def fast(server: Any) -> FastExecution:
    runner: Runner | None = server.app.ctx.graphql
    assert runner is not None
    assert isinstance(runner.execution, FastExecution)
    return runner.execution


async def both(
    fast: FastExecution, client: httpx.AsyncClient, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    """The standard path (Strawberry's resolver wrappers, graphql-core's executor) and ours.

    Ours runs twice: the second request finds the plans the first made for the
    document (when it has no directives) and must still give the same answer.
    """
    bodies = []
    runs = (
        (StrawberryGraphQLCoreExecutionContext, False),
        (FastExecutor, True),
        (FastExecutor, True),
    )
    for executor, direct in runs:
        fast.executor_class = executor
        fast.direct.use(direct=direct)
        try:
            r = await client.post("/graphql", json={"query": query, "variables": variables})
        finally:
            fast.executor_class = FastExecutor
            fast.direct.use(direct=True)
        assert r.status_code == 200, r.text
        bodies.append(r.json())
    standard, fast, again = bodies
    assert fast == standard
    assert again == standard
    return dict(fast)


GATEWAY_DOCUMENTS: list[Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]] = [
    lambda w: (
        'query($n: Int!) { orders(first: $n, orderBy: "id desc") { totalCount '
        "pageInfo { hasNextPage endCursor } edges { cursor node { id __typename databaseId "
        "status totalCents createdAt customer { id name email } items { quantity "
        "unitPriceCents product { id name sku priceCents deletedAt } } } } } }",
        {"n": 3},
    ),
    lambda w: (
        "{ a: orders(first: 5) { nodes { ...O } } b: orders(first: 2) { nodes { st: status } } } "
        "fragment O on Order { databaseId c: customer { n: name } items { ...I } } "
        "fragment I on OrderItem { quantity product { name __typename } }",
        {},
    ),
    lambda w: (
        "query($id: ID!) { node(id: $id) { __typename id ... on Order { status "
        "customer { name } items { product { name } } } } }",
        {"id": w["order_gid"]},
    ),
    lambda w: (
        "query($id: ID!) { customer(id: $id) { name orders(first: 3) { databaseId "
        "items { quantity product { name } } customer { email } } } }",
        {"id": str(w["customer"])},
    ),
    lambda w: (
        "query($x: Boolean!) { orders(first: 4) { nodes { databaseId note @include(if: $x) "
        "customer @skip(if: $x) { name } items { product { name @include(if: $x) } } } } }",
        {"x": True},
    ),
    lambda w: (
        "query($x: Boolean!) { orders(first: 4) { nodes { databaseId note @include(if: $x) "
        "customer @skip(if: $x) { name } items { product { name @include(if: $x) } } } } }",
        {"x": False},
    ),
    lambda w: (
        "query($id: ID!) { order(id: $id) { databaseId status customer { name } "
        "items { product { sku } } } }",
        {"id": str(w["order"])},
    ),
    lambda w: ('{ order(id: "999999") { databaseId } }', {}),
    lambda w: ("{ products(first: 3, showDeleted: true) { nodes { name deletedAt } } }", {}),
    lambda w: ('{ customers(first: 2, filter: "name = \\"nobody\\"") { totalCount } }', {}),
    lambda w: ('{ orders(first: 2, filter: "bogus = 1") { totalCount } }', {}),
    lambda w: ('{ salesStats(granularity: "day") { start orderCount revenueCents } }', {}),
    lambda w: ('{ salesStats(granularity: "fortnight") { start } }', {}),
    lambda w: ('{ product(id: "Q3VzdG9tZXI6MQ==") { name } }', {}),
]


@pytest.mark.parametrize("document", range(len(GATEWAY_DOCUMENTS)))
async def test_the_gateway_schema_reads_the_same_through_both_executors(
    tenant: Any, fast: FastExecution, document: int
) -> None:
    customer = await make_customer(tenant.owner)
    products = [await make_product(tenant.owner) for _ in range(3)]
    order = None
    for n in range(4):
        order = await make_order(
            tenant.owner, customer["id"], [(p["id"], n + 1) for p in products[: n + 1]]
        )
    assert order is not None
    w = {
        "customer": customer["id"],
        "order": order["id"],
        "order_gid": global_id("Order", order["id"]),
    }
    query, variables = GATEWAY_DOCUMENTS[document](w)
    body = await both(fast, tenant.client, query, variables)
    assert body.get("data") is not None or body.get("errors"), body


def test_the_root_fields_that_skip_strawberrys_wrapper(fast: FastExecution) -> None:
    # Mutations (input objects) and fields with enum or list arguments keep the wrapper.
    assert set(fast.direct.names) >= {"order", "orders", "customer", "customers", "node"}


async def test_a_document_planned_once_serves_other_variables(
    tenant: Any, fast: FastExecution
) -> None:
    customer = await make_customer(tenant.owner)
    product = await make_product(tenant.owner)
    for n in range(3):
        await make_order(tenant.owner, customer["id"], [(product["id"], n + 1)])
    query = (
        "query($n: Int!, $after: String) { orders(first: $n, after: $after) { "
        "pageInfo { endCursor } nodes { databaseId items { quantity product { name } } } } }"
    )
    first = await both(fast, tenant.client, query, {"n": 1, "after": None})
    cursor = first["data"]["orders"]["pageInfo"]["endCursor"]
    for variables in ({"n": 3, "after": None}, {"n": 2, "after": cursor}, {"n": 0}):
        await both(fast, tenant.client, query, variables)
