"""Look-ahead: a root resolver fetches what its document asks for, once.

A root field (``order``, ``orders``, ...) reads its selection set before it
queries: which columns its rows need (only those are selected) and which
relations are asked for. For a page of orders, ``customer``, ``items`` and
``items.product`` are then read with one batched ``db`` call each (the same
functions the DataLoaders use, so the same scope and organization checks) and
attached to the objects, whose relation fields resolve without awaiting
anything. graphql-core's per-field awaitables were most of the cost of a nested
page (see ops/bench/RESULTS.md).

What a selection asks for depends only on the document (``@skip``/``@include``
are ignored: at worst a column too many is read), so it is worked out once per
document and field and kept in the document's memo (``Context.memo``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from graphql import FieldNode, FragmentDefinitionNode, FragmentSpreadNode, SelectionNode
from strawberry.types.base import get_object_definition
from strawberry.utils.str_converters import to_camel_case

from db import orders, stats
from db.catalog import CATALOG
from db.principal import Principal
from resolvers.types import COLUMNS, TYPES, Info, OrderItem, ProductSales

T = TypeVar("T")
Fragments = dict[str, FragmentDefinitionNode]
Fields = dict[str, list[FieldNode]]

Order, Product = TYPES["order"], TYPES["product"]

# The relations a root resolver prefetches: type -> GraphQL field -> the related type.
# Declared to-one relations, plus what resources add by hand (``Resource.special``).
RELATIONS: dict[type, dict[str, type]] = {
    TYPES[res.name]: {r.name: TYPES[r.target] for r in res.relations if not r.many}
    for res in CATALOG.resources
}
RELATIONS[Order]["items"] = OrderItem
RELATIONS[OrderItem] = {"product": Product}
RELATIONS[Product]["sales"] = ProductSales


def selected(selections: Iterable[SelectionNode], fragments: Fragments) -> Fields:
    """Selected fields by name, fragments (inline or named) flattened."""
    out: Fields = {}
    stack = list(selections)
    seen: set[str] = set()
    while stack:
        node = stack.pop()
        if isinstance(node, FieldNode):
            out.setdefault(node.name.value, []).append(node)
        elif isinstance(node, FragmentSpreadNode):
            name = node.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:
                seen.add(name)
                stack.extend(fragment.selection_set.selections)
        else:  # an inline fragment
            selection_set = getattr(node, "selection_set", None)
            if selection_set is not None:
                stack.extend(selection_set.selections)
    return out


def children(fields: Sequence[FieldNode]) -> list[SelectionNode]:
    return [
        sel for field in fields if field.selection_set for sel in field.selection_set.selections
    ]


@cache
def _columns_of_fields(cls: type) -> dict[str, tuple[str, ...] | None]:
    """GraphQL field name -> the row columns it reads (None: not declared)."""
    definition = get_object_definition(cls, strict=True)
    out: dict[str, tuple[str, ...] | None] = {}
    for field in definition.fields:
        name = field.graphql_name or to_camel_case(field.python_name)
        if field.base_resolver is None:
            out[name] = ("id",) if field.python_name == "database_id" else (field.python_name,)
        else:
            metadata: Mapping[str, Any] = field.metadata or {}
            out[name] = metadata.get(COLUMNS)
    return out


def columns(cls: type, fields: Fields) -> frozenset[str] | None:
    """The columns ``cls`` rows need for ``fields``; None when all are needed."""
    known = _columns_of_fields(cls)
    out = {"id"}
    for name in fields:
        if name == "__typename":
            continue
        needed = known.get(name)
        if needed is None:  # a resolver without declared columns, or another type's field
            return None
        out.update(needed)
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Ask:
    """What a document asks of the objects of one type: columns, and relations to prefetch."""

    columns: frozenset[str] | None
    relations: dict[str, Ask]


def ask(cls: type, selections: Iterable[SelectionNode], fragments: Fragments) -> Ask:
    fields = selected(selections, fragments)
    relations = {
        name: ask(related, children(fields[name]), fragments)
        for name, related in RELATIONS.get(cls, {}).items()
        if name in fields
    }
    return Ask(columns(cls, fields), relations)


@dataclass(frozen=True, slots=True)
class ConnectionAsk:
    nodes: Ask
    with_total: bool


def connection_ask(
    cls: type, selections: Iterable[SelectionNode], fragments: Fragments
) -> ConnectionAsk:
    """What is asked of a connection: of each node (``nodes``, ``edges.node``), and the total."""
    top = selected(selections, fragments)
    node_fields = top.get("nodes", []) + selected(children(top.get("edges", [])), fragments).get(
        "node", []
    )
    return ConnectionAsk(ask(cls, children(node_fields), fragments), "totalCount" in top)


def look_ahead(
    info: Info, tag: object, compute: Callable[[Iterable[SelectionNode], Fragments], T]
) -> T:
    """``compute(selections, fragments)`` for the field being resolved, once per document.

    ``tag`` names what ``compute`` works out (one field may be looked at twice).
    """
    raw = info._raw_info
    nodes = raw.field_nodes
    memo = info.context.memo
    key = (tag, *map(id, nodes))  # the nodes live as long as the memo (same document)
    try:
        return memo[key]  # type: ignore[no-any-return]
    except KeyError:
        value = memo[key] = compute(children(nodes), raw.fragments)
        return value


async def prefetch(principal: Principal, cls: Any, page: Sequence[Any], asked: Ask) -> None:
    """Attach the relations ``asked`` names to a page of ``cls`` objects: one query per
    relation and level, whatever the page size."""
    if not page:
        return
    res = CATALOG.by_type.get(cls.__name__)
    for rel in res.relations if res is not None else ():
        sub = asked.relations.get(rel.name)
        if rel.many or sub is None:
            continue
        target = CATALOG.by_name[rel.target]
        make = TYPES[rel.target].from_row
        ids = sorted({k for obj in page if (k := getattr(obj, rel.key)) is not None})
        rows = await target.by_ids(principal, ids, sub.columns) if ids else []
        found = {r["id"]: make(r, owned=True) for r in rows}
        await prefetch(principal, TYPES[rel.target], list(found.values()), sub)
        attribute = f"prefetched_{rel.name}"
        for obj in page:
            key = getattr(obj, rel.key)
            obj.__dict__[attribute] = None if key is None else found.get(key)
    special = SPECIAL.get(cls)
    if special is not None:
        await special(principal, page, asked)


async def _order_items(principal: Principal, page: Sequence[Any], asked: Ask) -> None:
    items_asked = asked.relations.get("items")
    if items_asked is None:
        return
    by_order = await orders.items_of_orders(principal, [o.database_id for o in page])
    make_item = OrderItem.from_row
    items = {
        o.database_id: [make_item(r, owned=True) for r in by_order.get(o.database_id, [])]
        for o in page
    }
    product = items_asked.relations.get("product")
    if product is not None:
        ids = sorted({i.product_id for lines in items.values() for i in lines})
        rows = await CATALOG.by_name["product"].by_ids(principal, ids, product.columns)
        found: dict[int, Any] = {r["id"]: Product.from_row(r, owned=True) for r in rows}
        await prefetch(principal, Product, list(found.values()), product)
        for lines in items.values():
            for item in lines:
                item.prefetched_product = found.get(item.product_id)
    for order in page:
        order.prefetched_items = items[order.database_id]


async def _product_sales(principal: Principal, page: Sequence[Any], asked: Ask) -> None:
    if "sales" not in asked.relations:
        return
    if not principal.can("stats:read"):
        return  # each ``sales`` field then says PERMISSION_DENIED itself (its loader)
    sales = await stats.sales_of_products(principal, [p.database_id for p in page])
    for product in page:
        product.prefetched_sales = ProductSales.from_row(sales[product.database_id])


# What resources add by hand to the prefetch of their declared relations.
SPECIAL: dict[Any, Callable[[Principal, Sequence[Any], Ask], Any]] = {
    Order: _order_items,
    Product: _product_sales,
}
