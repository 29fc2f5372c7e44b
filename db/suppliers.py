"""Suppliers: who an organization buys its products from (``products.supplier_id``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import MISSING, BaseModel, Field

from db import models
from db.crud import Crud, Restrict, plain_resource
from db.declare import Relation, list_spec
from db.inputs import Email, Input, Line

Name = Annotated[Line, Field(min_length=1, max_length=200)]
EmailAddress = Annotated[Email, Field(max_length=254)]
Country = Annotated[
    str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code, e.g. DE.")
]


class Supplier(BaseModel):
    id: int
    name: str = Field(description="The supplier's trading name.")
    email: str = Field(description="Where purchase orders go; unique per organization.")
    country: str = Field(description="ISO 3166-1 alpha-2 country code.")
    version: int
    created_at: datetime
    updated_at: datetime


class SupplierInput(Input):
    """A supplier as clients write it (create and full replace)."""

    name: Name
    email: EmailAddress
    country: Country


class SupplierPatch(Input):
    """A partial update: the fields sent are changed, the others kept; none takes null."""

    name: Name | MISSING = MISSING
    email: EmailAddress | MISSING = MISSING
    country: Country | MISSING = MISSING


SPEC = list_spec(
    "supplier",
    models.Supplier,
    Supplier,
    filter=("id", "name", "email", "country", "created_at", "updated_at"),
    sort=("id", "name", "email", "country", "created_at", "updated_at"),
)
CRUD = Crud(
    SPEC,
    "suppliers",
    unique=("email",),
    restrict=(Restrict(models.Product, "supplier_id", "products"),),
)

RESOURCE = plain_resource(
    CRUD,
    description="A company the organization buys products from.",
    shape=Supplier,
    create_input=SupplierInput,
    replace_input=SupplierInput,
    patch_input=SupplierPatch,
    relations=(
        Relation(
            "products",
            target="product",
            key="supplier_id",
            many=True,
            description="The products bought from this supplier, newest first.",
        ),
    ),
    example={"name": "Acme Wholesale", "email": "orders@acme.example", "country": "DE"},
)
