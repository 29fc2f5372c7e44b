"""/api/v1/stats/sales and /api/v1/stats/order-activity."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sanic import Blueprint, HTTPResponse, Request

from db.errors import FieldError, InvalidArgument
from db.stats import EARLIEST, LATEST, MAX_MINUTES, order_activity, sales_stats
from rest import schemas
from rest.docs import envelope, ref
from rest.wire import int_arg, list_data, single

if TYPE_CHECKING:
    from rest.docs import ApiDoc


def _time_arg(request: Request, name: str) -> datetime | None:
    """The time in query parameter ``name``, None when absent (db/ picks the default)."""
    raw = request.args.get(name)
    if not raw:
        return None
    value: datetime | None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
        if value.tzinfo is not None and not EARLIEST <= value <= LATEST:
            value = None
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise InvalidArgument(
            f"{name}: expected an RFC 3339 time with a zone between {EARLIEST:%Y-%m-%d} and "
            f"{LATEST:%Y-%m-%d}, e.g. 2024-01-01T00:00:00Z, got {raw!r}",
            errors=[FieldError(("query", name), "expected an RFC 3339 time", "datetime_parsing")],
        )
    return value.astimezone(UTC)


def add_routes(bp: Blueprint, doc: ApiDoc) -> None:
    async def sales(request: Request) -> HTTPResponse:
        end = _time_arg(request, "end")
        start = _time_arg(request, "start")
        rows = await sales_stats(
            request.ctx.principal,
            start=start,
            end=end,
            granularity=request.args.get("granularity", "day"),
        )
        return list_data(request, rows)

    bp.add_route(sales, "/stats/sales", methods=["GET", "HEAD"], name="stats_sales")
    doc.operation(
        "get",
        "/stats/sales",
        summary="Order count and revenue per day or hour",
        operation_id="sales_stats",
        scope="stats:read",
        tag="stats",
        response=envelope({"type": "array", "items": ref(schemas.SalesBucket)}),
        params=[
            {
                "name": "start",
                "in": "query",
                "schema": {"type": "string", "format": "date-time"},
                "description": "Inclusive start (default: 30 days before end).",
            },
            {
                "name": "end",
                "in": "query",
                "schema": {"type": "string", "format": "date-time"},
                "description": "Exclusive end (default: now).",
            },
            {
                "name": "granularity",
                "in": "query",
                "schema": {"type": "string", "enum": ["day", "hour"], "default": "day"},
            },
        ],
        errors=(400,),
        models=(schemas.SalesBucket,),
    )

    async def activity(request: Request) -> HTTPResponse:
        """The numbers and the change log's head they are as of, in one snapshot: follow
        the change stream after ``position`` to stay exact (as /dashboard does)."""
        minutes = int_arg(request, "minutes")
        found = await order_activity(
            request.ctx.principal, minutes=30 if minutes is None else minutes
        )
        found["status_counts"] = [
            {"status": status, "count": count} for status, count in found["status_counts"].items()
        ]
        return single(request, found)

    bp.add_route(
        activity, "/stats/order-activity", methods=["GET", "HEAD"], name="stats_order_activity"
    )
    doc.operation(
        "get",
        "/stats/order-activity",
        summary="Orders at a glance, as of a stream position (GraphQL orderActivity)",
        operation_id="order_activity",
        scope="stats:read",
        tag="stats",
        response=envelope(ref(schemas.OrderActivity)),
        models=(schemas.OrderActivity,),
        params=[
            {
                "name": "minutes",
                "in": "query",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_MINUTES, "default": 30},
                "description": "How many whole UTC minutes `per_minute` covers, the current last.",
            },
        ],
    )
