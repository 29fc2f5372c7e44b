"""The GraphQL schema: the same ``db/`` functions, Principal and error codes as REST.

Queries read through the list/get functions REST uses (same AIP-160 ``filter``
grammar, ``orderBy``, keyset cursors: an edge's ``cursor`` is a REST
``page_token``); mutations call the same writes. Expected failures carry REST's
``code`` in ``extensions.code`` (see ``resolvers.errors.format_error``). Mutations
are in ``resolvers.mutations``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any, Generic, TypeVar

import strawberry
from graphql import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from db import stats
from db.catalog import CATALOG, Catalog
from db.declare import Resource
from db.errors import NotFound
from db.listing import ListQuery
from db.sql import one_connection
from gateway.settings import Settings
from resolvers.activity import ActivityQuery
from resolvers.audit import AuditQuery
from resolvers.limits import DocumentLimits, limits_rule
from resolvers.mutations import Mutation
from resolvers.positions import STREAM_POSITION, StreamPosition
from resolvers.prefetch import ask, connection_ask, look_ahead, prefetch
from resolvers.subscriptions import Subscription
from resolvers.types import (
    SCALARS,
    TYPES,
    Info,
    Node,
    OrderItem,
    PageInfo,
    SalesBucket,
    parse_global_id,
)

T = TypeVar("T")


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    nodes: list[T]
    page_info: PageInfo
    total_count: int | None = strawberry.field(
        description="Every matching row; counted only when asked for."
    )


async def _connection(
    info: Info,
    res: Resource,
    first: int | None,
    after: str | None,
    filter: str | None,
    order_by: str | None,
    **options: Any,
) -> Connection[Any]:
    ctx = info.context
    node_type = TYPES[res.name]
    asked = look_ahead(info, (node_type, "connection"), partial(connection_ask, node_type))
    query = ListQuery(filter=filter, order_by=order_by, page_size=first, page_token=after)
    async with one_connection():  # the page and what is prefetched for it: one connection
        page = await res.list_rows(
            ctx.principal,
            query,
            default_page_size=ctx.page_size_default,
            max_page_size=ctx.page_size_max,
            cursors=True,
            with_total=asked.with_total,
            fields=asked.nodes.columns,
            **options,
        )
        make = node_type.from_row
        nodes = [make(row, owned=True) for row in page.items]
        await prefetch(ctx.principal, node_type, nodes, asked.nodes)
    cursors = page.cursors or []
    return Connection(
        edges=[Edge(cursor=c, node=n) for c, n in zip(cursors, nodes, strict=True)],
        nodes=nodes,
        page_info=PageInfo(
            has_next_page=page.next_page_token is not None,
            end_cursor=cursors[-1] if cursors else None,
        ),
        total_count=page.total_size,
    )


def _typed(function: Callable[..., Any], **annotations: Any) -> Callable[..., Any]:
    """Strawberry reads argument types from annotations: give generated resolvers real ones."""
    function.__annotations__ = annotations
    return function


def _get_field(res: Resource) -> Any:
    node_type = TYPES[res.name]
    ask_node = partial(ask, node_type)

    async def get(info: Info, id: strawberry.ID) -> Any:
        _, ident = parse_global_id(id, res.type_name)
        asked = look_ahead(info, node_type, ask_node)
        principal = info.context.principal
        if not asked.relations:  # one read: no connection to hold, nothing to prefetch
            return node_type.from_row(await res.get(principal, ident, asked.columns), owned=True)
        async with one_connection():  # the object and its relations: one connection
            row = await res.get(principal, ident, asked.columns)
            obj = node_type.from_row(row, owned=True)
            await prefetch(principal, node_type, [obj], asked)
        return obj

    return strawberry.field(
        resolver=_typed(get, info=Info, id=strawberry.ID, **{"return": node_type}),
        description=f"One {res.label} by its global id (or its databaseId).",
    )


def _list_field(res: Resource) -> Any:
    options = {o.name: bool for o in res.list_options}

    async def resolve(
        info: Info,
        first: int | None = None,
        after: str | None = None,
        filter: str | None = None,
        order_by: str | None = None,
        **flags: bool,
    ) -> Connection[Any]:
        return await _connection(info, res, first, after, filter, order_by, **flags)

    # Strawberry reads the arguments from the signature: the list options join it.
    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter("info", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Info),
        inspect.Parameter("first", keyword, default=None, annotation=int | None),
        inspect.Parameter("after", keyword, default=None, annotation=str | None),
        inspect.Parameter("filter", keyword, default=None, annotation=str | None),
        inspect.Parameter("order_by", keyword, default=None, annotation=str | None),
        *(inspect.Parameter(n, keyword, default=False, annotation=bool) for n in options),
    ]
    returns = Connection[TYPES[res.name]]  # type: ignore[valid-type, name-defined]
    resolve.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    resolve.__annotations__ = {p.name: p.annotation for p in params} | {"return": returns}
    return strawberry.field(
        resolver=resolve,
        description=f"{res.plural.replace('_', ' ').capitalize()}: AIP-160 filter, orderBy, "
        "keyset pages.",
    )


def _query_fields(catalog: Catalog) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for res in catalog.resources:
        fields[res.name] = _get_field(res)
        fields[res.plural] = _list_field(res)
    return fields


@strawberry.type
class BaseQuery:
    @strawberry.field
    async def node(self, info: Info, id: strawberry.ID) -> Node:
        type_name, ident = parse_global_id(id)
        res = CATALOG.by_type.get(type_name)
        if res is None:
            raise NotFound(f"no object with id {id!r}")
        return TYPES[res.name].from_row(await res.get(info.context.principal, ident))  # type: ignore[no-any-return]

    @strawberry.field
    async def sales_stats(
        self,
        info: Info,
        start: datetime | None = None,
        end: datetime | None = None,
        granularity: str = "day",
    ) -> list[SalesBucket]:
        rows = await stats.sales_stats(
            info.context.principal, start=start, end=end, granularity=granularity
        )
        return [
            SalesBucket(
                start=r["start"], order_count=r["order_count"], revenue_cents=r["revenue_cents"]
            )
            for r in rows
        ]


Query = merge_types(
    "Query",
    (
        strawberry.type(type("ResourceQuery", (), _query_fields(CATALOG))),
        BaseQuery,
        AuditQuery,
        ActivityQuery,
    ),
)


def limit_rules(settings: Settings) -> list[type[ASTValidationRule]]:
    """The validation rules that enforce ``settings``' limits, built once per schema:
    validation caches key on the rule classes (classes built per request never hit)."""
    rules: list[type[ASTValidationRule]] = [limits_rule(DocumentLimits.from_settings(settings))]
    if not settings.introspection_enabled:
        rules.append(NoSchemaIntrospectionCustomRule)
    return rules


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The schema with the limits of ``settings`` (defaults when None), for
    ``schema.execute`` (the doors run documents through ``resolvers.engine``)."""
    settings = settings or Settings()
    rules = limit_rules(settings)

    class Limits(AddValidationRules):
        def __init__(self) -> None:
            super().__init__(rules)

    max_tokens = settings.graphql_max_tokens
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        Limits,
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
    ]
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[OrderItem],
        config=StrawberryConfig(scalar_map={**SCALARS, StreamPosition: STREAM_POSITION}),
        extensions=extensions,
    )
