"""Reading and writing one versioned row inside the caller's organization.

Writes are conditional ``UPDATE ... WHERE id AND organization AND version``
statements, so optimistic concurrency holds without locks; when nothing
matched, a second look tells the caller why (gone, or changed since read).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from tortoise.expressions import F
from tortoise.models import Model

from db.errors import NotFound, PreconditionFailed
from db.events import record_event, writing
from db.listing import fetch_row
from db.principal import Principal
from db.spec import ResourceSpec


def now() -> datetime:
    return datetime.now(UTC)


async def explain_miss(
    principal: Principal, model: type[Model], resource: str, ident: int
) -> NotFound | PreconditionFailed:
    """Why a conditional write matched nothing: the row is gone, or its version moved."""
    exists = await model.filter(id=ident, organization_id=principal.organization_id).exists()
    if not exists:
        return NotFound.for_resource(resource, ident)
    return stale(resource, ident)


def stale(resource: str, ident: int) -> PreconditionFailed:
    return PreconditionFailed(
        f"{resource} {ident} has changed since you read it (If-Match does not match); "
        "fetch it again and retry with the new ETag"
    )


async def update_versioned(
    principal: Principal,
    spec: ResourceSpec,
    ident: int,
    changes: Mapping[str, Any],
    *,
    expected_versions: Collection[int] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> int:
    """Apply ``changes`` to one row, bumping its version; returns rows matched (0 or 1).

    ``extra`` adds conditions (for example a set of allowed statuses).
    """
    qs = spec.model.filter(id=ident, organization_id=principal.organization_id, **(extra or {}))
    if expected_versions is not None:
        qs = qs.filter(version__in=list(expected_versions))
    updated: int = await qs.update(**changes, version=F("version") + 1, updated_at=now())
    return updated


async def create_row(
    principal: Principal, spec: ResourceSpec, values: Mapping[str, Any]
) -> dict[str, Any]:
    """Insert a row and its ``<resource>.created`` event in one transaction.

    Raises tortoise's ``IntegrityError`` on a unique clash; callers turn that into
    a ``Conflict`` that names the clashing field.
    """
    async with writing():
        obj = await spec.model.create(organization_id=principal.organization_id, **values)
        row = await fetch_row(principal, spec, obj.pk)
        await record_event(
            principal,
            type=f"{spec.name}.created",
            resource=spec.name,
            resource_id=obj.pk,
            snapshot=row,
        )
    return row


async def change_row(
    principal: Principal,
    spec: ResourceSpec,
    ident: int,
    values: Mapping[str, Any],
    *,
    verb: str = "updated",
    expected_versions: Collection[int] | None = None,
    extra: Mapping[str, Any] | None = None,
    guard: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Update one row (version-checked) and record ``<resource>.<verb>``; returns the new row.

    A change that changes nothing (every value equals the current one, or no values)
    writes nothing: the version, ``updated_at`` and so the ETag stay, no event is
    recorded, and the current row is returned. ``expected_versions`` (If-Match) is
    checked all the same, so a stale one is refused even then. ``guard`` may refuse
    the change after looking at the current row (e.g. a deleted product).
    """
    current = await fetch_row(principal, spec, ident)
    if guard is not None:
        guard(current)
    if expected_versions is not None and current["version"] not in expected_versions:
        raise stale(spec.name, ident)
    if all(key in current and current[key] == value for key, value in values.items()):
        return current
    async with writing():
        # Conditional on If-Match, not on the version just read: without If-Match a
        # concurrent writer's change is overwritten, as an unconditional write should.
        matched = await update_versioned(
            principal, spec, ident, values, expected_versions=expected_versions, extra=extra
        )
        if not matched:
            raise await explain_miss(principal, spec.model, spec.name, ident)
        row = await fetch_row(principal, spec, ident)
        await record_event(
            principal,
            type=f"{spec.name}.{verb}",
            resource=spec.name,
            resource_id=ident,
            snapshot=row,
        )
    return row
