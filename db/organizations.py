"""Organizations: the tenants. Created by operators (CLI), not through the API.

A slug names an organization in URLs, external issuers' claims and the ``gateway``
command: 1 to 63 lowercase ASCII letters, digits and hyphens, not starting or ending
with a hyphen (a DNS label, so it also fits a host name). ``check_slug`` is the one
copy of that rule.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Subquery
from tortoise.transactions import in_transaction

from db.accounts import revoke_clients
from db.errors import Conflict, InvalidArgument, NotFound
from db.inputs import check_line
from db.models import (
    ApiKey,
    Customer,
    Event,
    IdempotencyRecord,
    OAuthClient,
    Order,
    OrderItem,
    Organization,
    Product,
    RefreshToken,
    User,
    fits,
)
from db.revocations import API_KEY_KEPT_SECONDS, api_key_credential, record_revocation

SLUG_RULE = "1 to 63 lowercase letters, digits and hyphens, not starting or ending with a hyphen"
_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)
NAME_MAX = 200
# What an organization holds, as ``delete_organization`` counts it (label, model).
HOLDINGS: tuple[tuple[str, Any], ...] = (
    ("customers", Customer),
    ("products", Product),
    ("orders", Order),
    ("users", User),
    ("clients", OAuthClient),
    ("api_keys", ApiKey),
)


def check_slug(slug: str) -> str:
    """``slug`` when it is a valid organization slug; ``InvalidArgument`` otherwise."""
    if not slug.strip():
        raise InvalidArgument("the organization slug may not be empty")
    if not _SLUG.fullmatch(slug):
        raise InvalidArgument(f"organization slug {slug!r}: use {SLUG_RULE} (e.g. acme-eu)")
    return slug


def check_name(name: str) -> str:
    """An organization's display name: one line, trimmed, 1 to 200 characters."""
    return check_line(name, what="organization name", max_length=NAME_MAX)


def _row(org: Organization) -> dict[str, Any]:
    return {"id": org.id, "slug": org.slug, "name": org.name, "created_at": org.created_at}


async def create_organization(*, slug: str, name: str) -> dict[str, Any]:
    slug, name = check_slug(slug), check_name(name)
    try:
        org = await Organization.create(slug=slug, name=name)
    except IntegrityError:
        raise Conflict(f"an organization with slug {slug!r} already exists") from None
    return _row(org)


async def find_organization_id(slug: str) -> int | None:
    """The id of the organization called ``slug``, or None."""
    if not fits(Organization, "slug", slug):
        return None
    org = await Organization.filter(slug=slug).only("id").first()
    return int(org.id) if org else None


async def get_organization_id(slug: str) -> int:
    """The id of the organization called ``slug``; ``NotFound`` naming it otherwise."""
    found = await find_organization_id(slug)
    if found is None:
        raise NotFound(f"no organization {slug!r}")
    return found


async def list_organizations() -> list[dict[str, Any]]:
    """Every organization, oldest first."""
    return [_row(org) for org in await Organization.all().order_by("id")]


async def holdings(organization_id: int) -> dict[str, int]:
    """How many customers, products, orders, users, clients and API keys it holds."""
    return {
        label: await model.filter(organization_id=organization_id).count()
        for label, model in HOLDINGS
    }


async def delete_organization(
    slug: str, *, force: bool, access_token_ttl: float
) -> tuple[dict[str, Any], dict[str, float]]:
    """Delete organization ``slug``: its row, and with ``force`` everything it holds.

    Without ``force`` an organization that holds anything (``HOLDINGS``) is refused
    (``Conflict`` listing what). With it, everything goes in one transaction, after its
    clients' tokens (every token they issued, for ``access_token_ttl`` seconds, their
    refresh tokens and codes) and its API keys are revoked. Returns what was deleted
    (counts) and the revocations recorded, for the caller to announce to running
    workers (``credential_id -> expires_at``).
    """
    async with in_transaction():
        org = (
            await Organization.get_or_none(slug=slug) if fits(Organization, "slug", slug) else None
        )
        if org is None:
            raise NotFound(f"no organization {slug!r}")
        held = await holdings(org.id)
        if any(held.values()) and not force:
            what = ", ".join(
                f"{count} {label.replace('_', ' ')}" for label, count in held.items() if count
            )
            raise Conflict(
                f"organization {slug!r} holds {what}: delete those first, or pass --force "
                "to delete the organization with everything it holds"
            )
        client_ids = list(
            await OAuthClient.filter(organization_id=org.id).values_list("client_id", flat=True)
        )
        revoked = await revoke_clients(org.id, [str(c) for c in client_ids], access_token_ttl)
        now = datetime.now(UTC)
        for key in await ApiKey.filter(organization_id=org.id, revoked_at=None):
            kept = now.timestamp() + API_KEY_KEPT_SECONDS
            if key.expires_at is not None:
                kept = min(kept, key.expires_at.timestamp())
            if kept > now.timestamp():
                credential = api_key_credential(key.key_id)
                await record_revocation(credential, kept)
                revoked[credential] = kept
        orders = Subquery(Order.filter(organization_id=org.id).values("id"))
        await OrderItem.filter(order_id__in=orders).delete()
        # Children before parents: orders hold customers, order items hold products.
        for model in (
            Order,
            Customer,
            Product,
            Event,
            IdempotencyRecord,
            ApiKey,
            RefreshToken,
            OAuthClient,
        ):
            await model.filter(organization_id=org.id).delete()
        await User.filter(organization_id=org.id).delete()  # their codes and refresh tokens
        await Organization.filter(id=org.id).delete()
    return {**_row(org), "deleted": held}, revoked
