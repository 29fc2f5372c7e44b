"""Customers: the people and companies an organization sells to."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Annotated, Any

from pydantic import MISSING, Field
from tortoise.exceptions import IntegrityError

from db.errors import Conflict
from db.events import record_event, writing
from db.filtering import FilterField
from db.inputs import Email, Input, Line
from db.listing import ListQuery, Page, ResourceSpec, fetch_row, fetch_rows, list_rows
from db.models import Customer, Order
from db.principal import Principal
from db.rows import change_row, create_row, explain_miss, stale

SPEC = ResourceSpec(
    name="customer",
    model=Customer,
    columns=("id", "name", "email", "version", "created_at", "updated_at"),
    filterable={
        "id": FilterField("int"),
        "name": FilterField("str"),
        "email": FilterField("str"),
        "created_at": FilterField("datetime"),
        "updated_at": FilterField("datetime"),
    },
    sortable=("id", "name", "email", "created_at", "updated_at"),
)


Name = Annotated[Line, Field(min_length=1, max_length=200)]
EmailAddress = Annotated[Email, Field(max_length=254)]


class CustomerInput(Input):
    """A customer as clients write it (create and full replace)."""

    name: Name
    email: EmailAddress


class CustomerPatch(Input):
    """A partial update: the fields sent are changed, the others kept; none takes null."""

    name: Name | MISSING = MISSING
    email: EmailAddress | MISSING = MISSING


def _email_taken(email: object) -> Conflict:
    return Conflict(f"a customer with email {email!s} already exists in this organization")


async def list_customers(principal: Principal, query: ListQuery, **options: Any) -> Page:
    principal.require("customers:read")
    return await list_rows(principal, SPEC, query, **options)


async def get_customer(principal: Principal, customer_id: int) -> dict[str, Any]:
    principal.require("customers:read")
    return await fetch_row(principal, SPEC, customer_id)


async def create_customer(principal: Principal, data: CustomerInput) -> dict[str, Any]:
    principal.require("customers:write")
    try:
        return await create_row(principal, SPEC, data.model_dump(mode="json"))
    except IntegrityError:
        raise _email_taken(data.email) from None


async def update_customer(
    principal: Principal,
    customer_id: int,
    changes: CustomerPatch | CustomerInput,
    *,
    expected_versions: Collection[int] | None = None,
) -> dict[str, Any]:
    """PATCH (a ``CustomerPatch``: the fields sent) or PUT (a ``CustomerInput``: all fields)."""
    principal.require("customers:write")
    values = changes.model_dump(mode="json")  # a patch leaves out the fields not sent
    try:
        return await change_row(
            principal, SPEC, customer_id, values, expected_versions=expected_versions
        )
    except IntegrityError:
        raise _email_taken(values.get("email")) from None


async def delete_customer(
    principal: Principal, customer_id: int, *, expected_versions: Collection[int] | None = None
) -> None:
    """Delete a customer who has no orders (orders keep their customer)."""
    principal.require("customers:write")
    async with writing():
        row = await fetch_row(principal, SPEC, customer_id)
        if expected_versions is not None and row["version"] not in expected_versions:
            raise stale("customer", customer_id)
        if await Order.filter(customer_id=customer_id).exists():
            raise Conflict(
                f"customer {customer_id} has orders and cannot be deleted; "
                "customers with order history stay"
            )
        deleted = await Customer.filter(
            id=customer_id, organization_id=principal.organization_id, version=row["version"]
        ).delete()
        if not deleted:
            raise await explain_miss(principal, Customer, "customer", customer_id)
        await record_event(
            principal,
            type="customer.deleted",
            resource="customer",
            resource_id=customer_id,
            snapshot=row,
        )


async def customers_by_ids(
    principal: Principal, ids: Sequence[int], fields: Collection[str] | None = None
) -> list[dict[str, Any]]:
    """The caller's customers with these ids (missing or foreign ones are left out)."""
    principal.require("customers:read")
    return await fetch_rows(principal, SPEC, ids, fields)
