"""GraphQL subscriptions: the change stream, typed, over WebSocket (``resolvers/ws.py``).

``<resource>Events`` (one per declared resource: ``orderEvents``, ...) follows
one resource, ``changes`` several. Each takes ``after`` (resume after a stream position: the
events missed since then come first, then live ones) and, for one resource,
``filter`` (the REST filter grammar, on the event's snapshot). An event carries
its ``position`` and the resource as it was after the change, typed, so
clients select fields as from a query. The same hub as the JSON channel and SSE
serves them (``realtime/hub.py``): same organization and scope checks, same
resume and backpressure rules.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from db.catalog import CATALOG, Catalog
from db.declare import Resource
from db.errors import InvalidArgument
from gateway import metrics
from realtime.close_codes import NORMAL
from realtime.hub import Hub, Mailbox, MailboxClosed, StreamEvent
from realtime.topics import TOPICS
from resolvers.positions import StreamPosition
from resolvers.types import TYPES, from_snapshot


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class ChangeEventBase:
    """The fields every change has (``derive_change_event`` adds one per resource)."""

    position: StreamPosition
    type: str = strawberry.field(description="e.g. order.created, order.paid, product.deleted")
    resource: str = strawberry.field(description="The resource changed: order, product, ...")
    occurred_at: datetime
    actor: str = strawberry.field(description="who made the change")

    @classmethod
    def of(cls, event: StreamEvent) -> Any:
        occurred = event.occurred_at
        values: dict[str, Any] = dict.fromkeys(CATALOG.by_name)
        res = CATALOG.by_name[event.resource]
        values[event.resource] = TYPES[res.name].from_row(from_snapshot(res, event.data))
        return cls(  # type: ignore[call-arg]
            position=StreamPosition(event.position),
            type=event.type,
            resource=event.resource,
            occurred_at=_time(occurred) if isinstance(occurred, str) else occurred,
            actor=event.actor,
            **values,
        )


def derive_change_event(catalog: Catalog) -> Any:
    """``ChangeEvent``: the stream's fields and one field per declared resource (the
    object after the change; null for the other resources)."""
    annotations = dict(ChangeEventBase.__annotations__)
    namespace: dict[str, Any] = {
        k: v for k, v in vars(ChangeEventBase).items() if not k.startswith("__")
    }
    namespace["__module__"] = __name__
    for res in catalog.resources:
        annotations[res.name] = TYPES[res.name] | None
        namespace[res.name] = strawberry.field(description=f"The {res.label} after the change.")
    namespace["__annotations__"] = annotations
    cls = type("ChangeEvent", (), namespace)
    return strawberry.type(cls, description="A committed change, in stream order.")


ChangeEvent = derive_change_event(CATALOG)


async def _stream(info: Info, mailbox: Mailbox) -> AsyncGenerator[Any, None]:
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
                    if closing is not None:  # a WebSocket (an HTTP stream just ends)
                        await closing
                        # Then wait: the protocol's shutdown cancels this operation
                        # once the socket's reader ends. Returning would have Strawberry
                        # send ``complete`` on the closed socket: an error, logged.
                        await asyncio.Event().wait()
                return
            for _, event in items:
                if isinstance(event, StreamEvent):
                    # Relations resolve as of delivery, not from an earlier event's cache.
                    context.__dict__.pop("loaders", None)
                    yield ChangeEvent.of(event)
                    metrics.delivered((event,))
    finally:
        mailbox.close(NORMAL, "subscription ended")


async def _subscribe(
    info: Info, topics: dict[str, str | None], after: int | None
) -> AsyncGenerator[Any, None]:
    hub: Hub | None = getattr(info.context, "hub", None)
    if hub is None:
        raise InvalidArgument("subscriptions run over WebSocket at /graphql (graphql-transport-ws)")
    mailbox = hub.mailbox(info.context.principal)
    try:
        await hub.subscribe(mailbox, topics, after=after)
    except BaseException:
        mailbox.close(NORMAL, "not subscribed")
        raise
    return _stream(info, mailbox)


Filter = Annotated[
    str | None, strawberry.argument(description="AIP-160 filter on the resource, as in REST")
]
After = Annotated[
    StreamPosition | None,
    strawberry.argument(description="Resume after this position (missed events come first)."),
]


def _resource_subscription(res: Resource) -> Any:
    async def events(
        info: Info, filter: str | None = None, after: int | None = None
    ) -> AsyncGenerator[Any, None]:
        return await _subscribe(info, {res.topic: filter}, after)

    events.__annotations__ = {
        "info": Info,
        "filter": Filter,
        "after": After,
        "return": AsyncGenerator[ChangeEvent, None],  # type: ignore[valid-type]
    }
    return strawberry.subscription(
        resolver=events, description=f"Changes to {res.plural.replace('_', ' ')}."
    )


class BaseSubscription:
    @strawberry.subscription(  # type: ignore[untyped-decorator]
        description="Changes to several resources in one ordered stream"
        " (topics: the resources' plural names; all you may read when omitted)."
    )
    async def changes(
        self, info: Info, resources: list[str] | None = None, after: After = None
    ) -> AsyncGenerator[ChangeEvent, None]:  # type: ignore[valid-type]
        if resources is None:
            principal = info.context.principal
            resources = [name for name, topic in TOPICS.items() if principal.can(topic.scope)]
        return await _subscribe(info, dict.fromkeys(resources), after)


def derive_subscription(catalog: Catalog) -> Any:
    namespace: dict[str, Any] = {
        f"{res.name}_events": _resource_subscription(res) for res in catalog.resources
    }
    namespace["changes"] = BaseSubscription.__dict__["changes"]
    namespace["__module__"] = __name__
    return strawberry.type(type("Subscription", (), namespace))


Subscription = derive_subscription(CATALOG)
