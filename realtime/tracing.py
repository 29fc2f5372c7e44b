"""Spans of the change stream: the relay's batch, the bus publish, each delivery.

A change event keeps the ``traceparent`` of the write that recorded it
(``events.traceparent``, ``db.tracing``). The relay reads it back when it numbers
the event and sends it along on the bus, after every other member of the event's
JSON, so that the hub can cut it off in one slice: clients never see it. The
relay's batch span and each delivery's span carry a span link to it: from a
delivery, a trace viewer leads to the request that made the change.

Only live events carry it: an event read back from the log (a catch-up, a resume)
is delivered without a span. While tracing is off the relay still forwards a
``traceparent`` it finds (another host may trace) and the hub still cuts it off,
so clients get the same bytes either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import SpanKind

from db import tracing

if TYPE_CHECKING:
    from opentelemetry.trace import Link

    from realtime.hub import Hub, StreamEvent

MAX_LINKS = 128  # the SDK's default link limit per span
_FIELD = b',"traceparent":'


def _links(traceparents: Sequence[object]) -> list[Link]:
    links = []
    for traceparent in traceparents[:MAX_LINKS]:
        link = tracing.link_to(traceparent)
        if link is not None:
            links.append(link)
    return links


def batch_span(channel: str, events: list[dict[str, Any]]) -> Any:
    """A context manager: the relay's ``publish`` of one numbered batch, as a
    ``PRODUCER`` span linked to the writes (nothing while off, or with no events)."""
    active = tracing.tracer
    if active is None or not events:
        return tracing.NO_SPAN
    return active.start_as_current_span(
        "relay batch",
        kind=SpanKind.PRODUCER,
        links=_links([event.get("traceparent") for event in events]),
        attributes={
            "messaging.operation.type": "publish",
            "messaging.destination.name": channel,
            "messaging.batch.message_count": len(events),
            "gateway.event.position.first": events[0]["position"],
            "gateway.event.position.last": events[-1]["position"],
        },
    )


def publish_span(system: str, channel: str, count: int) -> Any:
    """A context manager: one publish to the bus, under the relay's batch span."""
    return tracing.child_span(
        f"publish {channel}",
        kind=SpanKind.PRODUCER,
        **{
            "messaging.system": system,
            "messaging.operation.type": "send",
            "messaging.destination.name": channel,
            "messaging.batch.message_count": count,
        },
    )


def client_bytes(raw: bytes) -> bytes:
    """An event's bus message without its trailing ``traceparent`` member."""
    cut = raw.rfind(_FIELD)
    return raw[:cut] + b"}" if cut > 0 else raw


def deliver(hub: Hub, event: StreamEvent, traceparent: object) -> None:
    """Hand a live event whose write was traced to ``hub``'s subscribers, in a
    ``CONSUMER`` span linked to that write (``Hub._handle`` calls it, with the event
    already cut to what clients get: ``client_bytes``)."""
    active = tracing.tracer
    if active is None:
        hub._dispatch(event)
        return
    link = tracing.link_to(traceparent)
    with active.start_as_current_span(
        f"deliver {event.resource}",
        kind=SpanKind.CONSUMER,
        links=[link] if link is not None else None,
        attributes={
            "messaging.operation.type": "process",
            "messaging.destination.name": hub.channel,
            "gateway.event.position": event.position,
            "gateway.event.type": event.type,
            "gateway.organization.id": event.organization_id,
        },
    ):
        hub._dispatch(event)
