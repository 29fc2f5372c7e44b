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

from db import orders, stats
from db.catalog import CATALOG
from db.crud import children_of
from db.errors import InvalidArgument
from db.listing import RELATION_PAGE_MAX
from db.principal import Principal
from gateway.settings import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX

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
    _by_id: dict[str, DataLoader[int, Row | None]] = field(default_factory=dict)
    _children: dict[tuple[str, str, int], DataLoader[int, list[Row]]] = field(default_factory=dict)

    def by_id(self, resource: str) -> DataLoader[int, Row | None]:
        """The declared resource's rows by id (its ``by_ids``: its scope and organization)."""
        loader = self._by_id.get(resource)
        if loader is None:
            loader = self._by_id[resource] = _by_id(
                CATALOG.by_name[resource].by_ids, self.principal
            )
        return loader

    def children(self, resource: str, key: str, first: int) -> DataLoader[int, list[Row]]:
        """Rows of ``resource`` whose ``key`` is a parent's id, newest ``first`` per parent:
        one loader per page size, so parents asked with the same ``first`` share a query."""
        if not 1 <= first <= RELATION_PAGE_MAX:
            raise InvalidArgument(f"first: must be between 1 and {RELATION_PAGE_MAX}, got {first}")
        loader = self._children.get((resource, key, first))
        if loader is None:
            principal, target = self.principal, CATALOG.by_name[resource]

            async def load(parent_ids: list[int]) -> list[list[Row]]:
                principal.require(target.read_scope)
                found = await children_of(
                    principal, target.spec, key, parent_ids, limit=first, where=target.listed_where
                )
                return [found.get(i, []) for i in parent_ids]

            loader = self._children[(resource, key, first)] = DataLoader(load_fn=load)
        return loader

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


@dataclass
class Context:
    principal: Principal
    request_id: str | None = None
    page_size_default: int = PAGE_SIZE_DEFAULT
    page_size_max: int = PAGE_SIZE_MAX
    idempotency_ttl_seconds: int = 86_400
    # Kept with the parsed document, for every request of it (``resolvers.prefetch``).
    memo: dict[Any, Any] = field(default_factory=dict)
    # Over WebSocket only: the change stream and the socket (``resolvers.ws``).
    hub: Any = None
    socket: Any = None

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.principal)
