"""/api/v1/orders:batchGet: what orders add by hand to their declared routes (db/orders.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sanic import Blueprint, HTTPResponse, Request

from db import orders
from db.errors import InvalidArgument
from rest.docs import envelope, ref
from rest.wire import list_data, parse_id, parse_mask

if TYPE_CHECKING:
    from rest.docs import ApiDoc

RESOURCE = orders.RESOURCE


def _parse_ids(raw: str) -> list[int]:
    ids: list[int] = []
    for part in raw.split(","):
        part = part.strip()
        if part:
            ids.append(parse_id(part, "order"))
    return ids


def add_routes(bp: Blueprint, doc: ApiDoc) -> None:
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
        response=envelope({"type": "array", "items": ref(RESOURCE.shape)}),
        params=[
            {
                "name": "ids",
                "in": "query",
                "required": True,
                "schema": {"type": "string"},
                "description": f"Comma-separated order ids (at most {orders.MAX_BATCH_GET}).",
            },
        ],
        errors=(400, 404),
    )
