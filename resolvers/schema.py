"""The GraphQL schema: the same ``db/`` functions, Principal and error codes as REST.

Queries read through the list/get functions REST uses (same AIP-160 ``filter``
grammar, ``orderBy``, keyset cursors: an edge's ``cursor`` is a REST
``page_token``); mutations call the same writes. Expected failures carry REST's
``code`` in ``extensions.code`` (see ``resolvers.errors.format_error``). Mutations
are in ``resolvers.mutations``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import nullcontext
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

from db import customers, orders, products, stats
from db.errors import NotFound
from db.listing import ListQuery, Page
from db.principal import Principal
from db.sql import one_connection
from gateway.settings import Settings
from resolvers.limits import DocumentLimits, limits_rule
from resolvers.mutations import Mutation
from resolvers.prefetch import (
    Ask,
    ask,
    connection_ask,
    look_ahead,
    prefetch_orders,
    prefetch_products,
)
from resolvers.subscriptions import STREAM_POSITION, StreamPosition, Subscription
from resolvers.types import (
    SCALARS,
    Customer,
    Info,
    Node,
    Order,
    OrderItem,
    OrderStatus,
    PageInfo,
    Product,
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
    list_fn: Callable[..., Awaitable[Page]],
    node_type: Any,
    first: int | None,
    after: str | None,
    filter: str | None,
    order_by: str | None,
    prefetch: Callable[[Principal, list[T], Ask], Awaitable[None]] | None = None,
    **options: Any,
) -> Connection[T]:
    ctx = info.context
    asked = look_ahead(info, (node_type, "connection"), partial(connection_ask, node_type))
    query = ListQuery(filter=filter, order_by=order_by, page_size=first, page_token=after)
    async with one_connection():  # the page and what is prefetched for it: one connection
        page = await list_fn(
            ctx.principal, query, default_page_size=ctx.page_size_default,
            max_page_size=ctx.page_size_max, cursors=True,
            with_total=asked.with_total, fields=asked.nodes.columns, **options,
        )  # fmt: skip
        make = node_type.from_row
        nodes: list[T] = [make(row, owned=True) for row in page.items]
        if prefetch is not None:
            await prefetch(ctx.principal, nodes, asked.nodes)
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


@strawberry.type
class Query:
    @strawberry.field
    async def customer(self, info: Info, id: strawberry.ID) -> Customer:
        _, ident = parse_global_id(id, "Customer")
        return Customer.from_row(await customers.get_customer(info.context.principal, ident))

    @strawberry.field
    async def product(self, info: Info, id: strawberry.ID) -> Product:
        _, ident = parse_global_id(id, "Product")
        return Product.from_row(await products.get_product(info.context.principal, ident))

    @strawberry.field
    async def order(self, info: Info, id: strawberry.ID) -> Order:
        _, ident = parse_global_id(id, "Order")
        asked = look_ahead(info, Order, partial(ask, Order))
        principal = info.context.principal
        # One read needs no connection held for the next (there is none).
        async with one_connection() if asked.relations else nullcontext():
            row = await orders.get_order(principal, ident, asked.columns)
            order = Order.from_row(row, owned=True)
            await prefetch_orders(principal, [order], asked)
        return order

    @strawberry.field
    async def node(self, info: Info, id: strawberry.ID) -> Node:
        type_name, ident = parse_global_id(id)
        principal = info.context.principal
        if type_name == "Customer":
            return Customer.from_row(await customers.get_customer(principal, ident))
        if type_name == "Product":
            return Product.from_row(await products.get_product(principal, ident))
        if type_name == "Order":
            return Order.from_row(await orders.get_order(principal, ident))
        raise NotFound(f"no object with id {id!r}")

    @strawberry.field
    async def customers(
        self, info: Info, first: int | None = None, after: str | None = None,
        filter: str | None = None, order_by: str | None = None,
    ) -> Connection[Customer]:  # fmt: skip
        return await _connection(
            info, customers.list_customers, Customer, first, after, filter, order_by
        )

    @strawberry.field
    async def products(
        self, info: Info, first: int | None = None, after: str | None = None,
        filter: str | None = None, order_by: str | None = None, show_deleted: bool = False,
    ) -> Connection[Product]:  # fmt: skip
        return await _connection(
            info, products.list_products, Product, first, after, filter, order_by,
            prefetch=prefetch_products, show_deleted=show_deleted,
        )  # fmt: skip

    @strawberry.field
    async def orders(
        self, info: Info, first: int | None = None, after: str | None = None,
        filter: str | None = None, order_by: str | None = None,
    ) -> Connection[Order]:  # fmt: skip
        return await _connection(
            info, orders.list_orders, Order, first, after, filter, order_by,
            prefetch=prefetch_orders,
        )  # fmt: skip

    @strawberry.field
    async def sales_stats(
        self, info: Info, start: datetime | None = None, end: datetime | None = None,
        granularity: str = "day",
    ) -> list[SalesBucket]:  # fmt: skip
        rows = await stats.sales_stats(
            info.context.principal, start=start, end=end, granularity=granularity
        )
        return [
            SalesBucket(
                start=r["start"], order_count=r["order_count"], revenue_cents=r["revenue_cents"]
            )
            for r in rows
        ]


def limit_rules(settings: Settings) -> list[type[ASTValidationRule]]:
    """The validation rules that enforce ``settings``' limits, built once per schema:
    validation caches key on the rule classes (classes built per request never hit)."""
    rules: list[type[ASTValidationRule]] = [limits_rule(DocumentLimits.from_settings(settings))]
    if not settings.introspection_enabled:
        rules.append(NoSchemaIntrospectionCustomRule)
    return rules


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The schema with the limits of ``settings`` (defaults when None), for
    ``schema.execute`` (the HTTP handler runs documents through ``resolvers.execute``)."""
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
        types=[OrderItem, OrderStatus],
        config=StrawberryConfig(scalar_map={**SCALARS, StreamPosition: STREAM_POSITION}),
        extensions=extensions,
    )


schema = build_schema()
