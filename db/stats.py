"""Sales statistics, aggregated by the database."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from db.errors import InvalidArgument, Unavailable
from db.principal import Principal
from db.sql import Params, client, select

Granularity = Literal["day", "hour"]
MAX_BUCKETS = 1_000
STEP = {"day": timedelta(days=1), "hour": timedelta(hours=1)}
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)

# Revenue counts orders that were paid (paid, shipped, delivered); order_count
# counts every order placed in the bucket except cancelled ones.
_POSTGRES = """
SELECT date_trunc('{unit}', created_at AT TIME ZONE 'UTC') AS bucket,
       count(*) AS order_count,
       coalesce(sum(total_cents) FILTER (WHERE status IN ('paid', 'shipped', 'delivered')), 0)
           AS revenue_cents
FROM orders
WHERE organization_id = $1 AND created_at >= $2 AND created_at < $3 AND status <> 'cancelled'
GROUP BY 1 ORDER BY 1
"""
_SQLITE = """
SELECT strftime('{fmt}', created_at) AS bucket,
       count(*) AS order_count,
       coalesce(sum(CASE WHEN status IN ('paid', 'shipped', 'delivered')
                    THEN total_cents ELSE 0 END), 0) AS revenue_cents
FROM orders
WHERE organization_id = ? AND created_at >= ? AND created_at < ? AND status <> 'cancelled'
GROUP BY 1 ORDER BY 1
"""
_SQLITE_FORMAT = {"day": "%Y-%m-%d 00:00:00", "hour": "%Y-%m-%d %H:00:00"}


def _floor(moment: datetime, granularity: Granularity) -> datetime:
    moment = moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if granularity == "day" else moment


DEFAULT_SPAN = timedelta(days=30)


async def sales_stats(
    principal: Principal,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    granularity: str = "day",
) -> list[dict[str, Any]]:
    """Order count and revenue per bucket in ``[start, end)``, empty buckets included.

    ``end`` defaults to now and ``start`` to ``DEFAULT_SPAN`` before ``end``.
    """
    principal.require("stats:read")
    if granularity not in STEP:
        raise InvalidArgument(f"granularity: use day or hour, not {granularity!r}")
    unit: Granularity = "day" if granularity == "day" else "hour"
    end = end or datetime.now(UTC)
    start = start or end - DEFAULT_SPAN
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidArgument("start and end need a time zone (e.g. 2024-01-01T00:00:00Z)")
    if start < EARLIEST or end > LATEST:
        raise InvalidArgument(
            f"start and end must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}"
        )
    # Buckets are UTC days/hours whatever offset the caller used.
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        raise InvalidArgument("end must be after start")
    first = _floor(start, unit)
    if (end - first) / STEP[unit] > MAX_BUCKETS:
        raise InvalidArgument(f"at most {MAX_BUCKETS} {unit} buckets per request; narrow start/end")
    conn = client()
    if conn.capabilities.dialect == "sqlite":
        sql = _SQLITE.format(fmt=_SQLITE_FORMAT[unit])
        params: list[Any] = [principal.organization_id, _sqlite_time(start), _sqlite_time(end)]
    else:
        sql = _POSTGRES.format(unit=unit)
        params = [principal.organization_id, start, end]
    rows = await conn.execute_query_dict(sql, params)
    found = {_bucket_key(row["bucket"]): row for row in rows}
    buckets: list[dict[str, Any]] = []
    moment = first
    while moment < end:
        row = found.get(moment.strftime("%Y-%m-%d %H"), {})
        buckets.append(
            {
                "start": moment,
                "order_count": int(row.get("order_count", 0)),
                "revenue_cents": int(row.get("revenue_cents", 0)),
            }
        )
        moment += STEP[unit]
    return buckets


def _sqlite_time(moment: datetime) -> str:
    # The same text form Tortoise stores, so string comparison orders correctly.
    return moment.astimezone(UTC).isoformat(" ")


def _bucket_key(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H")
    return str(value)[:13]


PAID = ("paid", "shipped", "delivered")


async def sales_of_products(
    principal: Principal, product_ids: Sequence[int]
) -> dict[int, dict[str, int]]:
    """Units sold, revenue and number of orders per product, over paid orders.

    Paid means paid, shipped or delivered, as for ``sales_stats``' revenue; the
    revenue is what the lines were sold for (quantity times unit price). Every
    asked id gets an entry (zeros when nothing sold, or not the caller's).
    """
    principal.require("stats:read")
    found = {i: {"units_sold": 0, "revenue_cents": 0, "order_count": 0} for i in product_ids}
    if not product_ids:
        return found
    p = Params(principal.organization_id)
    statuses = ", ".join(p(s) for s in PAID)
    rows = await select(
        "SELECT i.product_id, sum(i.quantity) AS units_sold, "
        "sum(i.quantity * i.unit_price_cents) AS revenue_cents, "
        "count(DISTINCT i.order_id) AS order_count "
        "FROM order_items i JOIN orders o ON o.id = i.order_id "
        f"WHERE o.organization_id = $1 AND o.status IN ({statuses}) "
        f"AND {p.among('i.product_id', product_ids)} GROUP BY i.product_id",
        p.values,
    )
    for row in rows:
        found[row["product_id"]] = {
            "units_sold": int(row["units_sold"]),
            "revenue_cents": int(row["revenue_cents"]),
            "order_count": int(row["order_count"]),
        }
    return found


# The live dashboard's numbers (``/dashboard``), and the stream position they are as
# of, read by ONE statement: one snapshot of the database on both backends, so the
# counts hold exactly the order events numbered up to ``position``. Events are
# numbered after they commit (``db.events``); while one of this organization's order
# events waits for its number, the counts would hold an order whose event comes after
# ``position`` (a subscriber resuming there would count it twice), so the read waits.
_ACTIVITY = """
SELECT 'head' AS kind, '' AS k, coalesce(max(position), 0) AS n, 0 AS cents FROM events
UNION ALL
SELECT 'unnumbered', '', count(*), 0 FROM events
WHERE position IS NULL AND organization_id = $1 AND resource = 'order'
UNION ALL
SELECT 'status', status, count(*), 0 FROM orders WHERE organization_id = $1 GROUP BY status
UNION ALL
SELECT 'today', '', count(*),
       coalesce(sum(CASE WHEN status IN ('paid', 'shipped', 'delivered')
                    THEN total_cents ELSE 0 END), 0)
FROM orders WHERE organization_id = $1 AND created_at >= $2
UNION ALL
SELECT 'minute', {minute}, count(*), 0 FROM orders
WHERE organization_id = $1 AND created_at >= $3 GROUP BY 2
"""
_MINUTE = {
    "postgres": "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')",
    "sqlite": "strftime('%Y-%m-%d %H:%M', created_at)",
}
MAX_MINUTES = 180
NUMBERING_WAIT = 5.0  # seconds: the relay numbers within milliseconds when it runs
_NUMBERING_POLL = 0.01  # the first wait for the relay; doubling up to the next
_NUMBERING_POLL_MAX = 0.2
_UNNUMBERED = (
    "SELECT count(*) AS n FROM events"
    " WHERE position IS NULL AND organization_id = $1 AND resource = 'order'"
)


async def _unnumbered_orders(organization_id: int) -> int:
    """How many of the organization's order events still wait for their number."""
    rows = await select(_UNNUMBERED, [organization_id])
    return int(rows[0]["n"])


async def order_activity(
    principal: Principal,
    *,
    minutes: int = 30,
    now: datetime | None = None,
    wait: float = NUMBERING_WAIT,
) -> dict[str, Any]:
    """Orders at a glance, as of a stream position: subscribe after it to stay exact.

    ``position``: the change log's head the numbers are as of; ``orders_today``: every
    order created since 00:00 UTC (cancelled ones too) and ``revenue_today_cents``
    those of them paid (paid, shipped, delivered, as ``sales_stats`` counts revenue);
    ``status_counts``: every status, zeros included; ``per_minute``: orders created in
    each of the last ``minutes`` whole UTC minutes, the current one last. A
    subscriber applies the events after ``position`` to these (``order.created``: one
    more order in its minute, today and pending) and they stay what this would say.
    """
    principal.require("stats:read")
    if isinstance(minutes, bool) or not 1 <= minutes <= MAX_MINUTES:
        raise InvalidArgument(f"minutes: a whole number from 1 to {MAX_MINUTES}, not {minutes!r}")
    now = (now or datetime.now(UTC)).astimezone(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    first = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    conn = client()
    sqlite = conn.capabilities.dialect == "sqlite"
    sql = _ACTIVITY.format(minute=_MINUTE["sqlite" if sqlite else "postgres"])
    times = [_sqlite_time(today), _sqlite_time(first)] if sqlite else [today, first]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    pause = _NUMBERING_POLL
    while True:
        rows = await select(sql, [principal.organization_id, *times])
        pending = sum(int(r["n"]) for r in rows if r["kind"] == "unnumbered")
        if not pending:
            break
        # Wait on the cheap question (one index probe), not the whole statement: a
        # stalled relay must not turn one request into hundreds of full reads.
        while pending:
            if loop.time() >= deadline:
                raise Unavailable("the change log is not numbered yet (is the relay running?)")
            await asyncio.sleep(pause)
            pause = min(pause * 2, _NUMBERING_POLL_MAX)
            pending = await _unnumbered_orders(principal.organization_id)
    statuses = dict.fromkeys(("pending", "paid", "shipped", "delivered", "cancelled"), 0)
    per_minute = dict.fromkeys(
        ((first + timedelta(minutes=m)).strftime("%Y-%m-%d %H:%M") for m in range(minutes)), 0
    )
    found: dict[str, Any] = {"orders_today": 0, "revenue_today_cents": 0}
    for row in rows:
        kind, key, n = row["kind"], str(row["k"]), int(row["n"])
        if kind == "head":
            found["position"] = n
        elif kind == "status":
            statuses[key] = n
        elif kind == "today":
            found["orders_today"], found["revenue_today_cents"] = n, int(row["cents"])
        elif kind == "minute" and key in per_minute:
            per_minute[key] = n
    return {
        **found,
        "as_of": now,
        "status_counts": statuses,
        "per_minute": [
            {"start": first + timedelta(minutes=m), "order_count": count}
            for m, count in enumerate(per_minute.values())
        ],
    }
