"""What GraphQL adds by hand to the derived ``WebhookEndpoint`` (``db/webhooks.py``):
its delivery log and dead letters (the replay mutations: ``resolvers.webhook_mutations``).

``WebhookEndpoint.deliveries`` and ``WebhookEndpoint.deadLetters`` are the lists REST
serves at ``/api/v1/webhook-endpoints/{id}/deliveries`` and ``.../dead-letters``
(``db.webhook_log``: the same filter grammar, ``orderBy`` and keyset cursors, newest
first). Each endpoint's list is one query: a page of
endpoints asking for deliveries costs a query per endpoint, which the cost limit
(``resolvers/limits.py``) counts like any nested list.

This module imports nothing from ``resolvers.types``: that module merges
``WebhookEndpointExtras`` into the type it derives (``EXTRAS``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from db import webhook_log
from db.listing import ListQuery, Page
from resolvers.context import Context
from resolvers.pages import PageInfo
from resolvers.positions import StreamPosition

Info = strawberry.Info[Context, None]
# ``resolvers.types.COLUMNS``: the row columns a field reads (only the endpoint's id).
READS_ID = {"gateway.columns": ("id",)}


@strawberry.type(description="One attempt to deliver one event to a webhook endpoint.")
class WebhookDelivery:
    database_id: int
    position: StreamPosition = strawberry.field(
        description="The event's position (its webhook-id)."
    )
    event_type: str
    attempt: int = strawberry.field(description="1 for the first try of this event.")
    outcome: str = strawberry.field(description="delivered, failed, timeout, refused or error")
    http_status: int | None
    latency_ms: int
    response_excerpt: str = strawberry.field(description="The first bytes of the answer.")
    error: str | None
    replay: bool = strawberry.field(description="Whether it sent a replayed dead letter.")
    created_at: datetime


@strawberry.type(description="An event a webhook endpoint never accepted, kept to replay.")
class WebhookDeadLetter:
    database_id: int
    position: StreamPosition = strawberry.field(
        description="The event's position (its webhook-id)."
    )
    event_type: str
    event: JSON = strawberry.field(description="The event JSON that was sent.")
    attempts: int
    last_error: str
    status: str = strawberry.field(description="dead, replay_requested or replayed")
    replayed_at: datetime | None
    created_at: datetime


def as_object(cls: type, row: dict[str, Any]) -> Any:
    values = dict(row)
    values["database_id"] = values.pop("id")
    return cls(**values)


@strawberry.type
class WebhookDeliveryEdge:
    cursor: str
    node: WebhookDelivery


@strawberry.type
class WebhookDeliveryConnection:
    edges: list[WebhookDeliveryEdge]
    nodes: list[WebhookDelivery]
    page_info: PageInfo


@strawberry.type
class WebhookDeadLetterEdge:
    cursor: str
    node: WebhookDeadLetter


@strawberry.type
class WebhookDeadLetterConnection:
    edges: list[WebhookDeadLetterEdge]
    nodes: list[WebhookDeadLetter]
    page_info: PageInfo


async def _page(
    info: Info,
    lister: Callable[..., Awaitable[Page]],
    endpoint_id: int,
    first: int | None,
    after: str | None,
    filter: str | None,
    order_by: str | None,
) -> tuple[Page, list[str]]:
    ctx = info.context
    query = ListQuery(filter=filter, order_by=order_by, page_size=first, page_token=after)
    page = await lister(
        ctx.principal,
        endpoint_id,
        query,
        default_page_size=ctx.page_size_default,
        max_page_size=ctx.page_size_max,
        cursors=True,
    )
    return page, page.cursors or []


def _page_info(page: Page, cursors: list[str]) -> PageInfo:
    return PageInfo(
        has_next_page=page.next_page_token is not None,
        end_cursor=cursors[-1] if cursors else None,
    )


class WebhookEndpointExtras:
    @strawberry.field(  # type: ignore[untyped-decorator]
        description="Delivery attempts, newest first; filter on "
        f"{', '.join(sorted(webhook_log.DELIVERIES.filterable))}.",
        metadata=READS_ID,
    )
    async def deliveries(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        filter: str | None = None,
        order_by: str | None = None,
    ) -> WebhookDeliveryConnection:
        endpoint_id = self.database_id  # type: ignore[attr-defined]
        lister = webhook_log.list_deliveries
        page, cursors = await _page(info, lister, endpoint_id, first, after, filter, order_by)
        nodes = [as_object(WebhookDelivery, row) for row in page.items]
        return WebhookDeliveryConnection(
            edges=[
                WebhookDeliveryEdge(cursor=c, node=n) for c, n in zip(cursors, nodes, strict=True)
            ],
            nodes=nodes,
            page_info=_page_info(page, cursors),
        )

    @strawberry.field(  # type: ignore[untyped-decorator]
        description="Events given up on, newest first; filter on "
        f"{', '.join(sorted(webhook_log.DEAD_LETTERS.filterable))}.",
        metadata=READS_ID,
    )
    async def dead_letters(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        filter: str | None = None,
        order_by: str | None = None,
    ) -> WebhookDeadLetterConnection:
        endpoint_id = self.database_id  # type: ignore[attr-defined]
        lister = webhook_log.list_dead_letters
        page, cursors = await _page(info, lister, endpoint_id, first, after, filter, order_by)
        nodes = [as_object(WebhookDeadLetter, row) for row in page.items]
        return WebhookDeadLetterConnection(
            edges=[
                WebhookDeadLetterEdge(cursor=c, node=n) for c, n in zip(cursors, nodes, strict=True)
            ],
            nodes=nodes,
            page_info=_page_info(page, cursors),
        )
