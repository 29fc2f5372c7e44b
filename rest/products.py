"""/api/v1/products, soft delete and :undelete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sanic import Blueprint, HTTPResponse, Request

from db import products
from rest import schemas
from rest.docs import ID_PARAM, IDEMPOTENCY_KEY, IF_MATCH, envelope, ref
from rest.idempotency import Result, respond_once
from rest.standard import Resource, add_standard_methods
from rest.wire import bool_arg, if_match_versions, parse_id

if TYPE_CHECKING:
    from rest.docs import ApiDoc


def _list_options(request: Request) -> dict[str, Any]:
    return {"show_deleted": bool_arg(request, "show_deleted")}


RESOURCE = Resource(
    collection="products",
    name="product",
    schema=schemas.Product,
    create_input=products.ProductInput,
    replace_input=products.ProductInput,
    patch_input=products.ProductPatch,
    list_rows=products.list_products,
    get=products.get_product,
    create=products.create_product,
    update=products.update_product,
    delete=products.delete_product,
    list_options=_list_options,
    list_params=[
        {
            "name": "show_deleted",
            "in": "query",
            "schema": {"type": "boolean"},
            "description": "Include soft-deleted products.",
        }
    ],
)


def add_routes(bp: Blueprint, doc: ApiDoc) -> None:
    add_standard_methods(bp, doc, RESOURCE)

    async def undelete(request: Request, ident: str) -> HTTPResponse:
        product_id, versions = parse_id(ident, "product"), if_match_versions(request)

        async def run() -> Result:
            row = await products.undelete_product(
                request.ctx.principal, product_id, expected_versions=versions
            )
            return 200, row, {}

        return await respond_once(request, run)

    bp.add_route(
        undelete,
        "/products/<ident:(?P<ident>[^/:]+):undelete>",
        methods=["POST"],
        name="products_undelete",
    )
    doc.operation(
        "post",
        "/products/{id}:undelete",
        summary="Restore a soft-deleted product",
        operation_id="undelete_product",
        scope=RESOURCE.write_scope,
        tag="products",
        response=envelope(ref(schemas.Product)),
        params=[
            ID_PARAM,
            IF_MATCH,
            IDEMPOTENCY_KEY,
        ],
        errors=(400, 404, 409, 412, 422),
    )
