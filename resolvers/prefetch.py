"""Look-ahead: a root resolver fetches the relations its document asks for, once.

For a page of orders, ``customer``, ``items`` and ``items.product`` are read with
one batched ``db`` call each (the same functions the DataLoaders use, so the same
scope and organization checks) and attached to the objects; their fields then
resolve synchronously. graphql-core's per-field awaitables were most of the cost
of a nested page (see ops/bench/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from db import customers, orders, products
from db.principal import Principal
from resolvers.types import Customer, Order, OrderItem, Product


def selected(selections: Iterable[Selection]) -> dict[str, list[SelectedField]]:
    """Selected fields by name, fragments flattened."""
    out: dict[str, list[SelectedField]] = {}
    stack = list(selections)
    while stack:
        sel = stack.pop()
        if isinstance(sel, SelectedField):
            out.setdefault(sel.name, []).append(sel)
        elif isinstance(sel, FragmentSpread | InlineFragment):
            stack.extend(sel.selections)
    return out


def _children(fields: Sequence[SelectedField]) -> list[Selection]:
    return [sel for field in fields for sel in field.selections]


def node_selections(connection: Sequence[Selection]) -> list[Selection]:
    """What is asked of each node of a connection (under ``nodes`` and ``edges.node``)."""
    top = selected(connection)
    node_fields = top.get("nodes", []) + selected(_children(top.get("edges", []))).get("node", [])
    return _children(node_fields)


async def prefetch_orders(
    principal: Principal, page: Sequence[Order], selections: Sequence[Selection]
) -> None:
    """Attach what ``selections`` (asked of each order) needs, in at most 3 queries."""
    if not page:
        return
    asked = selected(selections)
    if "customer" in asked:
        ids = sorted({o.customer_id for o in page})
        found = {
            r["id"]: Customer.from_row(r) for r in await customers.customers_by_ids(principal, ids)
        }
        for order in page:
            order.prefetched_customer = found.get(order.customer_id)
    if "items" in asked:
        by_order = await orders.items_of_orders(principal, [o.database_id for o in page])
        items = {
            o.database_id: [OrderItem.from_row(r) for r in by_order.get(o.database_id, [])]
            for o in page
        }
        if "product" in selected(_children(asked["items"])):
            ids = sorted({i.product_id for lines in items.values() for i in lines})
            found_p = {
                r["id"]: Product.from_row(r) for r in await products.products_by_ids(principal, ids)
            }
            for lines in items.values():
                for item in lines:
                    item.prefetched_product = found_p.get(item.product_id)
        for order in page:
            order.prefetched_items = items[order.database_id]
