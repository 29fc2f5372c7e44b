"""/api/v1/customers and /api/v1/customers/{id}/orders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sanic import Blueprint, HTTPResponse, Request

from db import customers, orders
from rest import schemas
from rest.docs import ID_PARAM, IF_NONE_MATCH, LIST_PARAMS, envelope, ref
from rest.standard import Resource, add_standard_methods, page_limits
from rest.wire import collection, list_query, parse_id, parse_mask

if TYPE_CHECKING:
    from rest.docs import ApiDoc

RESOURCE = Resource(
    collection="customers",
    name="customer",
    schema=schemas.Customer,
    create_input=customers.CustomerInput,
    replace_input=customers.CustomerInput,
    patch_input=customers.CustomerPatch,
    list_rows=customers.list_customers,
    get=customers.get_customer,
    create=customers.create_customer,
    update=customers.update_customer,
    delete=customers.delete_customer,
)


def add_routes(bp: Blueprint, doc: ApiDoc) -> None:
    add_standard_methods(bp, doc, RESOURCE)

    async def customer_orders(request: Request, ident: str) -> HTTPResponse:
        mask = parse_mask(request, tuple(schemas.Order.model_fields))
        page = await orders.list_orders(
            request.ctx.principal,
            list_query(request),
            customer_id=parse_id(ident, "customer"),
            fields=mask,
            **page_limits(request),
        )
        return collection(request, page, mask=mask)

    bp.add_route(
        customer_orders,
        "/customers/<ident:(?P<ident>[^/:]+)>/orders",
        methods=["GET", "HEAD"],
        name="customers_orders",
    )
    doc.operation(
        "get",
        "/customers/{id}/orders",
        summary="List a customer's orders",
        operation_id="list_customer_orders",
        scope="orders:read",
        tag="customers",
        response=envelope({"type": "array", "items": ref(schemas.Order)}, paginated=True),
        params=[
            ID_PARAM,
            *LIST_PARAMS,
            IF_NONE_MATCH,
        ],
        errors=(400, 404),
        models=(schemas.Order,),
    )
