"""Products: what an organization sells; soft-deleted so order history keeps them."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import MISSING, BaseModel, Field
from tortoise.exceptions import IntegrityError

from db import models, suppliers
from db.crud import Reference, check_references
from db.declare import Action, ListOption, Relation, Resource, list_spec
from db.errors import Conflict
from db.inputs import Id, Input, Line, Text
from db.listing import ListQuery, Page, fetch_row, fetch_rows, list_rows
from db.principal import Principal
from db.rows import change_row, create_row, now, stale

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


Sku = Annotated[Line, Field(pattern=SKU_PATTERN, description="Unique per organization.")]
Name = Annotated[Line, Field(min_length=1, max_length=200)]
Description = Annotated[Text, Field(max_length=10_000)]
PriceCents = Annotated[int, Field(ge=0, le=100_000_000, description="Unit price in cents.")]
Stock = Annotated[int, Field(ge=0, le=1_000_000_000)]


class Product(BaseModel):
    id: int
    sku: str = Field(description="Unique per organization.")
    name: str
    description: str
    price_cents: int = Field(description="Unit price in cents.")
    stock: int = Field(description="Units in stock; orders reserve them.")
    supplier_id: int | None = Field(description="Who the product is bought from (expand=supplier).")
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = Field(description="Set while the product is soft-deleted.")


SPEC = list_spec(
    "product",
    models.Product,
    Product,
    filter=(
        "id",
        "sku",
        "name",
        "price_cents",
        "stock",
        "supplier_id",
        "created_at",
        "updated_at",
        "deleted_at",
    ),
    sort=("id", "sku", "name", "price_cents", "stock", "created_at", "updated_at"),
)
REFERENCES = (Reference("supplier_id", suppliers.SPEC),)
LISTED = {"deleted_at": None}  # lists leave soft-deleted products out unless asked


class ProductInput(Input):
    """A product as clients write it (create and full replace)."""

    sku: Sku
    name: Name
    description: Description = ""
    price_cents: PriceCents
    stock: Stock = 0
    supplier_id: Id | None = None


class ProductPatch(Input):
    """A partial update: the fields sent are changed, the others kept; none takes null."""

    sku: Sku | MISSING = MISSING
    name: Name | MISSING = MISSING
    description: Description | MISSING = MISSING
    price_cents: PriceCents | MISSING = MISSING
    stock: Stock | MISSING = MISSING
    supplier_id: Id | MISSING | None = MISSING


def _sku_taken(sku: object) -> Conflict:
    return Conflict(f"a product with sku {sku!s} already exists in this organization")


async def list_products(
    principal: Principal,
    query: ListQuery,
    *,
    show_deleted: bool = False,
    where: Mapping[str, Any] | None = None,
    **options: Any,
) -> Page:
    principal.require("products:read")
    where = {**(where or {}), **({} if show_deleted else LISTED)}
    return await list_rows(principal, SPEC, query, where=where, **options)


async def get_product(
    principal: Principal, product_id: int, fields: Collection[str] | None = None
) -> dict[str, Any]:
    """A product, also when soft-deleted (its ``deleted_at`` is then set)."""
    principal.require("products:read")
    return await fetch_row(principal, SPEC, product_id, fields)


async def create_product(principal: Principal, data: ProductInput) -> dict[str, Any]:
    principal.require("products:write")
    values = data.model_dump()
    await check_references(principal, REFERENCES, values)
    try:
        return await create_row(principal, SPEC, values)
    except IntegrityError:
        raise _sku_taken(data.sku) from None


async def update_product(
    principal: Principal,
    product_id: int,
    changes: ProductPatch | ProductInput,
    *,
    expected_versions: Collection[int] | None = None,
) -> dict[str, Any]:
    """PATCH (a ``ProductPatch``) or PUT (a ``ProductInput``) a product that is not deleted."""
    principal.require("products:write")
    values = changes.model_dump()  # a patch leaves out the fields not sent
    await check_references(principal, REFERENCES, values)
    try:
        return await change_row(
            principal,
            SPEC,
            product_id,
            values,
            expected_versions=expected_versions,
            extra={"deleted_at__isnull": True},
            guard=_not_deleted,
        )
    except IntegrityError:
        raise _sku_taken(values.get("sku")) from None


def _not_deleted(current: dict[str, Any]) -> None:
    if current["deleted_at"] is not None:
        raise Conflict(f"product {current['id']} is deleted; undelete it before changing it")


def _deleted(current: dict[str, Any]) -> None:
    if current["deleted_at"] is None:
        raise Conflict(f"product {current['id']} is not deleted")


async def delete_product(
    principal: Principal, product_id: int, *, expected_versions: Collection[int] | None = None
) -> dict[str, Any]:
    """Soft delete: the product disappears from lists and orders, and can be undeleted."""
    principal.require("products:write")
    current = await fetch_row(principal, SPEC, product_id)
    if expected_versions is not None and current["version"] not in expected_versions:
        raise stale("product", product_id)
    if current["deleted_at"] is not None:
        return current
    return await change_row(
        principal,
        SPEC,
        product_id,
        {"deleted_at": now()},
        verb="deleted",
        expected_versions=expected_versions,
    )


async def undelete_product(
    principal: Principal, product_id: int, *, expected_versions: Collection[int] | None = None
) -> dict[str, Any]:
    principal.require("products:write")
    return await change_row(
        principal,
        SPEC,
        product_id,
        {"deleted_at": None},
        verb="undeleted",
        expected_versions=expected_versions,
        guard=_deleted,
    )


async def products_by_ids(
    principal: Principal, ids: Sequence[int], fields: Collection[str] | None = None
) -> list[dict[str, Any]]:
    """The caller's products with these ids, soft-deleted ones included (orders keep them)."""
    principal.require("products:read")
    return await fetch_rows(principal, SPEC, ids, fields)


RESOURCE = Resource(
    name="product",
    plural="products",
    description="Something the organization sells; soft-deleted so order history keeps it.",
    shape=Product,
    spec=SPEC,
    list_rows=list_products,
    get=get_product,
    by_ids=products_by_ids,
    create=create_product,
    update=update_product,
    delete=delete_product,
    create_input=ProductInput,
    replace_input=ProductInput,
    patch_input=ProductPatch,
    relations=(
        Relation(
            "supplier",
            target="supplier",
            key="supplier_id",
            description="Who the product is bought from.",
        ),
    ),
    actions=(Action("undelete", "Restore a soft-deleted product", undelete_product),),
    list_options=(ListOption("show_deleted", "Include soft-deleted products."),),
    soft_delete=True,
    listed_where=LISTED,
    unique=("sku",),
    example={"sku": "MUG-01", "name": "Mug", "price_cents": 1200, "stock": 10},
    special="GraphQL: Product.sales (stats) in resolvers/types.py.",
)
