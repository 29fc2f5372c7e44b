"""GraphQL mutations: the same ``db/`` writes as REST, with REST's options as arguments.

Most resources have the same three writes, so they are generated from one
description (``Writes``): ``create<Type>(input, idempotencyKey)``,
``update<Type>(id, input, expectedVersion)`` and ``delete<Type>(id,
expectedVersion)``. A new resource adds one ``Writes`` entry to ``STANDARD``;
only actions beyond these (the order workflow, undeleting a product) are written
by hand below. ``expectedVersion`` is REST's ``If-Match``; ``idempotencyKey`` is
REST's ``Idempotency-Key``, in the same store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import strawberry
from pydantic import BaseModel
from strawberry.tools import merge_types

from db import customers, orders, products
from db.idempotency import Outcome, run_idempotent
from db.inputs import validate_input
from db.principal import Principal
from resolvers.types import Customer, Info, Order, Product, parse_global_id

M = TypeVar("M", bound=BaseModel)
Row = dict[str, Any]


def _input(model: type[M], data: dict[str, Any]) -> M:
    """A ``db`` input model from GraphQL input, with REST's validation errors."""
    return validate_input(model, data, at="body")


def _set(obj: Any) -> dict[str, Any]:
    """The fields a client sent in an input object (unset ones left out)."""
    return {k: v for k, v in vars(obj).items() if v is not strawberry.UNSET}


async def _once(
    info: Info,
    key: str | None,
    request: list[Any],
    run: Callable[[], Awaitable[dict[str, Any]]],
    refetch: Callable[[Principal, int], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """Run a create once per ``idempotencyKey`` (REST's ``Idempotency-Key``, same store).

    A retry with the same key and input returns the object the first call created
    (as it is now); the same key with other input is ``IDEMPOTENCY_KEY_REUSED``.
    """
    if key is None:
        return await run()
    ctx = info.context
    created: list[dict[str, Any]] = []

    async def operation() -> Outcome:
        row = await run()
        created.append(row)
        return Outcome(status=201, result={"graphql": True, "id": row["id"]})

    fingerprint = hashlib.sha256(
        orjson.dumps(["graphql", *request], option=orjson.OPT_SORT_KEYS)
    ).hexdigest()
    outcome = await run_idempotent(
        ctx.principal, key, fingerprint, operation, ttl_seconds=ctx.idempotency_ttl_seconds
    )
    if created and not outcome.replayed:
        return created[0]
    return await refetch(ctx.principal, int(outcome.result["id"]))


def _versions(expected_version: int | None) -> list[int] | None:
    return None if expected_version is None else [expected_version]


@strawberry.input
class CustomerInput:
    name: str
    email: str


@strawberry.input
class CustomerPatch:
    name: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET


@strawberry.input
class ProductInput:
    sku: str
    name: str
    price_cents: int
    stock: int
    description: str = ""


@strawberry.input
class ProductPatch:
    sku: str | None = strawberry.UNSET
    name: str | None = strawberry.UNSET
    price_cents: int | None = strawberry.UNSET
    stock: int | None = strawberry.UNSET
    description: str | None = strawberry.UNSET


@strawberry.input
class OrderPatch:
    note: str | None = strawberry.UNSET


@strawberry.input
class OrderItemInput:
    product_id: int
    quantity: int


@strawberry.input
class OrderInput:
    customer_id: int
    items: list[OrderItemInput]
    note: str = ""


@dataclass(frozen=True)
class Writes:
    """A resource's standard writes, as its ``db`` module offers them."""

    type_: Any  # the GraphQL type (with ``from_row``); its name names the mutations
    create: Callable[[Principal, Any], Awaitable[Row]]
    create_model: type[BaseModel]
    create_input: type
    update: Callable[..., Awaitable[Row]]  # (principal, id, data, *, expected_versions)
    patch_model: type[BaseModel]
    patch_input: type
    delete: Callable[..., Awaitable[Row | None]]  # (principal, id, *, expected_versions)
    get: Callable[[Principal, int], Awaitable[Row]]  # for idempotent replays
    # A soft delete answers with the object; a hard delete with the deleted id.
    delete_returns_object: bool = False


STANDARD = [
    Writes(
        Customer, customers.create_customer, customers.CustomerInput, CustomerInput,
        customers.update_customer, customers.CustomerPatch, CustomerPatch,
        customers.delete_customer, customers.get_customer,
    ),
    Writes(
        Product, products.create_product, products.ProductInput, ProductInput,
        products.update_product, products.ProductPatch, ProductPatch,
        products.delete_product, products.get_product, delete_returns_object=True,
    ),
]  # fmt: skip


def _typed(function: Callable[..., Any], **annotations: Any) -> Callable[..., Any]:
    """Strawberry reads argument types from annotations: give the generated ones real types."""
    function.__annotations__ = annotations
    return function


def standard_mutations(writes: Writes) -> dict[str, Any]:
    """``create_<type>``, ``update_<type>`` and ``delete_<type>`` fields for ``writes``."""
    name = writes.type_.__name__
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    make = writes.type_.from_row

    async def create(info: Info, input: Any, idempotency_key: str | None = None) -> Any:
        values = _set(input)
        data = _input(writes.create_model, values)
        row = await _once(
            info, idempotency_key, [f"create{name}", values],
            lambda: writes.create(info.context.principal, data), writes.get,
        )  # fmt: skip
        return make(row)

    async def update(
        info: Info, id: strawberry.ID, input: Any, expected_version: int | None = None
    ) -> Any:
        _, ident = parse_global_id(id, name)
        data = _input(writes.patch_model, _set(input))
        row = await writes.update(
            info.context.principal, ident, data, expected_versions=_versions(expected_version)
        )
        return make(row)

    async def delete(info: Info, id: strawberry.ID, expected_version: int | None = None) -> Any:
        _, ident = parse_global_id(id, name)
        row = await writes.delete(
            info.context.principal, ident, expected_versions=_versions(expected_version)
        )
        return make(row) if writes.delete_returns_object else id

    optional_int, optional_str = int | None, str | None
    deleted = writes.type_ if writes.delete_returns_object else strawberry.ID
    return {
        f"create_{snake}": strawberry.mutation(
            resolver=_typed(
                create, info=Info, input=writes.create_input, idempotency_key=optional_str,
                **{"return": writes.type_},
            ),
            description=f"Create a {name} (REST: POST; idempotencyKey as Idempotency-Key).",
        ),
        f"update_{snake}": strawberry.mutation(
            resolver=_typed(
                update, info=Info, id=strawberry.ID, input=writes.patch_input,
                expected_version=optional_int, **{"return": writes.type_},
            ),
            description=f"Change some fields of a {name} (expectedVersion as If-Match).",
        ),
        f"delete_{snake}": strawberry.mutation(
            resolver=_typed(
                delete, info=Info, id=strawberry.ID, expected_version=optional_int,
                **{"return": deleted},
            ),
            description=f"Delete a {name} (expectedVersion as If-Match).",
        ),
    }  # fmt: skip


@strawberry.type
class ProductMutations:
    @strawberry.mutation
    async def undelete_product(
        self, info: Info, id: strawberry.ID, expected_version: int | None = None
    ) -> Product:
        _, ident = parse_global_id(id, "Product")
        row = await products.undelete_product(
            info.context.principal, ident, expected_versions=_versions(expected_version)
        )
        return Product.from_row(row)


@strawberry.type
class OrderMutations:
    @strawberry.mutation
    async def place_order(
        self, info: Info, input: OrderInput, idempotency_key: str | None = None
    ) -> Order:
        values = {**_set(input), "items": [_set(item) for item in input.items]}
        data = _input(orders.OrderInput, values)
        row = await _once(
            info, idempotency_key, ["placeOrder", values],
            lambda: orders.place_order(info.context.principal, data),
            orders.get_order,
        )  # fmt: skip
        return Order.from_row(row)

    async def _transition(
        self, info: Info, id: strawberry.ID, action: orders.Action, expected_version: int | None
    ) -> Order:
        _, ident = parse_global_id(id, "Order")
        row = await orders.transition_order(
            info.context.principal, ident, action, expected_versions=_versions(expected_version)
        )
        return Order.from_row(row)

    @strawberry.mutation
    async def pay_order(
        self, info: Info, id: strawberry.ID, expected_version: int | None = None
    ) -> Order:
        return await OrderMutations._transition(self, info, id, "pay", expected_version)

    @strawberry.mutation
    async def ship_order(
        self, info: Info, id: strawberry.ID, expected_version: int | None = None
    ) -> Order:
        return await OrderMutations._transition(self, info, id, "ship", expected_version)

    @strawberry.mutation
    async def deliver_order(
        self, info: Info, id: strawberry.ID, expected_version: int | None = None
    ) -> Order:
        return await OrderMutations._transition(self, info, id, "deliver", expected_version)

    @strawberry.mutation
    async def cancel_order(
        self, info: Info, id: strawberry.ID, expected_version: int | None = None
    ) -> Order:
        return await OrderMutations._transition(self, info, id, "cancel", expected_version)

    @strawberry.mutation
    async def update_order(
        self, info: Info, id: strawberry.ID, input: OrderPatch,
        expected_version: int | None = None,
    ) -> Order:  # fmt: skip
        _, ident = parse_global_id(id, "Order")
        data = _input(orders.OrderPatch, _set(input))
        row = await orders.update_order(
            info.context.principal, ident, data, expected_versions=_versions(expected_version)
        )
        return Order.from_row(row)

    @strawberry.mutation(description="Delete a cancelled order.")  # type: ignore[untyped-decorator]
    async def delete_order(
        self, info: Info, id: strawberry.ID, expected_version: int | None = None
    ) -> strawberry.ID:
        _, ident = parse_global_id(id, "Order")
        await orders.delete_order(
            info.context.principal, ident, expected_versions=_versions(expected_version)
        )
        return id


Standard = strawberry.type(
    type(
        "StandardMutations",
        (),
        {k: v for writes in STANDARD for k, v in standard_mutations(writes).items()},
    )
)
Mutation = merge_types("Mutation", (Standard, ProductMutations, OrderMutations))
