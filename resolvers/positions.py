"""``StreamPosition``: a change-log position in GraphQL (a 64-bit integer; ``Int`` holds 32).

Subscriptions take one (``after:``) and events carry one; fields that a declaration
marks ``db.declare.POSITION`` (a webhook endpoint's ``cursor``) and the webhook
delivery log's positions are typed with it too.
"""

from __future__ import annotations

from typing import NewType

import strawberry

from db.events import parse_position


def _parse_position(value: object) -> int:
    position = parse_position(value)
    if position is None:
        raise ValueError("a StreamPosition is a non-negative 64-bit integer")
    return position


StreamPosition = NewType("StreamPosition", int)
STREAM_POSITION = strawberry.scalar(
    name="StreamPosition",
    description="A position in the change stream: a 64-bit integer, gap-free and increasing.",
    serialize=int,
    parse_value=_parse_position,
)
