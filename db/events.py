"""Writing the change log: one event row per committed write, in the same transaction."""

from __future__ import annotations

from typing import Any

import orjson

from db.models import Event
from db.principal import Principal


def to_snapshot(row: dict[str, Any]) -> Any:
    """The JSON form of a row as stored in the event (ISO 8601 UTC times)."""
    return orjson.loads(orjson.dumps(row, option=orjson.OPT_UTC_Z))


async def record_event(
    principal: Principal, *, type: str, resource: str, resource_id: int, snapshot: dict[str, Any]
) -> None:
    """Append ``type`` (e.g. ``order.created``) for ``resource`` to the change log.

    Must be called inside the write's transaction so the event commits (or rolls
    back) with the change.
    """
    await Event.create(
        organization_id=principal.organization_id,
        type=type,
        resource=resource,
        resource_id=str(resource_id),
        actor=principal.subject,
        snapshot=to_snapshot(snapshot),
    )
