"""Customers: the people and companies an organization sells to."""

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


class Customer(BaseModel):
    id: int
    name: str
    email: str = Field(description="Unique per organization.")
    version: int
    created_at: datetime
    updated_at: datetime


class CustomerInput(Input):
    """A customer as clients write it (create and full replace)."""

    name: Name
    email: EmailAddress


class CustomerPatch(Input):
    """A partial update: the fields sent are changed, the others kept; none takes null."""

    name: Name | MISSING = MISSING
    email: EmailAddress | MISSING = MISSING


SPEC = list_spec(
    "customer",
    models.Customer,
    Customer,
    filter=("id", "name", "email", "created_at", "updated_at"),
    sort=("id", "name", "email", "created_at", "updated_at"),
)
# Customers with order history stay: orders keep their customer.
CRUD = Crud(
    SPEC,
    "customers",
    unique=("email",),
    restrict=(Restrict(models.Order, "customer_id", "orders"),),
)
list_customers = CRUD.list_rows
get_customer = CRUD.get
create_customer = CRUD.create
update_customer = CRUD.update
delete_customer = CRUD.delete
customers_by_ids = CRUD.by_ids

RESOURCE = plain_resource(
    CRUD,
    description="A person or company the organization sells to.",
    shape=Customer,
    create_input=CustomerInput,
    replace_input=CustomerInput,
    patch_input=CustomerPatch,
    relations=(
        Relation(
            "orders",
            target="order",
            key="customer_id",
            many=True,
            description="The customer's newest orders.",
        ),
    ),
    example={"name": "Ada Lovelace", "email": "ada@example.com"},
)
