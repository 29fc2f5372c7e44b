"""GraphQL object types over the rows ``db/`` returns (the same rows REST serves).

Each declared resource's type is derived from its declaration (``derive_type``):
its shape's scalar fields in camelCase, one field per relation, and what the
resource adds by hand (``EXTRAS``: an order's items, a product's sales). Each
object is a thin view of a row dict; relations are prefetched for a whole page
by the root resolver (``resolvers/prefetch.py``) or batched through the
request's DataLoaders, so a page of 50 orders costs a constant number of queries
whatever is nested under it.

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
from typing import Annotated, Any, Optional, TypeVar

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types.scalar import ScalarDefinition

from db.catalog import CATALOG, Catalog
from db.declare import Relation, Resource, list_fields, position_fields, scalar_fields
from db.errors import InvalidArgument, NotFound
from db.inputs import MAX_ID
from db.listing import RELATION_PAGE_DEFAULT, RELATION_PAGE_MAX
from resolvers.context import Context
from resolvers.engine.hints import NOT_LOADED, fast_field
from resolvers.pages import PageInfo as PageInfo  # its home before resolvers.pages
from resolvers.positions import StreamPosition
from resolvers.webhooks import WebhookEndpointExtras

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


def from_snapshot(res: Resource, snapshot: dict[str, Any]) -> dict[str, Any]:
    """A row from its JSON snapshot (a change event's data, a stored idempotent answer):
    the declared time fields parsed back."""
    row = dict(snapshot)
    for column in res.datetime_fields:
        value = row.get(column)
        if isinstance(value, str):
            row[column] = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return row


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
    name="DateTime",
    description="ISO 8601 time in UTC, e.g. 2030-01-01T00:00:00Z",
    serialize=_serialize_time,
    parse_value=_parse_time,
)
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


def _node_id(obj: Any) -> strawberry.ID:
    return strawberry.ID(global_id(type(obj).__name__, obj.database_id))


@strawberry.interface(description="An object with a global id (Relay).")
class Node:
    @strawberry.field(  # type: ignore[untyped-decorator]
        description="Global id: pass it to `node(id:)`.",
        metadata={**fast_field(_node_id), **needs("id")},
    )
    def id(self) -> strawberry.ID:
        return _node_id(self)


@strawberry.type(description="What a product sold, over paid (paid, shipped, delivered) orders.")
class ProductSales:
    units_sold: int
    revenue_cents: int = strawberry.field(description="Quantity times the unit price sold at.")
    order_count: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ProductSales:
        return cls(
            units_sold=row["units_sold"],
            revenue_cents=row["revenue_cents"],
            order_count=row["order_count"],
        )


# -- what some resources add by hand to their derived type (``Resource.special``) -------------


class ProductExtras:
    # Set by ``resolvers.prefetch`` when the document asks for it (else loaded on demand).
    prefetched_sales: strawberry.Private[Any] = NOT_LOADED

    @strawberry.field(  # type: ignore[untyped-decorator]
        description="Units sold and revenue (needs stats:read).",
        metadata=prefetched("prefetched_sales", "id"),
    )
    def sales(self, info: Info) -> ProductSales | None:
        if self.prefetched_sales is not NOT_LOADED:
            return self.prefetched_sales  # type: ignore[no-any-return]
        return _load(info.context.loaders.sales, self.database_id, ProductSales.from_row)  # type: ignore[attr-defined, return-value]


@strawberry.type(description="One line of an order.")
class OrderItem:
    database_id: int
    product_id: int
    quantity: int
    unit_price_cents: int = strawberry.field(
        description="The product's price when the order was placed."
    )

    @classmethod
    def from_row(cls, row: dict[str, Any], owned: bool = False) -> OrderItem:
        return _from_row(cls, row, owned)

    # Set by ``resolvers.prefetch`` when the document asks for it (else loaded on demand).
    prefetched_product: strawberry.Private[Any] = NOT_LOADED

    @strawberry.field(metadata=prefetched("prefetched_product", "product_id"))  # type: ignore[untyped-decorator]
    def product(self, info: Info) -> Product | None:  # type: ignore[name-defined]  # noqa: F821
        if self.prefetched_product is not NOT_LOADED:
            return self.prefetched_product
        make = TYPES["product"].from_row
        return _load(info.context.loaders.by_id("product"), self.product_id, make)


class OrderExtras:
    # Set by ``resolvers.prefetch`` when the document asks for them (else loaded on demand).
    prefetched_items: strawberry.Private[Any] = NOT_LOADED

    @strawberry.field(metadata=prefetched("prefetched_items", "id"))  # type: ignore[untyped-decorator]
    def items(self, info: Info) -> list[OrderItem]:
        if self.prefetched_items is not NOT_LOADED:
            return self.prefetched_items  # type: ignore[no-any-return]
        loader = info.context.loaders.items
        return _load_many(loader, self.database_id, OrderItem.from_row)  # type: ignore[attr-defined, return-value]


EXTRAS: dict[str, type] = {
    "product": ProductExtras,
    "order": OrderExtras,
    "webhook_endpoint": WebhookEndpointExtras,
}


# -- types derived from the declarations ---------------------------------------------------


def _enum(kind: type[Enum]) -> type[Enum]:
    """The GraphQL enum of a declared Python enum (a copy: ``db`` stays Strawberry-free)."""
    found = _ENUMS.get(kind)
    if found is None:
        copy = Enum(kind.__name__, {m.name: m.value for m in kind})  # type: ignore[misc]
        found = _ENUMS[kind] = strawberry.enum(copy)
    return found


_ENUMS: dict[type[Enum], type[Enum]] = {}


def _graphql_type(kind: type) -> Any:
    return _enum(kind) if issubclass(kind, Enum) else kind


def _to_one(rel: Relation, target: Resource) -> Any:
    attribute = f"prefetched_{rel.name}"

    def resolve(self: Any, info: Info) -> Any:
        found = self.__dict__.get(attribute, NOT_LOADED)
        if found is not NOT_LOADED:
            return found
        key = getattr(self, rel.key)
        if key is None:
            return None
        make = TYPES[target.name].from_row
        return _load(info.context.loaders.by_id(target.name), key, make)

    resolve.__annotations__ = {"info": Info, "return": f"{target.type_name} | None"}

    def fast(obj: Any) -> Any:
        return obj.__dict__.get(attribute, NOT_LOADED)

    return strawberry.field(
        resolver=resolve,
        description=rel.description or None,
        metadata={**fast_field(fast), **needs(rel.key)},
    )


def _to_many(rel: Relation, target: Resource) -> Any:
    async def resolve(self: Any, info: Info, first: int = RELATION_PAGE_DEFAULT) -> list[Any]:
        loader = info.context.loaders.children(target.name, rel.key, first)
        make = TYPES[target.name].from_row
        return [make(row) for row in await loader.load(self.database_id)]

    resolve.__annotations__ = {
        "info": Info,
        "first": Annotated[int, strawberry.argument(description=f"at most {RELATION_PAGE_MAX}")],
        "return": f"list[{target.type_name}]",
    }
    return strawberry.field(
        resolver=resolve, description=rel.description or None, metadata=needs("id")
    )


def derive_type(res: Resource, catalog: Catalog, extras: type | None = None) -> type:
    """The GraphQL object type of ``res``: its shape's scalar fields and lists of plain
    values (``id`` as Node id and ``databaseId``), one field per relation, and what
    ``extras`` adds."""
    annotations: dict[str, Any] = {"database_id": int}
    namespace: dict[str, Any] = {"__module__": __name__, "__qualname__": res.type_name}
    enums: dict[str, type[Enum]] = {}
    positions = position_fields(res.shape)
    for name, (kind, nullable) in scalar_fields(res.shape).items():
        if name == "id":
            continue
        gql: Any = StreamPosition if name in positions else _graphql_type(kind)
        if issubclass(kind, Enum):
            enums[name] = gql
        annotations[name] = Optional[gql] if nullable else gql  # noqa: UP045
        described = res.shape.model_fields[name].description
        if described:
            namespace[name] = strawberry.field(description=described)
    for name, (item, nullable) in list_fields(res.shape).items():
        annotations[name] = Optional[list[item]] if nullable else list[item]  # type: ignore[valid-type]  # noqa: UP045
        described = res.shape.model_fields[name].description
        if described:
            namespace[name] = strawberry.field(description=described)
    for rel in res.relations:
        target = catalog.by_name[rel.target]
        if rel.many:
            namespace[rel.name] = _to_many(rel, target)
        else:
            annotations[f"prefetched_{rel.name}"] = strawberry.Private[Any]  # type: ignore[misc]
            namespace[f"prefetched_{rel.name}"] = NOT_LOADED
            namespace[rel.name] = _to_one(rel, target)
    if extras is not None:
        annotations.update(extras.__annotations__)
        namespace.update({k: v for k, v in vars(extras).items() if not k.startswith("__")})
    namespace["__annotations__"] = annotations

    def from_row(cls: type, row: dict[str, Any], owned: bool = False) -> Any:
        obj: Any = _from_row(cls, row, owned)
        values = obj.__dict__
        for name, kind in enums.items():
            if name in values:
                values[name] = kind(values[name])
        return obj

    namespace["from_row"] = classmethod(from_row)
    cls = type(res.type_name, (Node,), namespace)
    return strawberry.type(cls, description=res.description or None)


def derive_types(catalog: Catalog) -> dict[str, Any]:
    """Every declared resource's type, by resource name; also set in this module, where
    their annotations (``Product | None``, ``list[Order]``) are resolved."""
    made = {res.name: derive_type(res, catalog, EXTRAS.get(res.name)) for res in catalog.resources}
    globals().update({cls.__name__: cls for cls in made.values()})
    return made


TYPES: dict[str, Any] = derive_types(CATALOG)


@strawberry.type
class SalesBucket:
    start: datetime
    order_count: int
    revenue_cents: int
