"""AIP standard methods (list, get, create, update, replace, delete) for one resource.

A resource module describes itself with a ``Resource`` and calls
``add_standard_methods``; routes and their OpenAPI operations come out of the
same description, so a new resource is one small module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sanic import Blueprint, HTTPResponse, Request

from db.listing import ListQuery, Page
from db.principal import Principal
from rest import csv_export
from rest.docs import (
    ID_PARAM,
    IDEMPOTENCY_KEY,
    IF_MATCH,
    IF_NONE_MATCH,
    LIST_PARAMS,
    envelope,
    ref,
    with_article,
)
from rest.idempotency import respond_once
from rest.negotiation import CSV, media_of
from rest.wire import (
    collection,
    if_match_versions,
    list_query,
    parse_body,
    parse_id,
    parse_mask,
    single,
)

if TYPE_CHECKING:
    from rest.docs import ApiDoc

Row = dict[str, Any]
Versions = Collection[int] | None


@dataclass(frozen=True)
class Resource:
    """What REST needs to know about a resource to serve its standard methods."""

    collection: str
    name: str
    schema: type[BaseModel]
    create_input: type[BaseModel]
    replace_input: type[BaseModel]
    patch_input: type[BaseModel]
    list_rows: Callable[..., Awaitable[Page]]
    get: Callable[[Principal, int], Awaitable[Row]]
    update: Callable[..., Awaitable[Row]]
    delete: Callable[..., Awaitable[Any]]
    create: Callable[[Principal, Any], Awaitable[Row]] | None = None
    list_options: Callable[[Request], dict[str, Any]] = lambda _request: {}
    list_params: list[dict[str, Any]] = field(default_factory=list)
    # Fields a list shows only with view=full (computed, like an order's items).
    computed: tuple[str, ...] = ()

    @cached_property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.schema.model_fields)

    @property
    def title(self) -> str:
        return self.name.capitalize()

    @property
    def read_scope(self) -> str:
        return f"{self.collection}:read"

    @property
    def write_scope(self) -> str:
        return f"{self.collection}:write"


def page_limits(request: Request) -> dict[str, int]:
    settings = request.app.ctx.settings
    return {
        "default_page_size": settings.page_size_default,
        "max_page_size": settings.page_size_max,
    }


def location(request: Request, res: Resource, ident: int) -> str:
    return f"/api/v1/{res.collection}/{ident}"


async def export_csv(
    request: Request, res: Resource, mask: frozenset[str] | None
) -> HTTPResponse | None:
    """The whole list as CSV (``Accept: text/csv``), page by page."""
    principal, options, limits = (
        request.ctx.principal,
        res.list_options(request),
        page_limits(request),
    )

    def fetch(query: ListQuery) -> Awaitable[Page]:
        return res.list_rows(principal, query, fields=mask, encoded=True, **options, **limits)

    return await csv_export.stream(
        request, res.collection, list_query(request), fetch, fields=res.fields, mask=mask,
        page_size=limits["max_page_size"], computed=res.computed,
    )  # fmt: skip


def add_standard_methods(bp: Blueprint, doc: ApiDoc, res: Resource) -> None:
    base = f"/{res.collection}"
    item = f"/{res.collection}/<ident:(?P<ident>[^/:]+)>"
    doc_item = f"{base}/{{id}}"
    tag = res.collection

    async def list_handler(request: Request) -> HTTPResponse | None:
        mask = parse_mask(request, res.fields)
        if media_of(request) == CSV:
            return await export_csv(request, res, mask)
        page = await res.list_rows(
            request.ctx.principal,
            list_query(request),
            fields=mask,
            encoded=True,
            **res.list_options(request),
            **page_limits(request),
        )
        return collection(request, page, mask=mask)

    async def get_handler(request: Request, ident: str) -> HTTPResponse:
        mask = parse_mask(request, res.fields)
        row = await res.get(request.ctx.principal, parse_id(ident, res.name))
        return single(request, row, mask=mask)

    async def update_handler(request: Request, ident: str) -> HTTPResponse:
        model = res.patch_input if request.method == "PATCH" else res.replace_input
        oid = parse_id(ident, res.name)
        versions = if_match_versions(request)
        changes = parse_body(request, model)
        row = await res.update(request.ctx.principal, oid, changes, expected_versions=versions)
        return single(request, row)

    async def delete_handler(request: Request, ident: str) -> HTTPResponse:
        oid = parse_id(ident, res.name)
        await res.delete(request.ctx.principal, oid, expected_versions=if_match_versions(request))
        return HTTPResponse(status=204)

    bp.add_route(
        list_handler, base, methods=["GET", "HEAD"], name=f"{res.collection}_list", ctx_csv=True
    )
    bp.add_route(get_handler, item, methods=["GET", "HEAD"], name=f"{res.collection}_get")
    bp.add_route(update_handler, item, methods=["PATCH", "PUT"], name=f"{res.collection}_update")
    bp.add_route(delete_handler, item, methods=["DELETE"], name=f"{res.collection}_delete")

    schema = ref(res.schema)
    doc.operation(
        "get",
        base,
        summary=f"List {res.collection}",
        operation_id=f"list_{res.collection}",
        scope=res.read_scope,
        tag=tag,
        response=envelope({"type": "array", "items": schema}, paginated=True),
        params=[*LIST_PARAMS, *res.list_params, IF_NONE_MATCH],
        errors=(400,),
        models=(res.schema,),
        csv=True,
    )
    doc.operation(
        "get",
        doc_item,
        summary=f"Get {with_article(res.name)}",
        operation_id=f"get_{res.name}",
        scope=res.read_scope,
        tag=tag,
        response=envelope(schema),
        errors=(400, 404),
        params=[ID_PARAM, LIST_PARAMS[-1], IF_NONE_MATCH],
    )
    doc.operation(
        "patch",
        doc_item,
        summary=f"Update some fields of {with_article(res.name)}",
        operation_id=f"update_{res.name}",
        scope=res.write_scope,
        tag=tag,
        response=envelope(schema),
        body=res.patch_input,
        params=[ID_PARAM, IF_MATCH],
        errors=(400, 404, 409, 412, 415, 422),
    )
    doc.operation(
        "put",
        doc_item,
        summary=f"Replace {with_article(res.name)}'s writable fields",
        operation_id=f"replace_{res.name}",
        scope=res.write_scope,
        tag=tag,
        response=envelope(schema),
        body=res.replace_input,
        params=[ID_PARAM, IF_MATCH],
        errors=(400, 404, 409, 412, 415, 422),
    )
    doc.operation(
        "delete",
        doc_item,
        summary=f"Delete {with_article(res.name)}",
        operation_id=f"delete_{res.name}",
        scope=res.write_scope,
        tag=tag,
        response=None,
        status=204,
        params=[ID_PARAM, IF_MATCH],
        errors=(400, 404, 409, 412),
    )

    create = res.create
    if create is None:
        return

    async def create_handler(request: Request) -> HTTPResponse:
        data = parse_body(request, res.create_input)

        async def run() -> tuple[int, Row, dict[str, str]]:
            row = await create(request.ctx.principal, data)
            return 201, row, {"Location": location(request, res, row["id"])}

        return await respond_once(request, run)

    bp.add_route(create_handler, base, methods=["POST"], name=f"{res.collection}_create")
    doc.operation(
        "post",
        base,
        summary=f"Create {with_article(res.name)}",
        operation_id=f"create_{res.name}",
        scope=res.write_scope,
        tag=tag,
        response=envelope(schema),
        status=201,
        body=res.create_input,
        params=[IDEMPOTENCY_KEY],
        errors=(400, 409, 413, 415, 422),
    )
