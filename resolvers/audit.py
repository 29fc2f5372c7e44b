"""GraphQL's door to the audit log: ``auditEvents``, for owners (``audit:read``).

The same ``db.audit`` list REST serves at ``/api/v1/audit-events``: the same
``filter`` grammar and fields, ``orderBy``, and keyset cursors (an edge's
``cursor`` is a REST ``page_token``). ``AuditQuery`` is merged into the schema's
``Query`` (``resolvers/schema.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from db import audit
from db.listing import ListQuery
from resolvers.types import Info, PageInfo


@strawberry.type(
    description="An admin write (API keys, users, OAuth clients): who did what to which "
    "target, when, and from which request."
)
class AuditEvent:
    database_id: int
    actor: str = strawberry.field(
        description="The caller's subject (`user:...`, `client:...`, `api-key:...`), `cli` "
        "for the gateway command, `system` for the gateway itself."
    )
    action: str = strawberry.field(description="What, e.g. `api_key.revoked`.")
    target_type: str = strawberry.field(description="`api_key`, `user` or `oauth_client`.")
    target_id: str = strawberry.field(description="The target's id (a client's `client_id`).")
    request_id: str | None = strawberry.field(
        description="The `X-Request-ID` of the request that made the change (none from "
        "the command line)."
    )
    details: JSON = strawberry.field(description="What changed; never a secret.")
    occurred_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> AuditEvent:
        return cls(
            database_id=row["id"],
            actor=row["actor"],
            action=row["action"],
            target_type=row["target_type"],
            target_id=row["target_id"],
            request_id=row["request_id"],
            details=row["details"],
            occurred_at=row["occurred_at"],
        )


@strawberry.type
class AuditEventEdge:
    cursor: str
    node: AuditEvent


@strawberry.type
class AuditEventConnection:
    edges: list[AuditEventEdge]
    nodes: list[AuditEvent]
    page_info: PageInfo
    total_count: int | None = strawberry.field(
        description="Every matching entry; counted only when asked for."
    )


def _asks_for(selections: Iterable[Selection], name: str) -> bool:
    """Whether ``name`` is selected here (through fragments too)."""
    for selection in selections:
        if isinstance(selection, SelectedField) and selection.name == name:
            return True
        if isinstance(selection, FragmentSpread | InlineFragment) and _asks_for(
            selection.selections, name
        ):
            return True
    return False


@strawberry.type
class AuditQuery:
    @strawberry.field(  # type: ignore[untyped-decorator]
        description="The organization's audit log, newest first (needs audit:read: owners). "
        "`filter` on actor, action, target_type, target_id, request_id, occurred_at, id."
    )
    async def audit_events(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        filter: str | None = None,
        order_by: str | None = None,
    ) -> AuditEventConnection:
        ctx = info.context
        query = ListQuery(filter=filter, order_by=order_by, page_size=first, page_token=after)
        page = await audit.list_audit_events(
            ctx.principal,
            query,
            default_page_size=ctx.page_size_default,
            max_page_size=ctx.page_size_max,
            cursors=True,
            with_total=_asks_for(info.selected_fields[0].selections, "totalCount"),
        )
        nodes = [AuditEvent.from_row(row) for row in page.items]
        cursors = page.cursors or []
        return AuditEventConnection(
            edges=[AuditEventEdge(cursor=c, node=n) for c, n in zip(cursors, nodes, strict=True)],
            nodes=nodes,
            page_info=PageInfo(
                has_next_page=page.next_page_token is not None,
                end_cursor=cursors[-1] if cursors else None,
            ),
            total_count=page.total_size,
        )
