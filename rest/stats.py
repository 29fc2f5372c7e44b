"""/api/v1/stats/sales."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sanic import Blueprint, HTTPResponse, Request

from db.errors import FieldError, InvalidArgument
from db.stats import EARLIEST, LATEST, sales_stats
from rest import schemas
from rest.docs import envelope, ref
from rest.wire import list_data

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
