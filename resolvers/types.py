"""GraphQL object types over the rows ``db/`` returns (the same rows REST serves).

Each type is a thin view of a row dict: scalar fields are the REST fields in
camelCase; relations (``Order.customer``, ``Order.items``, ``OrderItem.product``,
``Customer.orders``) go through the request's DataLoaders, so a page of 50 orders
costs a constant number of queries whatever is nested under it.

``id`` is a Relay global id (``base64("Order:12")``), accepted by ``node(id:)``;
``databaseId`` is the integer id REST uses.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from operator import attrgetter
from typing import Annotated, Any, TypeVar

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types.scalar import ScalarDefinition

from db.errors import InvalidArgument, NotFound
from db.orders import MAX_ID
from resolvers.context import Context
from resolvers.engine.hints import NOT_LOADED, fast_field

# ``metadata`` key of a resolver field: the row columns it reads (resolvers.prefetch
# fetches only the columns a document's fields need; undeclared means all of them).
COLUMNS = "gateway.columns"


def needs(*columns: str) -> dict[str, Any]:
    return {COLUMNS: columns}


def prefetched(attribute: str, *columns: str) -> dict[str, Any]:
    """``metadata`` of a relation field that returns ``attribute`` when it was prefetched."""
    return {**fast_field(attrgetter(attribute)), **needs(*columns)}


Info = strawberry.Info[Context, None]
T = TypeVar("T")


def global_id(type_name: str, ident: int) -> str:
    return base64.b64encode(f"{type_name}:{ident}".encode()).decode()


def parse_global_id(value: str, expected: str | None = None) -> tuple[str, int]:
    """``(type name, database id)`` of a global id; a bare integer is accepted for ``expected``."""
    if expected is not None and value.isascii() and value.isdigit():
        number = int(value)
        if not 1 <= number <= MAX_ID:  # as REST: no row can have it
            raise NotFound.for_resource(expected.lower(), value)
        return expected, number
    try:
        type_name, _, ident = (
            base64.b64decode(value.encode(), validate=True).decode().partition(":")
        )
        number = int(ident)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument(f"id: {value!r} is not an id this API issued") from None
    if expected is not None and type_name != expected:
        raise InvalidArgument(f"id: {value!r} is a {type_name} id, not a {expected} id")
    if not 1 <= number <= MAX_ID:
        raise InvalidArgument(f"id: {value!r} is out of range")
    return type_name, number


def _serialize_time(value: datetime) -> str:
    """ISO 8601 in UTC with ``Z``, exactly as REST writes times (orjson ``OPT_UTC_Z``)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("a DateTime is an ISO 8601 string")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("give a time zone (e.g. 2030-01-01T00:00:00Z)")
    return parsed


DateTime = strawberry.scalar(
    name="DateTime", description="ISO 8601 time in UTC, e.g. 2030-01-01T00:00:00Z",
    serialize=_serialize_time, parse_value=_parse_time,
)  # fmt: skip
SCALARS: dict[object, ScalarDefinition] = {datetime: DateTime}


def _from_row(cls: type[T], row: dict[str, Any], owned: bool) -> T:
    """An object over a row's columns (``id`` becomes ``database_id``).

    Rows may carry only the columns a document asks for (``resolvers.prefetch``):
    the object gets those and no others, without running the dataclass
    constructor over every field (this runs for every object of a page). With
    ``owned`` the row is fresh from ``db`` and nobody else's: it becomes the
    object's attributes instead of being copied.
    """
    obj = cls.__new__(cls)
    values = row if owned else dict(row)
    values["database_id"] = values.pop("id")
    obj.__dict__ = values
    return obj


# Relation fields are plain functions: they return what the root resolver prefetched
# for the whole page (no awaitable per object, see resolvers/prefetch.py), and only
# fall back to the request's DataLoader (returning its awaitable) when nothing was.
# ``fast_field`` hands the executor the same read without the resolver call
# (resolvers/engine/fastexec.py); it gives ``NOT_LOADED`` when the loader is needed.


async def _load(loader: DataLoader[int, Any], key: int, make: Callable[[Any], T]) -> T | None:
    row = await loader.load(key)
    return None if row is None else make(row)


async def _load_many(loader: DataLoader[int, Any], key: int, make: Callable[[Any], T]) -> list[T]:
    return [make(row) for row in await loader.load(key)]


@strawberry.enum
class OrderStatus(Enum):
    PENDING = "pending"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


def _node_id(obj: Any) -> strawberry.ID:
    return strawberry.ID(global_id(type(obj).__name__, obj.database_id))


_STATUSES = {member.value: member for member in OrderStatus}


@strawberry.interface(description="An object with a global id (Relay).")
class Node:
    @strawberry.field(  # type: ignore[untyped-decorator]
        description="Global id: pass it to `node(id:)`.",
        metadata={**fast_field(_node_id), **needs("id")},
    )
    def id(self) -> strawberry.ID:
        return _node_id(self)


@strawberry.type
class Customer(Node):
    database_id: int
    name: str
    email: str
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any], owned: bool = False) -> Customer:
        return _from_row(cls, row, owned)

    @strawberry.field(description="The customer's newest orders.", metadata=needs("id"))  # type: ignore[untyped-decorator]
    async def orders(
        self, info: Info, first: Annotated[int, strawberry.argument(description="at most 100")] = 20
    ) -> list[Order]:
        rows = await info.context.loaders.orders_of_customer(first).load(self.database_id)
        return [Order.from_row(row) for row in rows]


@strawberry.type(description="What a product sold, over paid (paid, shipped, delivered) orders.")
class ProductSales:
    units_sold: int
    revenue_cents: int = strawberry.field(description="Quantity times the unit price sold at.")
    order_count: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ProductSales:
        return cls(
            units_sold=row["units_sold"], revenue_cents=row["revenue_cents"],
            order_count=row["order_count"],
        )  # fmt: skip


@strawberry.type
class Product(Node):
    database_id: int
    sku: str
    name: str
    description: str
    price_cents: int
    stock: int
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any], owned: bool = False) -> Product:
        return _from_row(cls, row, owned)

    # Set by ``resolvers.prefetch`` when the document asks for it (else loaded on demand).
    prefetched_sales: strawberry.Private[Any] = NOT_LOADED

    @strawberry.field(  # type: ignore[untyped-decorator]
        description="Units sold and revenue (needs stats:read).",
        metadata=prefetched("prefetched_sales", "id"),
    )
    def sales(self, info: Info) -> ProductSales | None:
        if self.prefetched_sales is not NOT_LOADED:
            return self.prefetched_sales  # type: ignore[no-any-return]
        return _load(info.context.loaders.sales, self.database_id, ProductSales.from_row)  # type: ignore[return-value]


@strawberry.type
class OrderItem:
    database_id: int
    product_id: int
    quantity: int
    unit_price_cents: int

    @classmethod
    def from_row(cls, row: dict[str, Any], owned: bool = False) -> OrderItem:
        return _from_row(cls, row, owned)

    # Set by ``resolvers.prefetch`` when the document asks for it (else loaded on demand).
    prefetched_product: strawberry.Private[Any] = NOT_LOADED

    @strawberry.field(metadata=prefetched("prefetched_product", "product_id"))  # type: ignore[untyped-decorator]
    def product(self, info: Info) -> Product | None:
        if self.prefetched_product is not NOT_LOADED:
            return self.prefetched_product  # type: ignore[no-any-return]
        return _load(info.context.loaders.product, self.product_id, Product.from_row)  # type: ignore[return-value]


@strawberry.type
class Order(Node):
    database_id: int
    customer_id: int
    status: OrderStatus
    total_cents: int
    note: str
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any], owned: bool = False) -> Order:
        order = _from_row(cls, row, owned)
        if "status" in order.__dict__:
            order.status = _STATUSES[order.__dict__["status"]]
        return order

    # Set by ``resolvers.prefetch`` when the document asks for them (else loaded on demand).
    prefetched_customer: strawberry.Private[Any] = NOT_LOADED
    prefetched_items: strawberry.Private[Any] = NOT_LOADED

    @strawberry.field(metadata=prefetched("prefetched_customer", "customer_id"))  # type: ignore[untyped-decorator]
    def customer(self, info: Info) -> Customer | None:
        if self.prefetched_customer is not NOT_LOADED:
            return self.prefetched_customer  # type: ignore[no-any-return]
        return _load(info.context.loaders.customer, self.customer_id, Customer.from_row)  # type: ignore[return-value]

    @strawberry.field(metadata=prefetched("prefetched_items", "id"))  # type: ignore[untyped-decorator]
    def items(self, info: Info) -> list[OrderItem]:
        if self.prefetched_items is not NOT_LOADED:
            return self.prefetched_items  # type: ignore[no-any-return]
        return _load_many(info.context.loaders.items, self.database_id, OrderItem.from_row)  # type: ignore[return-value]


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class SalesBucket:
    start: datetime
    order_count: int
    revenue_cents: int
