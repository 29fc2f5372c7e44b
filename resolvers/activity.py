"""``orderActivity``: the live dashboard's numbers as of a stream position (``db.stats``).

A client reads them, then subscribes to ``orderEvents(after: position)`` and applies
each event to them: nothing is counted twice or missed, across reconnects too
(``gateway/static/dashboard.js`` does so).
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from db import stats
from resolvers.positions import StreamPosition
from resolvers.types import Info


@strawberry.type
class StatusCount:
    status: str
    count: int


@strawberry.type
class MinuteBucket:
    start: datetime
    order_count: int


@strawberry.type
class OrderActivity:
    position: StreamPosition = strawberry.field(
        description="The change log's head these numbers are as of: subscribe after it."
    )
    as_of: datetime
    orders_today: int = strawberry.field(
        description="Orders created since 00:00 UTC, cancelled ones too."
    )
    revenue_today_cents: int = strawberry.field(
        description="The total of today's orders that were paid (paid, shipped, delivered)."
    )
    status_counts: list[StatusCount] = strawberry.field(description="Every status, zeros too.")
    per_minute: list[MinuteBucket] = strawberry.field(
        description="Orders created in each of the last `minutes` UTC minutes, the current last."
    )


@strawberry.type
class ActivityQuery:
    @strawberry.field(  # type: ignore[untyped-decorator]
        description="Orders at a glance (needs stats:read), as of a stream position: "
        "subscribe to orderEvents(after: position) to keep them exact."
    )
    async def order_activity(self, info: Info, minutes: int = 30) -> OrderActivity:
        found = await stats.order_activity(info.context.principal, minutes=minutes)
        return OrderActivity(
            position=StreamPosition(found["position"]),
            as_of=found["as_of"],
            orders_today=found["orders_today"],
            revenue_today_cents=found["revenue_today_cents"],
            status_counts=[
                StatusCount(status=s, count=n) for s, n in found["status_counts"].items()
            ],
            per_minute=[
                MinuteBucket(start=b["start"], order_count=b["order_count"])
                for b in found["per_minute"]
            ],
        )
