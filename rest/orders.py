"""/api/v1/orders: standard methods, :pay/:ship/:deliver/:cancel and :batchGet."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from sanic import Blueprint, HTTPResponse, Request

from db import orders
from db.errors import InvalidArgument
from rest import schemas
from rest.docs import ID_PARAM, IDEMPOTENCY_KEY, IF_MATCH, envelope, ref
from rest.idempotency import Result, respond_once
from rest.standard import Resource, add_standard_methods
from rest.wire import if_match_versions, list_data, parse_id, parse_mask

if TYPE_CHECKING:
    from rest.docs import ApiDoc

RESOURCE = Resource(
    collection="orders",
    name="order",
    schema=schemas.Order,
    create_input=orders.OrderInput,
    replace_input=orders.OrderUpdate,
    patch_input=orders.OrderPatch,
    list_rows=orders.list_orders,
    get=orders.get_order,
    create=orders.place_order,
    update=orders.update_order,
    delete=orders.delete_order,
    computed=("items",),
)

ACTIONS = {
    "pay": "Mark a pending order as paid",
    "ship": "Mark a paid order as shipped",
    "deliver": "Mark a shipped order as delivered",
    "cancel": "Cancel a pending or paid order and return its stock",
}


def _parse_ids(raw: str) -> list[int]:
    ids: list[int] = []
    for part in raw.split(","):
        part = part.strip()
        if part:
            ids.append(parse_id(part, "order"))
    return ids


def add_routes(bp: Blueprint, doc: ApiDoc) -> None:
    # Registered before the standard methods so `orders:batchGet` is not read as an id.
    async def batch_get(request: Request, method: str) -> HTTPResponse:
        mask = parse_mask(request, RESOURCE.fields)
        raw = ",".join(request.args.getlist("ids", []))
        if not raw:
            raise InvalidArgument("ids: give the order ids, e.g. ?ids=1,2,3")
        rows = await orders.batch_get_orders(request.ctx.principal, _parse_ids(raw))
        return list_data(
            request, [{k: v for k, v in r.items() if not mask or k in mask} for r in rows]
        )

    bp.add_route(
        batch_get,
        "/<method:(?P<method>orders:batchGet)>",
        methods=["GET", "HEAD"],
        name="orders_batch_get",
    )
    doc.operation(
        "get",
        "/orders:batchGet",
        summary="Get several orders at once (all or nothing)",
        operation_id="batch_get_orders",
        scope=RESOURCE.read_scope,
        tag="orders",
        response=envelope({"type": "array", "items": ref(schemas.Order)}),
        params=[
            {
                "name": "ids",
                "in": "query",
                "required": True,
                "schema": {"type": "string"},
                "description": "Comma-separated order ids (at most 100).",
            },
        ],
        errors=(400, 404),
    )

    add_standard_methods(bp, doc, RESOURCE)

    for action, summary in ACTIONS.items():
        _add_action(bp, doc, action, summary)


def _add_action(bp: Blueprint, doc: ApiDoc, action: str, summary: str) -> None:
    async def handler(request: Request, ident: str) -> HTTPResponse:
        order_id, versions = parse_id(ident, "order"), if_match_versions(request)

        async def run() -> Result:
            row = await orders.transition_order(
                request.ctx.principal, order_id, cast("orders.Action", action),
                expected_versions=versions,
            )  # fmt: skip
            return 200, row, {}

        return await respond_once(request, run)

    bp.add_route(
        handler,
        f"/orders/<ident:(?P<ident>[^/:]+):{action}>",
        methods=["POST"],
        name=f"orders_{action}",
    )
    doc.operation(
        "post",
        f"/orders/{{id}}:{action}",
        summary=summary,
        operation_id=f"{action}_order",
        scope=RESOURCE.write_scope,
        tag="orders",
        response=envelope(ref(schemas.Order)),
        params=[
            ID_PARAM,
            IF_MATCH,
            IDEMPOTENCY_KEY,
        ],
        errors=(400, 404, 409, 412, 422),
    )
