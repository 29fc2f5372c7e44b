"""Lists shared by every door: filtering, ordering and pagination.

Keyset pagination is the default: the page token carries the sort key of the
last row returned, so concurrent inserts or deletes never make a page skip or
repeat a row. Offset pagination (``page``/``per_page``) is offered for UIs that
need totals and page numbers; it can shift under concurrent writes.

Page tokens (``db/page_tokens.py``) are opaque to clients and bound to the filter
and order they were issued for; what a resource lists is its ``db/spec.py``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from db.errors import NotFound
from db.filtering import parse_filter, to_sql
from db.page_tokens import (
    after_keys,
    clamp_page_size,
    decode_token,
    encode_token,
    invalid,
    order_fingerprint,
    parse_order_by,
)
from db.principal import Principal
from db.spec import ResourceSpec
from db.sql import Params, select

# Page sizes: the one source for REST pages, GraphQL connections and the GraphQL cost
# estimate (``gateway.settings`` takes its PAGE_SIZE_DEFAULT / PAGE_SIZE_MAX defaults from
# here), and for the smaller pages of a to-many relation nested in each object
# (``Supplier.products(first:)``).
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
RELATION_PAGE_DEFAULT = 20
RELATION_PAGE_MAX = 100
MAX_PAGE_NUMBER = 1_000_000


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A list request as every door states it.

    ``view`` is AIP-157's: ``basic`` (the default for lists) leaves out computed
    fields such as an order's items; ``full`` includes them, as a get does.
    """

    filter: str | None = None
    order_by: str | None = None
    page_size: int | None = None
    page_token: str | None = None
    page: int | None = None
    per_page: int | None = None
    view: str | None = None


@dataclass(slots=True)
class Page:
    """One page of rows. ``items_json`` (when a caller asked for ``encoded``) holds
    the rows as one JSON array instead of ``items``."""

    items: list[dict[str, Any]]
    next_page_token: str | None = None
    page_size: int = 0
    total_size: int | None = None
    page: int | None = None
    per_page: int | None = None
    items_json: bytes | None = None
    # One keyset token per row (the token that continues after it), when asked for:
    # GraphQL's edge cursors are the same tokens REST hands out as page_token.
    cursors: list[str] | None = None


def _conditions(
    principal: Principal, spec: ResourceSpec, query: ListQuery, where: Mapping[str, Any] | None
) -> tuple[list[str], Params]:
    p = Params(principal.organization_id)
    conditions = ["t.organization_id = $1"]
    for column, value in (where or {}).items():
        conditions.append(f"t.{column} IS NULL" if value is None else f"t.{column} = {p(value)}")
    expr = parse_filter(query.filter, spec.filterable)
    if expr is not None:
        conditions.append(to_sql(expr, spec.filterable, p))
    return conditions, p


async def list_rows(
    principal: Principal,
    spec: ResourceSpec,
    query: ListQuery,
    *,
    where: Mapping[str, Any] | None = None,
    fields: Collection[str] | None = None,
    default_page_size: int = DEFAULT_PAGE_SIZE,
    max_page_size: int = MAX_PAGE_SIZE,
    encoded: bool = False,
    cursors: bool = False,
    with_total: bool = False,
) -> Page:
    """One page of ``spec``'s rows in the caller's organization.

    ``where`` adds equality conditions (``None`` means IS NULL) on columns;
    ``fields`` asks for only some fields (rows may carry a few more: the id and
    sort keys). ``encoded`` asks for the page as JSON (``Page.items_json``) where
    the database can build it (PostgreSQL, all fields of the view); the wire
    format then skips decoding and re-encoding every value. ``cursors`` adds a
    keyset token per row; ``with_total`` counts every matching row (keyset pages too).
    """
    encoded = encoded and fields is None and not cursors and not with_total
    order = parse_order_by(query.order_by, spec)
    if query.view not in (None, "basic", "full"):
        raise invalid("view", f"use basic or full, not {query.view!r}")
    if fields is None and query.view != "full":
        fields = spec.columns  # BASIC view (AIP-157): computed fields only when asked for
    if fields is not None:
        fields = {*fields, "id", *(spec.column(name) for name, _ in order)}
    conditions, p = _conditions(principal, spec, query, where)
    order_sql = ", ".join(
        f"t.{spec.column(name)} {'DESC' if desc else 'ASC'}" for name, desc in order
    )

    if query.page is not None or query.per_page is not None:
        if query.page_token:
            raise invalid("page", "use either page/per_page or page_size/page_token, not both")
        page = 1 if query.page is None else query.page
        if not 1 <= page <= MAX_PAGE_NUMBER:
            raise invalid("page", f"must be between 1 and {MAX_PAGE_NUMBER}, got {page}")
        per_page = clamp_page_size(
            query.per_page, default=default_page_size, maximum=max_page_size, param="per_page"
        )
        where_sql = " AND ".join(conditions)
        total = await _count(spec, where_sql, p.values)
        limit, offset = p(per_page), p((page - 1) * per_page)
        tail = f"ORDER BY {order_sql} LIMIT {limit} OFFSET {offset}"
        texts = await spec.json_rows(where_sql, p, tail, fields) if encoded else None
        rows = [] if texts is not None else await spec.rows(where_sql, p, tail, fields)
        return Page(
            items=rows,
            page_size=per_page,
            total_size=total,
            page=page,
            per_page=per_page,
            items_json=None if texts is None else _json_array(texts),
        )

    size = clamp_page_size(
        query.page_size, default=default_page_size, maximum=max_page_size, param="page_size"
    )
    fingerprint = order_fingerprint(query.filter, order)
    matching_sql, matching_values = " AND ".join(conditions), list(p.values)  # all pages
    if query.page_token:
        after = decode_token(query.page_token, spec, order, fingerprint)
        conditions.append(after_keys(spec, order, after, p))
    where_sql, tail = " AND ".join(conditions), f"ORDER BY {order_sql} LIMIT {p(size + 1)}"
    texts = await spec.json_rows(where_sql, p, tail, fields) if encoded else None
    if texts is not None:
        last_json = texts[size - 1] if len(texts) > size else None
        return Page(
            items=[],
            page_size=size,
            items_json=_json_array(texts[:size]),
            next_page_token=None
            if last_json is None
            else encode_token(_keys(spec, order, orjson.loads(last_json)), fingerprint),
        )
    rows = await spec.rows(where_sql, p, tail, fields)
    next_token = None
    if len(rows) > size:
        rows = rows[:size]
        next_token = encode_token(_keys(spec, order, rows[-1]), fingerprint)
    result = Page(items=rows, next_page_token=next_token, page_size=size)
    if cursors:
        result.cursors = [encode_token(_keys(spec, order, row), fingerprint) for row in rows]
    if with_total:
        result.total_size = await _count(spec, matching_sql, matching_values)
    return result


async def _count(spec: ResourceSpec, where_sql: str, values: Sequence[Any]) -> int:
    counted = await select(f"SELECT count(*) AS n FROM {spec.table} t WHERE {where_sql}", values)
    return int(counted[0]["n"])


def _keys(
    spec: ResourceSpec, order: Sequence[tuple[str, bool]], row: Mapping[str, Any]
) -> list[Any]:
    return [row[spec.column(name)] for name, _ in order]


def _json_array(texts: list[str]) -> bytes:
    return ("[" + ",".join(texts) + "]").encode()


async def fetch_row(
    principal: Principal, spec: ResourceSpec, ident: int, fields: Collection[str] | None = None
) -> dict[str, Any]:
    """The row ``ident`` of ``spec`` in the caller's organization, or ``NotFound``.

    ``fields`` limits the columns (the id is always there).
    """
    rows = await spec.rows(
        "t.id = $1 AND t.organization_id = $2",
        Params(ident, principal.organization_id),
        fields=None if fields is None else {*fields, "id"},
    )
    if not rows:
        raise NotFound.for_resource(spec.name, ident)
    return rows[0]


async def fetch_rows(
    principal: Principal,
    spec: ResourceSpec,
    idents: Sequence[int],
    fields: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """Rows with these ids in the caller's organization (missing ones are left out).

    ``fields`` limits the columns (the id is always there).
    """
    if not idents:
        return []
    p = Params(principal.organization_id)
    return await spec.rows(
        f"t.organization_id = $1 AND {p.among('t.id', idents)}",
        p,
        fields=None if fields is None else {*fields, "id"},
    )
