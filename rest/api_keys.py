"""/api/v1/api-keys: service-to-service keys, managed by admins (``api-keys:admin``).

The key itself is in the creation response only; lists and gets show its
public ``key_id``. Revoking (DELETE) keeps the row, with ``revoked_at`` set, and
takes effect on every worker at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sanic import Blueprint, HTTPResponse, Request

from db import api_keys
from rest import csv_export, schemas
from rest.docs import ID_PARAM, LIST_PARAMS, envelope, ref
from rest.negotiation import CSV, media_of
from rest.standard import page_limits
from rest.wire import collection, list_query, parse_body, parse_id, single

if TYPE_CHECKING:
    from rest.docs import ApiDoc


def add_routes(bp: Blueprint, doc: ApiDoc) -> None:
    async def create(request: Request) -> HTTPResponse:
        data = parse_body(request, api_keys.ApiKeyInput)
        row, key = await api_keys.create_api_key(
            request.ctx.principal, data, request_id=request.ctx.request_id
        )
        headers = {"Location": f"/api/v1/api-keys/{row['id']}", "Cache-Control": "no-store"}
        return single(request, {**row, "key": key}, status=201, headers=headers)

    async def list_keys(request: Request) -> HTTPResponse | None:
        principal, limits = request.ctx.principal, page_limits(request)
        if media_of(request) == CSV:
            return await csv_export.stream(
                request,
                "api-keys",
                list_query(request),
                lambda query: api_keys.list_api_keys(principal, query, **limits),
                fields=tuple(schemas.ApiKey.model_fields),
                mask=None,
                page_size=limits["max_page_size"],
            )
        page = await api_keys.list_api_keys(principal, list_query(request), encoded=True, **limits)
        return collection(request, page)

    async def get(request: Request, ident: str) -> HTTPResponse:
        row = await api_keys.get_api_key(request.ctx.principal, parse_id(ident, "api key"))
        return single(request, row)

    async def revoke(request: Request, ident: str) -> HTTPResponse:
        await api_keys.revoke_api_key(
            request.ctx.principal,
            parse_id(ident, "api key"),
            notices=request.app.ctx.auth.denylist,
            request_id=request.ctx.request_id,
        )
        return HTTPResponse(status=204)

    item = "/api-keys/<ident:(?P<ident>[^/:]+)>"
    bp.add_route(create, "/api-keys", methods=["POST"], name="api_keys_create")
    bp.add_route(
        list_keys, "/api-keys", methods=["GET", "HEAD"], name="api_keys_list", ctx_csv=True
    )
    bp.add_route(get, item, methods=["GET", "HEAD"], name="api_keys_get")
    bp.add_route(revoke, item, methods=["DELETE"], name="api_keys_revoke")

    tag, scope = "api-keys", "api-keys:admin"
    doc.operation(
        "post",
        "/api-keys",
        summary="Create an API key (the key is shown once)",
        operation_id="create_api_key",
        tag=tag,
        status=201,
        response=envelope(ref(schemas.NewApiKey)),
        body=api_keys.ApiKeyInput,
        errors=(400, 422),
        scope=scope,
        models=(schemas.NewApiKey,),
    )
    doc.operation(
        "get",
        "/api-keys",
        summary="List API keys",
        operation_id="list_api_keys",
        tag=tag,
        response=envelope({"type": "array", "items": ref(schemas.ApiKey)}, paginated=True),
        params=list(LIST_PARAMS),
        errors=(400,),
        scope=scope,
        models=(schemas.ApiKey,),
        csv=True,
    )
    doc.operation(
        "get",
        "/api-keys/{id}",
        summary="Get an API key",
        operation_id="get_api_key",
        tag=tag,
        response=envelope(ref(schemas.ApiKey)),
        params=[ID_PARAM],
        errors=(400, 404),
        scope=scope,
        models=(schemas.ApiKey,),
    )
    doc.operation(
        "delete",
        "/api-keys/{id}",
        summary="Revoke an API key",
        operation_id="revoke_api_key",
        tag=tag,
        response=None,
        status=204,
        params=[ID_PARAM],
        errors=(400, 404),
        scope=scope,
    )
