"""The audit log: every admin write, who made it, on what, when, and from which request.

Admin writes (API keys, users, OAuth clients, signing keys) call :func:`record_audit`
inside their own transaction, so an entry commits or rolls back with its change: no
entry without the change, no change without its entry. Whichever door asks (REST,
GraphQL, the ``gateway`` command, the demo seed), the same ``db/`` function records
the same entry; the door only says who asks (``actor``: the Principal's subject,
``cli`` or ``system``) and which request it serves (``request_id``: the
``X-Request-ID`` of the response; None from the command line).

An entry belongs to the organization whose credentials or accounts changed; its
owners read it (``audit:read``: no role but the owner's grants it) through
:func:`list_audit_events` and :func:`get_audit_event`, with the lists' filter,
ordering and keyset pages. Installation-wide entries (signing keys:
``organization_id`` None) belong to no organization, so no owner sees them;
operators list them with ``gateway list-audit-events`` (:func:`operator_audit_events`).

``details`` holds what changed as plain values (names, scopes, roles, key ids),
never a secret: no key, client secret, password or hash (:func:`record_audit`
refuses a name that would hold one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from db.filtering import FilterField
from db.listing import ListQuery, Page, fetch_row, list_rows
from db.models import AuditEvent
from db.principal import Principal
from db.spec import ResourceSpec

READ_SCOPE = "audit:read"
CLI = "cli"  # the ``gateway`` command, run by an operator
SYSTEM = "system"  # the gateway itself (its first signing key, the demo seed)
MAX_OPERATOR_ROWS = 10_000

ACTIONS = frozenset(
    {
        "api_key.created",
        "api_key.revoked",
        "user.created",
        "user.deleted",
        "oauth_client.created",
        "oauth_client.deleted",
        "signing_key.created",
        "signing_key.rotated",
    }
)
# Parts of a ``details`` name that would hold a credential: refused outright.
_SECRET_WORDS = ("secret", "password", "hash", "token", "pem", "private")

SPEC = ResourceSpec(
    name="audit event",
    model=AuditEvent,
    columns=(
        "id",
        "actor",
        "action",
        "target_type",
        "target_id",
        "request_id",
        "details",
        "occurred_at",
    ),
    filterable={
        "id": FilterField("int"),
        "actor": FilterField("str"),
        "action": FilterField("str"),
        "target_type": FilterField("str"),
        "target_id": FilterField("str"),
        "request_id": FilterField("str"),
        "occurred_at": FilterField("datetime"),
    },
    sortable=("id", "occurred_at"),
    default_order="occurred_at desc, id desc",
)


def _fit(value: str, field: str) -> str:
    """``value`` cut to its column: an entry never makes its write fail."""
    max_length: int | None = getattr(AuditEvent._meta.fields_map[field], "max_length", None)
    return value if max_length is None else value[:max_length]


async def record_audit(
    action: str,
    *,
    actor: str,
    organization_id: int | None,
    target_type: str,
    target_id: int | str,
    request_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Record ``action`` (e.g. ``api_key.revoked``) by ``actor`` on a target.

    Call it inside the write's transaction. ``organization_id`` None marks an
    installation-wide action. ``details`` must name no secret (``ValueError``).
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    for name in details or {}:
        if any(word in name.lower() for word in _SECRET_WORDS):
            raise ValueError(f"audit details may not hold {name!r}")
    await AuditEvent.create(
        organization_id=organization_id,
        actor=_fit(actor, "actor"),
        action=action,
        target_type=target_type,
        target_id=_fit(str(target_id), "target_id"),
        request_id=None if request_id is None else _fit(request_id, "request_id"),
        details=dict(details or {}),
    )


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    details = row.get("details")
    if isinstance(details, str | bytes):
        row["details"] = orjson.loads(details)
    return row


async def list_audit_events(principal: Principal, query: ListQuery, **options: Any) -> Page:
    """A page of the caller's organization's entries, newest first by default."""
    principal.require(READ_SCOPE)
    page = await list_rows(principal, SPEC, query, **options)
    page.items = [_decoded(row) for row in page.items]
    return page


async def get_audit_event(principal: Principal, ident: int) -> dict[str, Any]:
    principal.require(READ_SCOPE)
    return _decoded(await fetch_row(principal, SPEC, ident))


async def operator_audit_events(organization_id: int | None, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` entries of an organization, or installation-wide ones
    (None), newest first (for operators: no Principal, no scope)."""
    rows = (
        AuditEvent.filter(organization_id=organization_id)
        if organization_id is not None
        else AuditEvent.filter(organization_id__isnull=True)
    )
    return list(await rows.order_by("-occurred_at", "-id").limit(limit).values(*SPEC.columns))
