"""/api/v1/audit-events: the organization's audit log, read by its owners (``audit:read``).

The admin writes make the entries themselves (``db.audit``), whichever door they
came through; this door only reads them, with the lists' filter, ``order_by``,
field masks and keyset pages.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from sanic import Blueprint, HTTPResponse, Request

from db import audit
from rest.docs import ID_PARAM, LIST_PARAMS, envelope, ref
from rest.standard import page_limits
from rest.wire import collection, list_query, parse_id, parse_mask, single

if TYPE_CHECKING:
    from rest.docs import ApiDoc


class AuditEvent(BaseModel):
    id: int
    actor: str = Field(
        description="who: the caller's subject (`user:...`, `client:...`, `api-key:...`), "
        "`cli` for the gateway command, `system` for the gateway itself"
    )
    action: str = Field(description="what, e.g. `api_key.revoked`, `user.created`")
    target_type: str = Field(description="`api_key`, `user` or `oauth_client`")
    target_id: str = Field(description="the target's id (an OAuth client's `client_id`)")
    request_id: str | None = Field(
        description="the `X-Request-ID` of the request that made the change (none from "
        "the command line)"
    )
    details: dict[str, Any] = Field(description="what changed; never a secret")
    occurred_at: datetime


FIELDS = tuple(AuditEvent.model_fields)


def add_routes(bp: Blueprint, doc: ApiDoc) -> None:
    async def list_events(request: Request) -> HTTPResponse:
        mask = parse_mask(request, FIELDS)
        page = await audit.list_audit_events(
            request.ctx.principal,
            list_query(request),
            fields=mask,
            encoded=True,
            **page_limits(request),
        )
        return collection(request, page, mask=mask)

    async def get(request: Request, ident: str) -> HTTPResponse:
        mask = parse_mask(request, FIELDS)
        row = await audit.get_audit_event(request.ctx.principal, parse_id(ident, "audit event"))
        return single(request, row, mask=mask)

    item = "/audit-events/<ident:(?P<ident>[^/:]+)>"
    bp.add_route(list_events, "/audit-events", methods=["GET", "HEAD"], name="audit_events_list")
    bp.add_route(get, item, methods=["GET", "HEAD"], name="audit_events_get")

    tag, scope = "audit-events", audit.READ_SCOPE
    filterable = ", ".join(sorted(audit.SPEC.filterable))
    doc.operation(
        "get",
        "/audit-events",
        summary=f"List audit events (newest first; filter on {filterable})",
        operation_id="list_audit_events",
        tag=tag,
        response=envelope({"type": "array", "items": ref(AuditEvent)}, paginated=True),
        params=list(LIST_PARAMS),
        errors=(400,),
        scope=scope,
        models=(AuditEvent,),
    )
    doc.operation(
        "get",
        "/audit-events/{id}",
        summary="Get an audit event",
        operation_id="get_audit_event",
        tag=tag,
        response=envelope(ref(AuditEvent)),
        params=[ID_PARAM],
        errors=(400, 404),
        scope=scope,
        models=(AuditEvent,),
    )
