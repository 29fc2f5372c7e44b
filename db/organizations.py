"""Organizations: the tenants. Created by operators (CLI), not through the API."""

from __future__ import annotations

from typing import Any

from tortoise.exceptions import IntegrityError

from db.errors import Conflict
from db.models import Organization, fits


async def create_organization(*, slug: str, name: str) -> dict[str, Any]:
    try:
        org = await Organization.create(slug=slug, name=name)
    except IntegrityError:
        raise Conflict(f"an organization with slug {slug!r} already exists") from None
    return {"id": org.id, "slug": org.slug, "name": org.name}


async def find_organization_id(slug: str) -> int | None:
    """The id of the organization called ``slug``, or None."""
    if not fits(Organization, "slug", slug):
        return None
    org = await Organization.filter(slug=slug).only("id").first()
    return int(org.id) if org else None
