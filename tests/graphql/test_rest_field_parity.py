"""Every REST field of a resource is a GraphQL field of its type (camelCase), and back.

REST's integer ``id`` is ``databaseId`` in GraphQL (``id`` is the global id there);
relations (``customer``, ``items``, ``product``, ``orders``, ``sales``) are GraphQL-only fields.
A field added to one side only fails here.
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from resolvers.schema import schema
from rest import schemas

RELATIONS = {"customer", "items", "product", "orders", "sales"}


def snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


@pytest.mark.parametrize(
    ("rest_model", "type_name"),
    [
        (schemas.Customer, "Customer"),
        (schemas.Product, "Product"),
        (schemas.Order, "Order"),
        (schemas.OrderItem, "OrderItem"),
        (schemas.SalesBucket, "SalesBucket"),
    ],
)
def test_graphql_types_carry_the_rest_fields(rest_model: type[BaseModel], type_name: str) -> None:
    gql_type = schema._schema.type_map[type_name]
    graphql_fields = {snake(name) for name in gql_type.fields} - RELATIONS
    graphql_fields = {"id" if f == "database_id" else f for f in graphql_fields}
    rest_fields = set(rest_model.model_fields) - RELATIONS
    if type_name in {"Customer", "Product", "Order"}:
        graphql_fields.add("id")  # the global id stands beside databaseId
    assert graphql_fields == rest_fields
