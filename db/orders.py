"""Orders and their items: placing (with stock reservation) and the status machine.

    pending ──pay──► paid ──ship──► shipped ──deliver──► delivered
       │              │
       └──cancel──────┴──► cancelled   (returns the reserved stock)

Stock is reserved with one conditional ``UPDATE ... SET stock = stock - q
WHERE stock >= q`` per product, in product id order, inside the order's
transaction: concurrent orders can never oversell, and they cannot deadlock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from functools import partial
from typing import Annotated, Any, Literal, cast

from pydantic import MISSING, BaseModel, Field
from tortoise.expressions import F

from db import models
from db.declare import Action, Relation, Resource, list_spec
from db.errors import (
    Conflict,
    FieldError,
    InsufficientStock,
    InvalidArgument,
    InvalidTransition,
    NotFound,
    ValidationFailed,
)
from db.events import record_event, writing
from db.inputs import MAX_ID, Input, Text
from db.listing import ListQuery, Page, fetch_row, fetch_rows, list_rows
from db.models import OrderStatus
from db.principal import Principal
from db.products import SPEC as PRODUCT_SPEC
from db.rows import change_row, now, stale, update_versioned
from db.sql import Params, select

# Each order's items as one JSON array, so an order (or a page of orders) is one query.
ITEMS_JSON = {
    "postgres": (
        "SELECT coalesce(json_agg(json_build_object('id', i.id, 'product_id', i.product_id, "
        "'quantity', i.quantity, 'unit_price_cents', i.unit_price_cents) ORDER BY i.id), "
        "'[]'::json) FROM order_items i WHERE i.order_id = {alias}.id"
    ),
    "sqlite": (
        "SELECT json_group_array(json_object('id', i.id, 'product_id', i.product_id, "
        "'quantity', i.quantity, 'unit_price_cents', i.unit_price_cents)) "
        "FROM (SELECT * FROM order_items WHERE order_id = {alias}.id ORDER BY id) i"
    ),
}


class OrderItem(BaseModel):
    id: int
    product_id: int
    quantity: int
    unit_price_cents: int = Field(description="The product's price when the order was placed.")


class Order(BaseModel):
    id: int
    customer_id: int
    status: OrderStatus
    total_cents: int
    note: str
    version: int
    created_at: datetime
    updated_at: datetime
    items: list[OrderItem] = Field(
        default_factory=list,
        description="The order's lines: in the full view (get, batchGet, lists with "
        "`view=full` or `fields` naming `items`).",
    )


SPEC = list_spec(
    "order",
    models.Order,
    Order,
    filter=("id", "customer_id", "status", "total_cents", "created_at", "updated_at"),
    sort=("id", "customer_id", "status", "total_cents", "created_at", "updated_at"),
    computed={"items": ITEMS_JSON},
)

MAX_BATCH_GET = 100
ITEMS_PER_ORDER = 10  # what the GraphQL cost limit counts for an order's items
MAX_TOTAL_CENTS = 2**31 - 1

ActionName = Literal["pay", "ship", "deliver", "cancel"]
# action -> (from statuses, to status, event type, what it does)
TRANSITIONS: dict[str, tuple[frozenset[OrderStatus], OrderStatus, str, str]] = {
    "pay": (
        frozenset({OrderStatus.PENDING}),
        OrderStatus.PAID,
        "order.paid",
        "Mark a pending order as paid",
    ),
    "ship": (
        frozenset({OrderStatus.PAID}),
        OrderStatus.SHIPPED,
        "order.shipped",
        "Mark a paid order as shipped",
    ),
    "deliver": (
        frozenset({OrderStatus.SHIPPED}),
        OrderStatus.DELIVERED,
        "order.delivered",
        "Mark a shipped order as delivered",
    ),
    "cancel": (
        frozenset({OrderStatus.PENDING, OrderStatus.PAID}),
        OrderStatus.CANCELLED,
        "order.cancelled",
        "Cancel a pending or paid order and return its stock",
    ),
}


Note = Annotated[Text, Field(max_length=2_000)]


class OrderItemInput(Input):
    product_id: int = Field(ge=1, le=MAX_ID)
    quantity: int = Field(ge=1, le=10_000)


class OrderInput(Input):
    """A new order: the total and unit prices are computed from current product prices."""

    customer_id: int = Field(ge=1, le=MAX_ID)
    items: list[OrderItemInput] = Field(min_length=1, max_length=100)
    note: Note = ""


class OrderUpdate(Input):
    """The writable fields of an existing order (status changes through its actions)."""

    note: Note


class OrderPatch(Input):
    """A partial update: the fields sent are changed, the others kept; none takes null."""

    note: Note | MISSING = MISSING


async def list_orders(principal: Principal, query: ListQuery, **options: Any) -> Page:
    principal.require("orders:read")
    return await list_rows(principal, SPEC, query, **options)


async def get_order(
    principal: Principal, order_id: int, fields: Collection[str] | None = None
) -> dict[str, Any]:
    principal.require("orders:read")
    return await fetch_row(principal, SPEC, order_id, fields)


async def orders_by_ids(
    principal: Principal, ids: Sequence[int], fields: Collection[str] | None = None
) -> list[dict[str, Any]]:
    """The caller's orders with these ids (missing or foreign ones are left out)."""
    principal.require("orders:read")
    return await fetch_rows(principal, SPEC, ids, fields)


async def batch_get_orders(principal: Principal, ids: Iterable[int]) -> list[dict[str, Any]]:
    """Orders in the order asked for; all or nothing (AIP-231): one missing id is NOT_FOUND."""
    principal.require("orders:read")
    wanted = list(ids)
    if not wanted:
        raise InvalidArgument("ids: give at least one order id")
    if len(wanted) > MAX_BATCH_GET:
        raise InvalidArgument(f"ids: at most {MAX_BATCH_GET} ids per request, got {len(wanted)}")
    found = {row["id"]: row for row in await fetch_rows(principal, SPEC, list(set(wanted)))}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise NotFound(f"orders {', '.join(map(str, missing))} do not exist")
    return [found[i] for i in wanted]


def _merge_lines(items: list[OrderItemInput]) -> dict[int, int]:
    quantities: dict[int, int] = defaultdict(int)
    for item in items:
        quantities[item.product_id] += item.quantity
    return dict(sorted(quantities.items()))


async def place_order(principal: Principal, data: OrderInput) -> dict[str, Any]:
    """Create an order, reserving stock at current prices, or change nothing."""
    principal.require("orders:write")
    org = principal.organization_id
    quantities = _merge_lines(data.items)
    async with writing():
        if not await models.Customer.filter(id=data.customer_id, organization_id=org).exists():
            raise ValidationFailed(
                f"customer {data.customer_id} does not exist",
                errors=[
                    FieldError(("body", "customer_id"), "customer does not exist", "not_found")
                ],
            )
        products = {
            p["id"]: p
            for p in await models.Product.filter(
                id__in=list(quantities), organization_id=org, deleted_at__isnull=True
            ).values("id", "price_cents")
        }
        missing = [
            FieldError(("body", "items", i, "product_id"), "product does not exist", "not_found")
            for i, item in enumerate(data.items)
            if item.product_id not in products
        ]
        if missing:
            raise ValidationFailed("some products do not exist or are deleted", errors=missing)
        total = sum(products[pid]["price_cents"] * q for pid, q in quantities.items())
        if total > MAX_TOTAL_CENTS:
            raise ValidationFailed(
                f"the order total {total} exceeds {MAX_TOTAL_CENTS} cents; split the order",
                errors=[FieldError(("body", "items"), "order total too large", "total_too_large")],
            )
        for product_id, quantity in quantities.items():
            reserved = await models.Product.filter(
                id=product_id, organization_id=org, stock__gte=quantity
            ).update(stock=F("stock") - quantity, version=F("version") + 1, updated_at=now())
            if not reserved:
                raise InsufficientStock(
                    f"product {product_id} has fewer than {quantity} units in stock"
                )
        order = await models.Order.create(
            organization_id=org, customer_id=data.customer_id, total_cents=total, note=data.note
        )
        await models.OrderItem.bulk_create(
            [
                models.OrderItem(
                    order_id=order.id,
                    product_id=pid,
                    quantity=q,
                    unit_price_cents=products[pid]["price_cents"],
                )
                for pid, q in quantities.items()
            ]
        )
        await _record_stock_changes(principal, quantities)
        row = await fetch_row(principal, SPEC, order.id)
        await record_event(
            principal, type="order.created", resource="order", resource_id=order.id, snapshot=row
        )
    return row


async def _record_stock_changes(principal: Principal, product_ids: Iterable[int]) -> None:
    for product_id in product_ids:
        product = await fetch_row(principal, PRODUCT_SPEC, product_id)
        await record_event(
            principal,
            type="product.updated",
            resource="product",
            resource_id=product_id,
            snapshot=product,
        )


async def transition_order(
    principal: Principal,
    order_id: int,
    action: ActionName,
    *,
    expected_versions: Collection[int] | None = None,
) -> dict[str, Any]:
    """Move an order along the status machine; cancelling returns its stock."""
    principal.require("orders:write")
    if action not in TRANSITIONS:
        raise InvalidArgument(f"unknown order action {action!r}")
    allowed, target, event_type, _ = TRANSITIONS[action]
    async with writing():
        matched = await update_versioned(
            principal,
            SPEC,
            order_id,
            {"status": target},
            expected_versions=expected_versions,
            extra={"status__in": list(allowed)},
        )
        if not matched:
            current = await fetch_row(principal, SPEC, order_id)
            if expected_versions is not None and current["version"] not in expected_versions:
                raise stale("order", order_id)
            raise InvalidTransition(
                f"cannot {action} order {order_id}: it is {current['status']}; "
                f"{action} is allowed from {', '.join(sorted(allowed))}"
            )
        row = await fetch_row(principal, SPEC, order_id)
        if action == "cancel":
            for item in row["items"]:
                await models.Product.filter(id=item["product_id"]).update(
                    stock=F("stock") + item["quantity"],
                    version=F("version") + 1,
                    updated_at=now(),
                )
            await _record_stock_changes(principal, sorted(i["product_id"] for i in row["items"]))
        await record_event(
            principal, type=event_type, resource="order", resource_id=order_id, snapshot=row
        )
    return row


async def update_order(
    principal: Principal,
    order_id: int,
    changes: OrderPatch | OrderUpdate,
    *,
    expected_versions: Collection[int] | None = None,
) -> dict[str, Any]:
    principal.require("orders:write")
    values = changes.model_dump()  # a patch leaves out the fields not sent
    return await change_row(principal, SPEC, order_id, values, expected_versions=expected_versions)


async def delete_order(
    principal: Principal, order_id: int, *, expected_versions: Collection[int] | None = None
) -> None:
    """Delete a cancelled order (cancel first: cancelling returns the stock)."""
    principal.require("orders:write")
    async with writing():
        row = await fetch_row(principal, SPEC, order_id)
        if expected_versions is not None and row["version"] not in expected_versions:
            raise stale("order", order_id)
        if row["status"] != OrderStatus.CANCELLED:
            raise Conflict(
                f"order {order_id} is {row['status']}; only cancelled orders can be deleted"
            )
        await models.Order.filter(id=order_id, organization_id=principal.organization_id).delete()
        await record_event(
            principal, type="order.deleted", resource="order", resource_id=order_id, snapshot=row
        )


async def items_of_orders(
    principal: Principal, order_ids: Sequence[int]
) -> dict[int, list[dict[str, Any]]]:
    """Each order's items (id order), for the caller's orders among ``order_ids``."""
    principal.require("orders:read")
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if not order_ids:
        return found
    p = Params(principal.organization_id)
    rows = await select(
        "SELECT i.id, i.order_id, i.product_id, i.quantity, i.unit_price_cents "
        "FROM order_items i JOIN orders o ON o.id = i.order_id "
        f"WHERE o.organization_id = $1 AND {p.among('i.order_id', order_ids)} ORDER BY i.id",
        p.values,
    )
    for row in rows:
        found[row["order_id"]].append(row)
    return found


async def orders_of_customers(
    principal: Principal, customer_ids: Sequence[int], *, limit: int
) -> dict[int, list[dict[str, Any]]]:
    """Each customer's newest ``limit`` orders, for the caller's customers among the ids."""
    principal.require("orders:read")
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if not customer_ids:
        return found
    p = Params(principal.organization_id)
    # Only each customer's newest ``limit`` rows leave the database (a window per customer).
    newest = (
        "t.id IN (SELECT id FROM (SELECT o.id, row_number() OVER (PARTITION BY o.customer_id "
        "ORDER BY o.created_at DESC, o.id DESC) AS n FROM orders o WHERE o.organization_id = $1 "
        f"AND {p.among('o.customer_id', customer_ids)}) ranked WHERE n <= {p(limit)})"
    )
    rows = await SPEC.rows(
        f"t.organization_id = $1 AND {newest}",
        p,
        "ORDER BY t.created_at DESC, t.id DESC",
        SPEC.columns,
    )
    for row in rows:
        found[row["customer_id"]].append(row)
    return found


RESOURCE = Resource(
    name="order",
    plural="orders",
    description="A customer's order: placed with stock reserved, then moved by its actions.",
    shape=Order,
    spec=SPEC,
    list_rows=list_orders,
    get=get_order,
    by_ids=orders_by_ids,
    create=place_order,
    update=update_order,
    delete=delete_order,
    create_input=OrderInput,
    replace_input=OrderUpdate,
    patch_input=OrderPatch,
    relations=(
        Relation("customer", target="customer", key="customer_id", description="Who ordered."),
    ),
    actions=tuple(
        Action(name, summary, partial(transition_order, action=cast("ActionName", name)))
        for name, (_, _, _, summary) in TRANSITIONS.items()
    ),
    computed={"items": ITEMS_PER_ORDER},
    create_verb="place",
    example={"customer_id": 1, "items": [{"product_id": 1, "quantity": 1}]},
    special="REST: GET /orders:batchGet (rest/orders.py). GraphQL: Order.items with "
    "OrderItem.product (resolvers/types.py).",
)
