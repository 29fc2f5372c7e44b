"""REST routes and OpenAPI operations, derived from a resource's declaration.

For each ``db.declare.Resource``: the AIP standard methods (list, get, create,
update, replace, delete), one ``POST /<collection>/{id}:<action>`` per declared
action, ``GET /<collection>/{id}/<relation>`` per to-many relation, ``expand=`` for
to-one relations, and every operation's OpenAPI entry. Routes and documentation
come out of the same declaration, so neither can forget the other.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from sanic import Blueprint, HTTPResponse, Request

from db.crud import require_row
from db.declare import Action, Relation, Resource, with_article
from db.errors import FieldError, InvalidArgument
from db.listing import ListQuery, Page
from rest import csv_export
from rest.docs import (
    ID_PARAM,
    IDEMPOTENCY_KEY,
    IF_MATCH,
    IF_NONE_MATCH,
    LIST_PARAMS,
    envelope,
    ref,
)
from rest.idempotency import Result, respond_once
from rest.negotiation import CSV, media_of
from rest.wire import (
    bool_arg,
    collection,
    if_match_versions,
    list_query,
    parse_body,
    parse_id,
    parse_mask,
    single,
)

if TYPE_CHECKING:
    from db.catalog import Catalog
    from rest.docs import ApiDoc

Row = dict[str, Any]


def page_limits(request: Request) -> dict[str, int]:
    settings = request.app.ctx.settings
    return {
        "default_page_size": settings.page_size_default,
        "max_page_size": settings.page_size_max,
    }


def _list_options(request: Request, res: Resource) -> dict[str, Any]:
    return {option.name: bool_arg(request, option.name) for option in res.list_options}


def _list_params(res: Resource) -> list[dict[str, Any]]:
    return [
        {"name": o.name, "in": "query", "schema": {"type": "boolean"}, "description": o.description}
        for o in res.list_options
    ]


def _expand_param(res: Resource) -> list[dict[str, Any]]:
    names = [r.name for r in res.relations if not r.many]
    if not names:
        return []
    return [
        {
            "name": "expand",
            "in": "query",
            "schema": {"type": "string"},
            "description": "Embed related objects, comma-separated: "
            + ", ".join(f"`{n}`" for n in names)
            + " (each as the object or null, in place of nothing: the id field stays).",
        }
    ]


def _expansions(request: Request, res: Resource) -> list[Relation]:
    raw = request.args.get("expand")
    if raw is None or not raw.strip():
        return []
    names = [part.strip() for part in raw.split(",") if part.strip()]
    known = {r.name: r for r in res.relations if not r.many}
    unknown = [n for n in names if n not in known]
    if unknown:
        available = ", ".join(known) or "none"
        raise InvalidArgument(
            f"expand: unknown relation(s) {', '.join(unknown)}; available: {available}",
            errors=[FieldError(("query", "expand"), f"unknown: {unknown}", "invalid_expand")],
        )
    if media_of(request) == CSV:
        raise InvalidArgument(
            "expand: not available with text/csv (a cell holds one value)",
            errors=[FieldError(("query", "expand"), "not with text/csv", "invalid_expand")],
        )
    return [known[n] for n in dict.fromkeys(names)]


async def _expand(
    request: Request, catalog: Catalog, relations: list[Relation], rows: list[Row]
) -> None:
    """Embed each to-one relation's object (or None) in ``rows``: one query per relation."""
    principal = request.ctx.principal
    for relation in relations:
        target = catalog.by_name[relation.target]
        ids = sorted({row[relation.key] for row in rows if row.get(relation.key) is not None})
        found = {r["id"]: r for r in await target.by_ids(principal, ids)} if ids else {}
        for row in rows:
            row[relation.name] = found.get(row[relation.key])


def _mask(request: Request, res: Resource, expanded: list[Relation]) -> frozenset[str] | None:
    mask = parse_mask(request, res.fields)
    if mask is not None and expanded:
        mask = mask | {r.name for r in expanded} | {r.key for r in expanded}
    return mask


class Routes:
    """Adds one resource's routes and operations to the API blueprint and document."""

    def __init__(self, bp: Blueprint, doc: ApiDoc, catalog: Catalog) -> None:
        self.bp, self.doc, self.catalog = bp, doc, catalog

    def add(self, res: Resource) -> None:
        self.standard(res)
        for action in res.actions:
            self.action(res, action)
        for relation in res.relations:
            if relation.many:
                self.sub_collection(res, relation)

    def _read_many(
        self,
        request: Request,
        res: Resource,
        query: ListQuery,
        where: dict[str, Any] | None = None,
    ) -> Awaitable[HTTPResponse | None]:
        async def run() -> HTTPResponse | None:
            expanded = _expansions(request, res)
            mask = _mask(request, res, expanded)
            options: dict[str, Any] = {**_list_options(request, res), **page_limits(request)}
            if where:
                options["where"] = where
            if media_of(request) == CSV:
                return await _export_csv(request, res, query, mask, options)
            page = await res.list_rows(
                request.ctx.principal, query, fields=mask, encoded=not expanded, **options
            )
            if expanded:
                await _expand(request, self.catalog, expanded, page.items)
            return collection(request, page, mask=mask)

        return run()

    def standard(self, res: Resource) -> None:
        bp, doc, catalog = self.bp, self.doc, self.catalog
        base = f"/{res.collection}"
        item = f"/{res.collection}/<ident:(?P<ident>[^/:]+)>"
        doc_item = f"{base}/{{id}}"
        tag = res.collection
        schema = ref(res.shape)
        expand = _expand_param(res)

        async def list_handler(request: Request) -> HTTPResponse | None:
            return await self._read_many(request, res, list_query(request))

        async def get_handler(request: Request, ident: str) -> HTTPResponse:
            expanded = _expansions(request, res)
            mask = _mask(request, res, expanded)
            row = await res.get(request.ctx.principal, parse_id(ident, res.name))
            if expanded:
                await _expand(request, catalog, expanded, [row])
            return single(request, row, mask=mask, embedded=[r.name for r in expanded])

        async def update_handler(request: Request, ident: str) -> HTTPResponse:
            model = res.patch_input if request.method == "PATCH" else res.replace_input
            oid = parse_id(ident, res.name)
            versions = if_match_versions(request)
            changes = parse_body(request, model)
            row = await res.update(request.ctx.principal, oid, changes, expected_versions=versions)
            return single(request, row)

        async def delete_handler(request: Request, ident: str) -> HTTPResponse:
            oid = parse_id(ident, res.name)
            versions = if_match_versions(request)
            await res.delete(request.ctx.principal, oid, expected_versions=versions)
            return HTTPResponse(status=204)

        name = res.plural
        bp.add_route(list_handler, base, methods=["GET", "HEAD"], name=f"{name}_list", ctx_csv=True)
        bp.add_route(get_handler, item, methods=["GET", "HEAD"], name=f"{name}_get")
        bp.add_route(update_handler, item, methods=["PATCH", "PUT"], name=f"{name}_update")
        bp.add_route(delete_handler, item, methods=["DELETE"], name=f"{name}_delete")

        doc.operation(
            "get",
            base,
            summary=f"List {res.plural.replace('_', ' ')}",
            operation_id=f"list_{res.plural}",
            scope=res.read_scope,
            tag=tag,
            response=envelope({"type": "array", "items": schema}, paginated=True),
            params=[*LIST_PARAMS, *_list_params(res), *expand, IF_NONE_MATCH],
            errors=(400,),
            models=(res.shape,),
            csv=True,
        )
        doc.operation(
            "get",
            doc_item,
            summary=f"Get {with_article(res.label)}",
            operation_id=f"get_{res.name}",
            scope=res.read_scope,
            tag=tag,
            response=envelope(schema),
            errors=(400, 404),
            params=[ID_PARAM, LIST_PARAMS[-1], *expand, IF_NONE_MATCH],
        )
        article = with_article(res.label)
        for method, summary, verb, body in (
            ("patch", f"Update some fields of {article}", "update", res.patch_input),
            ("put", f"Replace {article}'s writable fields", "replace", res.replace_input),
        ):
            doc.operation(
                method,
                doc_item,
                summary=summary,
                operation_id=f"{verb}_{res.name}",
                scope=res.write_scope,
                tag=tag,
                response=envelope(schema),
                body=body,
                params=[ID_PARAM, IF_MATCH],
                errors=(400, 404, 409, 412, 415, 422),
            )
        doc.operation(
            "delete",
            doc_item,
            summary=f"Delete {with_article(res.label)}",
            operation_id=f"delete_{res.name}",
            scope=res.write_scope,
            tag=tag,
            response=None,
            status=204,
            params=[ID_PARAM, IF_MATCH],
            errors=(400, 404, 409, 412),
        )

        create, create_input = res.create, res.create_input
        if create is None or create_input is None:
            return

        async def create_handler(request: Request) -> HTTPResponse:
            data = parse_body(request, create_input)

            async def run() -> Result:
                row = await create(request.ctx.principal, data)
                return 201, row, {"Location": f"/api/v1/{res.collection}/{row['id']}"}

            return await respond_once(request, run)

        bp.add_route(create_handler, base, methods=["POST"], name=f"{name}_create")
        doc.operation(
            "post",
            base,
            summary=f"Create {with_article(res.label)}",
            operation_id=f"create_{res.name}",
            scope=res.write_scope,
            tag=tag,
            response=envelope(schema),
            status=201,
            body=create_input,
            params=[IDEMPOTENCY_KEY],
            errors=(400, 409, 413, 415, 422),
        )

    def action(self, res: Resource, action: Action) -> None:
        async def handler(request: Request, ident: str) -> HTTPResponse:
            oid, versions = parse_id(ident, res.name), if_match_versions(request)

            async def run() -> Result:
                row = await action.run(request.ctx.principal, oid, expected_versions=versions)
                return 200, row, {}

            return await respond_once(request, run)

        self.bp.add_route(
            handler,
            f"/{res.collection}/<ident:(?P<ident>[^/:]+):{action.name}>",
            methods=["POST"],
            name=f"{res.plural}_{action.name}",
        )
        self.doc.operation(
            "post",
            f"/{res.collection}/{{id}}:{action.name}",
            summary=action.summary,
            operation_id=f"{action.name}_{res.name}",
            scope=res.write_scope,
            tag=res.collection,
            response=envelope(ref(res.shape)),
            params=[ID_PARAM, IF_MATCH, IDEMPOTENCY_KEY],
            errors=(400, 404, 409, 412, 422),
        )

    def sub_collection(self, res: Resource, relation: Relation) -> None:
        target = self.catalog.by_name[relation.target]

        async def handler(request: Request, ident: str) -> HTTPResponse | None:
            parent = parse_id(ident, res.name)
            await require_row(request.ctx.principal, res.spec, parent)
            return await self._read_many(
                request, target, list_query(request), where={relation.key: parent}
            )

        self.bp.add_route(
            handler,
            f"/{res.collection}/<ident:(?P<ident>[^/:]+)>/{relation.name}",
            methods=["GET", "HEAD"],
            name=f"{res.plural}_{relation.name}",
            ctx_csv=True,
        )
        self.doc.operation(
            "get",
            f"/{res.collection}/{{id}}/{relation.name}",
            summary=f"List {with_article(res.label)}'s {relation.name}",
            operation_id=f"list_{res.name}_{relation.name}",
            scope=target.read_scope,
            tag=res.collection,
            response=envelope({"type": "array", "items": ref(target.shape)}, paginated=True),
            params=[
                ID_PARAM,
                *LIST_PARAMS,
                *_list_params(target),
                *_expand_param(target),
                IF_NONE_MATCH,
            ],
            errors=(400, 404),
            models=(target.shape,),
            csv=True,
        )


async def _export_csv(
    request: Request,
    res: Resource,
    query: ListQuery,
    mask: frozenset[str] | None,
    options: dict[str, Any],
) -> HTTPResponse | None:
    """The whole list as CSV (``Accept: text/csv``), page by page."""
    principal = request.ctx.principal

    def fetch(page_query: ListQuery) -> Awaitable[Page]:
        return res.list_rows(principal, page_query, fields=mask, encoded=True, **options)

    return await csv_export.stream(
        request,
        res.plural,
        query,
        fetch,
        fields=res.fields,
        mask=mask,
        page_size=options["max_page_size"],
        computed=tuple(res.computed),
    )


def add_resources(bp: Blueprint, doc: ApiDoc, catalog: Catalog) -> None:
    """Routes and operations for every resource ``catalog`` declares."""
    routes = Routes(bp, doc, catalog)
    for res in catalog.resources:
        routes.add(res)
