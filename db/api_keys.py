"""API keys for service-to-service calls.

A key reads ``gwk_<key_id>_<secret>``: the prefix makes it recognisable in logs
and to secret scanners, ``key_id`` finds its row, and only a SHA-256 of the whole
key is stored (keys are 256-bit random, so a fast hash is the right one; slow
password hashes are for guessable secrets). The full key is returned once, at
creation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, field_validator
from tortoise.transactions import in_transaction

from db.audit import record_audit
from db.catalog import ALL_SCOPES
from db.errors import FieldError, InvalidToken, NotFound, ValidationFailed
from db.filtering import FilterField
from db.inputs import Input, Line, Timestamp
from db.listing import ListQuery, Page, fetch_row, list_rows
from db.models import ApiKey, fits
from db.principal import PRIVILEGED, SERVICE_ROLE, Principal
from db.revocations import API_KEY_KEPT_SECONDS, Notices, api_key_credential, record_revocation
from db.spec import ResourceSpec

PREFIX = "gwk_"
ADMIN_SCOPE = "api-keys:admin"

SPEC = ResourceSpec(
    name="api key",
    model=ApiKey,
    columns=(
        "id",
        "key_id",
        "name",
        "scope",
        "created_by",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ),
    filterable={
        "id": FilterField("int"),
        "name": FilterField("str"),
        "created_at": FilterField("datetime"),
        "expires_at": FilterField("datetime"),
        "revoked_at": FilterField("datetime"),
    },
    sortable=("id", "name", "created_at", "expires_at"),
)


class ApiKeyInput(Input):
    name: Line = Field(min_length=1, max_length=200)
    scopes: list[Line] = Field(min_length=1, max_length=len(ALL_SCOPES))
    expires_at: Timestamp | None = None

    @field_validator("scopes")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - ALL_SCOPES - {ADMIN_SCOPE})
        if unknown:
            raise ValueError(f"unknown scope(s): {', '.join(unknown)}")
        if ADMIN_SCOPE in value:
            raise ValueError("an API key cannot manage API keys")
        privileged = sorted(set(value) & PRIVILEGED)  # e.g. audit:read: owners only
        if privileged:
            raise ValueError(f"an API key cannot hold {', '.join(privileged)}")
        return sorted(set(value))

    @field_validator("expires_at")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("give a time zone (e.g. 2030-01-01T00:00:00Z)")
        if value <= datetime.now(UTC):
            raise ValueError("must be in the future")
        return value


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_api_key(
    principal: Principal, data: ApiKeyInput, *, request_id: str | None = None
) -> tuple[dict[str, Any], str]:
    """A new key (its row, and the key itself: shown once). Scopes never exceed the
    creator's. Audited (``api_key.created``) in the same transaction."""
    principal.require(ADMIN_SCOPE)
    beyond = [scope for scope in data.scopes if not principal.can(scope)]
    if beyond:
        raise ValidationFailed(
            "a key cannot hold scopes its creator lacks",
            errors=[FieldError(("body", "scopes"), f"not yours to grant: {beyond}", "scope")],
        )
    key_id = secrets.token_hex(6)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    async with in_transaction():
        row = await ApiKey.create(
            organization_id=principal.organization_id,
            key_id=key_id,
            secret_hash=digest(key),
            name=data.name,
            scope=" ".join(data.scopes),
            created_by=principal.subject,
            expires_at=data.expires_at,
        )
        shown = _shown(await fetch_row(principal, SPEC, row.id))
        await record_audit(
            "api_key.created",
            actor=principal.subject,
            request_id=request_id,
            organization_id=principal.organization_id,
            target_type="api_key",
            target_id=row.id,
            details={
                "key_id": key_id,
                "name": data.name,
                "scopes": data.scopes,
                "expires_at": None if data.expires_at is None else data.expires_at.isoformat(),
            },
        )
    return shown, key


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    """A key's row as callers see it: ``scopes`` as a list, the name it is written
    with (the column keeps them space-separated, as a token's ``scope`` claim)."""
    shown = {name: value for name, value in row.items() if name != "scope"}
    if "scope" in row:
        shown["scopes"] = row["scope"].split()
    return shown


async def list_api_keys(principal: Principal, query: ListQuery, **options: Any) -> Page:
    """A page of keys (never encoded in the database: ``scopes`` is derived)."""
    principal.require(ADMIN_SCOPE)
    options.pop("encoded", None)
    page = await list_rows(principal, SPEC, query, **options)
    page.items = [_shown(row) for row in page.items]
    return page


async def get_api_key(principal: Principal, ident: int) -> dict[str, Any]:
    principal.require(ADMIN_SCOPE)
    return _shown(await fetch_row(principal, SPEC, ident))


async def revoke_api_key(
    principal: Principal, ident: int, *, notices: Notices, request_id: str | None = None
) -> dict[str, Any]:
    """Revoke a key (idempotent: revoking a revoked key changes nothing, and records
    nothing). The one way to revoke a key, whichever door asks.

    The key's row, the denylist's (``db.revocations``) and the audit entry
    (``api_key.revoked``) change in one transaction, so every worker learns of the
    revocation from the database even when no notice reaches it; once it commits,
    ``notices`` tells the running workers at once.
    """
    principal.require(ADMIN_SCOPE)
    now = datetime.now(UTC)
    denied: tuple[str, float] | None = None
    async with in_transaction():
        updated = await ApiKey.filter(
            id=ident, organization_id=principal.organization_id, revoked_at=None
        ).update(revoked_at=now)
        if updated:
            row = await ApiKey.get(id=ident)
            await record_audit(
                "api_key.revoked",
                actor=principal.subject,
                request_id=request_id,
                organization_id=principal.organization_id,
                target_type="api_key",
                target_id=ident,
                details={"key_id": row.key_id, "name": row.name},
            )
            kept = now.timestamp() + API_KEY_KEPT_SECONDS
            if row.expires_at is not None:
                kept = min(kept, row.expires_at.timestamp())
            if kept > now.timestamp():  # an expired key is refused anyway
                denied = (api_key_credential(row.key_id), kept)
                await record_revocation(*denied)
    if denied is not None:
        notices.announce(*denied)
    if not updated:
        await fetch_row(principal, SPEC, ident)  # NotFound for another organization's key
    return _shown(await fetch_row(principal, SPEC, ident))


async def organization_api_keys(organization_id: int) -> list[dict[str, Any]]:
    """Every key of the organization, revoked ones too, oldest first (for operators)."""
    rows = ApiKey.filter(organization_id=organization_id).order_by("id")
    return [_shown(row) for row in await rows.values(*SPEC.columns)]


async def find_api_key(organization_id: int, key_id: str) -> int:
    """The row id of the organization's key ``key_id`` (the part after ``gwk_``, or the
    whole key); ``NotFound`` otherwise."""
    if key_id.startswith(PREFIX):
        key_id = key_id.removeprefix(PREFIX).partition("_")[0]
    row = (
        await ApiKey.filter(organization_id=organization_id, key_id=key_id).only("id").first()
        if key_id and fits(ApiKey, "key_id", key_id)
        else None
    )
    if row is None:
        raise NotFound(f"no API key {key_id!r} in this organization")
    return int(row.id)


async def authenticate_api_key(key: str) -> tuple[Principal, str]:
    """The Principal a key acts as, and its key id; InvalidToken when it is not a live key."""
    key_id, _, secret = key.removeprefix(PREFIX).partition("_")
    if not key.startswith(PREFIX) or not key_id or not secret:
        raise InvalidToken("the API key is not valid")
    row = await ApiKey.get_or_none(key_id=key_id) if fits(ApiKey, "key_id", key_id) else None
    # Compare even when there is no row, so a miss takes as long as a wrong secret.
    expected = row.secret_hash if row is not None else digest("")
    if not hmac.compare_digest(expected, digest(key)) or row is None:
        raise InvalidToken("the API key is not valid")
    now = datetime.now(UTC)
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        raise InvalidToken("the API key is revoked or expired")
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        await ApiKey.filter(id=row.id).update(last_used_at=now)
    expires = row.expires_at.timestamp() if row.expires_at is not None else None
    principal = Principal(
        subject=f"api-key:{key_id}",
        organization_id=row.organization_id,  # type: ignore[attr-defined]
        scopes=frozenset(row.scope.split()),
        roles=frozenset({SERVICE_ROLE}),
        credential_id=api_key_credential(key_id),
        expires_at=expires,
    )
    return principal, key_id
