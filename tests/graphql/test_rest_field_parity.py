"""Every REST field of a resource is a GraphQL field of its type (camelCase), and back.

REST's integer ``id`` is ``databaseId`` in GraphQL (``id`` is the global id there);
declared relations and what a resource adds by hand (``items``, ``sales``) are the
only fields on one side. Every declared resource takes part (``db/catalog.py``).
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from db.catalog import CATALOG
from db.orders import OrderItem
from db.webhook_log import WebhookDeadLetter, WebhookDelivery
from resolvers.schema import build_schema
from rest import schemas

schema = build_schema()
# Order.items, Product.sales, OrderItem.product; WebhookEndpoint's lists (REST: sub-collections)
EXTRA = {"items", "sales", "product", "deliveries", "dead_letters"}


def snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


MODELS = [(r.shape, r.type_name, {rel.name for rel in r.relations}) for r in CATALOG.resources]


@pytest.mark.parametrize(
    ("rest_model", "type_name", "relations"),
    [
        *MODELS,
        (OrderItem, "OrderItem", set()),
        (schemas.SalesBucket, "SalesBucket", set()),
        (WebhookDelivery, "WebhookDelivery", set()),
        (WebhookDeadLetter, "WebhookDeadLetter", set()),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_graphql_types_carry_the_rest_fields(
    rest_model: type[BaseModel], type_name: str, relations: set[str]
) -> None:
    gql_type = schema._schema.type_map[type_name]
    graphql_fields = {snake(name) for name in gql_type.fields} - relations - EXTRA
    graphql_fields = {"id" if f == "database_id" else f for f in graphql_fields}
    rest_fields = set(rest_model.model_fields) - EXTRA
    if type_name in CATALOG.by_type:
        graphql_fields.add("id")  # the global id stands beside databaseId
    assert graphql_fields == rest_fields
