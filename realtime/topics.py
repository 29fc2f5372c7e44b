"""What can be subscribed to: one topic per resource, named like its REST collection.

A topic's events are the change-log rows of that resource; reading them needs
the resource's read scope, and filters use the resource's REST filter fields.
Every declared resource (``db/catalog.py``) is a topic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from db.catalog import CATALOG
from db.errors import InvalidArgument
from db.filtering import Expr, Filterable, parse_filter
from db.principal import Principal


@dataclass(frozen=True, slots=True)
class Topic:
    name: str  # the REST collection: "orders"
    resource: str  # the change log's resource: "order"
    scope: str  # what a subscriber needs: "orders:read"
    filterable: Filterable


TOPICS: dict[str, Topic] = {
    res.topic: Topic(res.topic, res.name, res.read_scope, res.spec.filterable)
    for res in CATALOG.resources
}
BY_RESOURCE: dict[str, Topic] = {topic.resource: topic for topic in TOPICS.values()}


def selection(principal: Principal, topics: Mapping[str, str | None]) -> dict[str, Expr | None]:
    """Check ``{topic: filter text}`` for ``principal``: ``{resource: parsed filter}``.

    Unknown topics and bad filters are ``INVALID_ARGUMENT``; a topic whose read
    scope the caller lacks is ``PERMISSION_DENIED``.
    """
    if not topics:
        raise InvalidArgument(f"name at least one topic: {', '.join(TOPICS)}")
    chosen: dict[str, Expr | None] = {}
    for name, text in topics.items():
        topic = TOPICS.get(name)
        if topic is None:
            raise InvalidArgument(f"unknown topic {name!r}; topics are: {', '.join(TOPICS)}")
        principal.require(topic.scope)
        try:
            chosen[topic.resource] = parse_filter(text, topic.filterable)
        except InvalidArgument as error:
            raise InvalidArgument(f"filter for {name}: {error.detail}") from error
    return chosen
