"""What clients read of a webhook endpoint's deliveries: the log and the dead letters.

The dispatcher (``realtime/webhooks``, through ``db/webhook_delivery.py``) writes one
delivery row per attempt and one dead letter per event it gave up on; here clients
list them (newest first, keyset pages and AIP-160 filters like every list) and ask
for dead letters to be sent again. A replay request only marks the letter
``replay_requested``: the dispatcher sends it, then marks it ``replayed`` (or
``dead`` again). Everything needs ``webhooks:admin`` and stays inside the caller's
organization: another organization's endpoint or letter is ``NOT_FOUND``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from db.declare import POSITION
from db.errors import NotFound
from db.filtering import FilterField
from db.listing import ListQuery, Page, list_rows
from db.models import WebhookDeadLetter as DeadLetterRow
from db.models import WebhookDelivery as DeliveryRow
from db.principal import Principal
from db.spec import ResourceSpec
from db.sql import Params
from db.webhooks import SCOPE, endpoint_topics, require_topic_reads

DEAD, REPLAY_REQUESTED, REPLAYED = "dead", "replay_requested", "replayed"
Row = dict[str, Any]


class WebhookDelivery(BaseModel):
    id: int
    position: int = Field(
        description="The event's change-log position (its webhook-id).",
        json_schema_extra=POSITION,
    )
    event_type: str = Field(description="e.g. order.created")
    attempt: int = Field(description="1 for the first try of this event, then 2, 3, ...")
    outcome: str = Field(description="delivered, failed, timeout, refused or error")
    http_status: int | None = Field(description="The receiver's status, when it answered.")
    latency_ms: int
    response_excerpt: str = Field(description="The first bytes of the receiver's answer.")
    error: str | None = Field(description="What went wrong, when something did.")
    replay: bool = Field(description="Whether this attempt sent a replayed dead letter.")
    created_at: datetime


class WebhookDeadLetter(BaseModel):
    id: int
    position: int = Field(
        description="The event's change-log position (its webhook-id).",
        json_schema_extra=POSITION,
    )
    event_type: str
    event: dict[str, Any] = Field(description="The event JSON that was sent (and is resent).")
    attempts: int
    last_error: str
    status: str = Field(description="dead, replay_requested or replayed")
    replayed_at: datetime | None
    created_at: datetime


DELIVERIES = ResourceSpec(
    name="webhook delivery",
    model=DeliveryRow,
    columns=tuple(WebhookDelivery.model_fields),
    filterable={
        "id": FilterField("int"),
        "position": FilterField("int"),
        "event_type": FilterField("str"),
        "attempt": FilterField("int"),
        "outcome": FilterField("str"),
        "http_status": FilterField("int"),
        "replay": FilterField("bool"),
        "created_at": FilterField("datetime"),
    },
    sortable=("id", "position", "created_at"),
    default_order="id desc",  # ids grow with time: newest first, on the (endpoint, id) index
)
DEAD_LETTERS = ResourceSpec(
    name="webhook dead letter",
    model=DeadLetterRow,
    columns=tuple(WebhookDeadLetter.model_fields),
    filterable={
        "id": FilterField("int"),
        "position": FilterField("int"),
        "event_type": FilterField("str"),
        "status": FilterField("enum", choices=frozenset({DEAD, REPLAY_REQUESTED, REPLAYED})),
        "created_at": FilterField("datetime"),
    },
    sortable=("id", "position", "created_at"),
    default_order="id desc",
    json_columns=("event",),
)


async def _endpoint(principal: Principal, endpoint_id: int) -> None:
    """The caller's endpoint, whose topics it may read: the log holds what was sent."""
    principal.require(SCOPE)
    require_topic_reads(principal, await endpoint_topics(principal, endpoint_id))


async def list_deliveries(
    principal: Principal, endpoint_id: int, query: ListQuery, **options: Any
) -> Page:
    """A page of one endpoint's delivery attempts, newest first."""
    await _endpoint(principal, endpoint_id)
    return await list_rows(
        principal, DELIVERIES, query, where={"endpoint_id": endpoint_id}, **options
    )


async def list_dead_letters(
    principal: Principal, endpoint_id: int, query: ListQuery, **options: Any
) -> Page:
    """A page of one endpoint's dead letters, newest first."""
    await _endpoint(principal, endpoint_id)
    return await list_rows(
        principal, DEAD_LETTERS, query, where={"endpoint_id": endpoint_id}, **options
    )


async def replay_dead_letter(principal: Principal, endpoint_id: int, letter_id: int) -> Row:
    """Ask for one dead letter to be sent again (a replayed one may be asked again)."""
    await _endpoint(principal, endpoint_id)
    mine = {"id": letter_id, "endpoint_id": endpoint_id}
    mine["organization_id"] = principal.organization_id
    if not await DeadLetterRow.filter(**mine).update(status=REPLAY_REQUESTED):
        raise NotFound.for_resource(DEAD_LETTERS.name, letter_id)
    p = Params(letter_id, endpoint_id, principal.organization_id)
    where = "t.id = $1 AND t.endpoint_id = $2 AND t.organization_id = $3"
    return (await DEAD_LETTERS.rows(where, p))[0]


async def replay_dead_letters(principal: Principal, endpoint_id: int) -> int:
    """Ask for every dead letter of an endpoint to be sent again; returns how many."""
    await _endpoint(principal, endpoint_id)
    changed: int = await DeadLetterRow.filter(
        endpoint_id=endpoint_id, organization_id=principal.organization_id, status=DEAD
    ).update(status=REPLAY_REQUESTED)
    return changed
