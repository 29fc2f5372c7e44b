"""Per-request state of a GraphQL operation: the caller and the DataLoaders.

Loaders batch every relation lookup of one operation into one call of a ``db/``
function (which checks the caller's scopes and organization like any other door)
and cache the rows for the rest of the request only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from strawberry.dataloader import DataLoader

from db import customers, orders, products, stats
from db.errors import InvalidArgument
from db.principal import Principal

Row = dict[str, Any]


def _by_id(
    fetch: Callable[[Principal, Sequence[int]], Awaitable[list[Row]]], principal: Principal
) -> DataLoader[int, Row | None]:
    async def load(ids: list[int]) -> list[Row | None]:
        found = {row["id"]: row for row in await fetch(principal, ids)}
        return [found.get(i) for i in ids]

    return DataLoader(load_fn=load)


@dataclass
class Loaders:
    principal: Principal
    _orders_of_customer: dict[int, DataLoader[int, list[Row]]] = field(default_factory=dict)

    @cached_property
    def customer(self) -> DataLoader[int, Row | None]:
        return _by_id(customers.customers_by_ids, self.principal)

    @cached_property
    def product(self) -> DataLoader[int, Row | None]:
        return _by_id(products.products_by_ids, self.principal)

    @cached_property
    def sales(self) -> DataLoader[int, Row | None]:
        principal = self.principal

        async def load(product_ids: list[int]) -> list[Row | None]:
            found = await stats.sales_of_products(principal, product_ids)
            return [found.get(i) for i in product_ids]

        return DataLoader(load_fn=load)

    @cached_property
    def items(self) -> DataLoader[int, list[Row]]:
        principal = self.principal

        async def load(order_ids: list[int]) -> list[list[Row]]:
            found = await orders.items_of_orders(principal, order_ids)
            return [found.get(i, []) for i in order_ids]

        return DataLoader(load_fn=load)

    def orders_of_customer(self, first: int) -> DataLoader[int, list[Row]]:
        """One loader per page size, so customers asked with the same ``first`` share a query."""
        if not 1 <= first <= 100:
            raise InvalidArgument(f"first: must be between 1 and 100, got {first}")
        loader = self._orders_of_customer.get(first)
        if loader is None:
            principal = self.principal

            async def load(customer_ids: list[int]) -> list[list[Row]]:
                found = await orders.orders_of_customers(principal, customer_ids, limit=first)
                return [found.get(i, []) for i in customer_ids]

            loader = self._orders_of_customer[first] = DataLoader(load_fn=load)
        return loader


@dataclass
class Context:
    principal: Principal
    request_id: str | None = None
    page_size_default: int = 20
    page_size_max: int = 100
    idempotency_ttl_seconds: int = 86_400
    # Kept with the parsed document, for every request of it (``resolvers.prefetch``).
    memo: dict[Any, Any] = field(default_factory=dict)
    # Over WebSocket only: the change stream and the socket (``resolvers.ws``).
    hub: Any = None
    socket: Any = None

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.principal)
