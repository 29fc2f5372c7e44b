"""GraphQL subscriptions: the change stream, typed, over WebSocket (``resolvers/ws.py``).

``orderEvents``, ``productEvents`` and ``customerEvents`` follow one resource,
``changes`` several. Each takes ``after`` (resume after a stream position: the
events missed since then come first, then live ones) and, for one resource,
``filter`` (the REST filter grammar, on the event's snapshot). An event carries
its ``position`` and the resource as it was after the change, typed, so
clients select fields as from a query. The same hub as the JSON channel and SSE
serves them (``realtime/hub.py``): same organization and scope checks, same
resume and backpressure rules.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from datetime import datetime
from typing import Annotated, Any, NewType

import strawberry
from strawberry.types import Info

from db.errors import InvalidArgument
from db.events import parse_position
from realtime.hub import Hub, Mailbox, MailboxClosed, StreamEvent
from realtime.topics import TOPICS
from resolvers.types import Customer, Order, Product


def _parse_position(value: object) -> int:
    position = parse_position(value)
    if position is None:
        raise ValueError("a StreamPosition is a non-negative 64-bit integer")
    return position


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


StreamPosition = NewType("StreamPosition", int)
STREAM_POSITION = strawberry.scalar(
    name="StreamPosition",
    description="A position in the change stream: a 64-bit integer, gap-free and increasing.",
    serialize=int,
    parse_value=_parse_position,
)

_TIMES = ("created_at", "updated_at", "deleted_at")
_TYPES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "order": Order.from_row,
    "product": Product.from_row,
    "customer": Customer.from_row,
}


def _typed(resource: str, snapshot: dict[str, Any]) -> Any:
    row = dict(snapshot)
    for column in _TIMES:
        value = row.get(column)
        if isinstance(value, str):
            row[column] = _time(value)
    return _TYPES[resource](row)


@strawberry.type(description="A committed change, in stream order.")
class ChangeEvent:
    position: StreamPosition
    type: str = strawberry.field(description="e.g. order.created, order.paid, product.deleted")
    resource: str = strawberry.field(description="order, product or customer")
    occurred_at: datetime
    actor: str = strawberry.field(description="who made the change")
    order: Order | None = strawberry.field(description="The order after the change.")
    product: Product | None = strawberry.field(description="The product after the change.")
    customer: Customer | None = strawberry.field(description="The customer after the change.")

    @classmethod
    def of(cls, event: StreamEvent) -> ChangeEvent:
        typed = _typed(event.resource, event.data)
        occurred = event.occurred_at
        return cls(
            position=StreamPosition(event.position),
            type=event.type,
            resource=event.resource,
            occurred_at=_time(occurred) if isinstance(occurred, str) else occurred,
            actor=event.actor,
            order=typed if event.resource == "order" else None,
            product=typed if event.resource == "product" else None,
            customer=typed if event.resource == "customer" else None,
        )


async def _stream(info: Info, mailbox: Mailbox) -> AsyncGenerator[ChangeEvent, None]:
    context = info.context
    try:
        while True:
            try:
                items = await mailbox.get()
            except MailboxClosed as closed:
                socket = getattr(context, "socket", None)
                if socket is not None:
                    # The socket closes with the code (expired, revoked, slow
                    # consumer); no ``complete`` first, so clients see why.
                    closing = socket.close(closed.code, closed.reason)
                    if closing is not None:
                        await closing
                return
            for _, event in items:
                if isinstance(event, StreamEvent):
                    # Relations resolve as of delivery, not from an earlier event's cache.
                    context.__dict__.pop("loaders", None)
                    yield ChangeEvent.of(event)
    finally:
        mailbox.close(1000, "subscription ended")


async def _subscribe(
    info: Info, topics: dict[str, str | None], after: int | None
) -> AsyncGenerator[ChangeEvent, None]:
    hub: Hub | None = getattr(info.context, "hub", None)
    if hub is None:
        raise InvalidArgument("subscriptions run over WebSocket at /graphql (graphql-transport-ws)")
    mailbox = hub.mailbox(info.context.principal)
    try:
        await hub.subscribe(mailbox, topics, after=after)
    except BaseException:
        mailbox.close(1000, "not subscribed")
        raise
    return _stream(info, mailbox)


Filter = Annotated[
    str | None, strawberry.argument(description="AIP-160 filter on the resource, as in REST")
]
After = Annotated[
    StreamPosition | None,
    strawberry.argument(description="Resume after this position (missed events come first)."),
]


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Changes to orders.")  # type: ignore[untyped-decorator]
    async def order_events(
        self, info: Info, filter: Filter = None, after: After = None
    ) -> AsyncGenerator[ChangeEvent, None]:
        return await _subscribe(info, {"orders": filter}, after)

    @strawberry.subscription(description="Changes to products.")  # type: ignore[untyped-decorator]
    async def product_events(
        self, info: Info, filter: Filter = None, after: After = None
    ) -> AsyncGenerator[ChangeEvent, None]:
        return await _subscribe(info, {"products": filter}, after)

    @strawberry.subscription(description="Changes to customers.")  # type: ignore[untyped-decorator]
    async def customer_events(
        self, info: Info, filter: Filter = None, after: After = None
    ) -> AsyncGenerator[ChangeEvent, None]:
        return await _subscribe(info, {"customers": filter}, after)

    @strawberry.subscription(  # type: ignore[untyped-decorator]
        description="Changes to several resources in one ordered stream"
        " (topics: orders, products, customers; all you may read when omitted)."
    )
    async def changes(
        self, info: Info, resources: list[str] | None = None, after: After = None
    ) -> AsyncGenerator[ChangeEvent, None]:
        if resources is None:
            principal = info.context.principal
            resources = [name for name, topic in TOPICS.items() if principal.can(topic.scope)]
        return await _subscribe(info, dict.fromkeys(resources), after)
