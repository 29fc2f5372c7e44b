"""Lists shared by every door: filtering, ordering and pagination.

Keyset pagination is the default: the page token carries the sort key of the
last row returned, so concurrent inserts or deletes never make a page skip or
repeat a row. Offset pagination (``page``/``per_page``) is offered for UIs that
need totals and page numbers; it can shift under concurrent writes.

Page tokens are opaque to clients (URL-safe base64 of JSON) and are bound to
the filter and order they were issued for.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from tortoise import fields as tfields
from tortoise.models import Model

from db.errors import FieldError, InvalidArgument, NotFound
from db.filtering import FilterField, parse_filter, to_sql
from db.principal import Principal
from db.sql import Params, dialect, pg_json_time, select, select_json

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_PAGE_NUMBER = 1_000_000


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    """One resource's table, the columns it returns, and what lists may filter and sort by.

    ``computed`` adds select-list expressions per dialect (``{alias}`` is the
    table alias), returned as JSON-decoded columns.
    """

    name: str
    model: type[Model]
    columns: tuple[str, ...]
    filterable: Mapping[str, FilterField]
    sortable: tuple[str, ...]
    default_order: str = "created_at desc, id desc"
    computed: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    datetime_columns: tuple[str, ...] = field(init=False)
    _select_lists: dict[tuple[frozenset[str] | None, str | None], str] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        fields_map = self.model._meta.fields_map
        object.__setattr__(self, "_select_lists", {})
        object.__setattr__(
            self,
            "datetime_columns",
            tuple(c for c in self.columns if isinstance(fields_map.get(c), tfields.DatetimeField)),
        )

    def column(self, public: str) -> str:
        spec = self.filterable.get(public)
        return spec.column or public if spec else public

    @property
    def table(self) -> str:
        name: str = self.model._meta.db_table
        return name

    def json_select_list(self, fields: Collection[str] | None = None) -> str:
        """PostgreSQL: the projection that ``json_rows`` turns into one JSON object per row."""
        wanted = None if fields is None else frozenset(fields)
        key = (wanted, "json")
        cached = self._select_lists.get(key)
        if cached is None:
            parts = [
                f"{pg_json_time('t.' + c)} AS {c}" if c in self.datetime_columns else f"t.{c}"
                for c in self.columns
                if wanted is None or c in wanted
            ]
            parts += [
                f"({expr['postgres'].format(alias='t')}) AS {n}"
                for n, expr in self.computed.items()
                if wanted is None or n in wanted
            ]
            cached = self._select_lists[key] = ", ".join(parts)
        return cached

    def select_list(self, fields: Collection[str] | None = None) -> str:
        """The select list for ``fields`` (all when None), over the table alias ``t``."""
        wanted = None if fields is None else frozenset(fields)
        computed = [n for n in self.computed if wanted is None or n in wanted]
        key = (wanted, dialect() if computed else None)
        cached = self._select_lists.get(key)
        if cached is None:
            columns = self.columns if wanted is None else [c for c in self.columns if c in wanted]
            parts = [f"t.{c}" for c in columns]
            parts += [
                f"({self.computed[n][str(key[1])].format(alias='t')}) AS {n}" for n in computed
            ]
            cached = self._select_lists[key] = ", ".join(parts)
        return cached

    async def rows(
        self, where: str, params: Params, tail: str = "", fields: Collection[str] | None = None
    ) -> list[dict[str, Any]]:
        """``SELECT <columns> FROM <table> t WHERE <where> <tail>`` as decoded dicts.

        ``fields`` limits the columns (computed ones are costly: skip what is not asked).
        """
        return await select(
            f"SELECT {self.select_list(fields)} FROM {self.table} t WHERE {where} {tail}",
            params.values,
            datetimes=self.datetime_columns,
            json=tuple(self.computed),
        )

    async def json_rows(
        self, where: str, params: Params, tail: str = "", fields: Collection[str] | None = None
    ) -> list[str] | None:
        """The rows ``rows`` would return, each as JSON text built by PostgreSQL.

        ``row_to_json`` over a LATERAL projection of the row: columns keep their
        names, times are formatted as orjson writes them (``pg_json_time``) and
        computed fields, already JSON, are embedded as they are. The bytes equal
        what ``rest.wire`` would write for the decoded row, without decoding and
        re-encoding every value in Python. None on SQLite: use ``rows``.
        """
        return await select_json(
            f"SELECT row_to_json(j)::text FROM {self.table} t CROSS JOIN LATERAL "
            f"(SELECT {self.json_select_list(fields)}) j WHERE {where} {tail}",
            params.values,
        )


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


def _invalid(param: str, msg: str) -> InvalidArgument:
    return InvalidArgument(
        f"{param}: {msg}",
        errors=[FieldError(loc=("query", param), msg=msg, type=f"invalid_{param}")],
    )


def parse_order_by(text: str | None, spec: ResourceSpec) -> list[tuple[str, bool]]:
    """``"created_at desc, id"`` -> ``[("created_at", True), ("id", False)]``, id always last."""
    raw = text if text and text.strip() else spec.default_order
    keys: list[tuple[str, bool]] = []
    for part in raw.split(","):
        words = part.split()
        if not words or len(words) > 2:
            raise _invalid(
                "order_by", f"cannot parse {part.strip()!r}; use 'field [asc|desc], ...'"
            )
        name = words[0]
        direction = words[1].lower() if len(words) == 2 else "asc"
        if name not in spec.sortable:
            raise _invalid(
                "order_by",
                f"cannot sort by {name!r}; sortable fields: {', '.join(spec.sortable)}",
            )
        if direction not in ("asc", "desc"):
            raise _invalid("order_by", f"direction must be asc or desc, not {words[1]!r}")
        if any(existing == name for existing, _ in keys):
            raise _invalid("order_by", f"{name!r} appears twice")
        keys.append((name, direction == "desc"))
    if not any(name == "id" for name, _ in keys):
        keys.append(("id", keys[-1][1]))
    return keys


def _fingerprint(filter_text: str | None, order: Sequence[tuple[str, bool]]) -> str:
    basis = f"{(filter_text or '').strip()}|{order}"
    return hashlib.blake2b(basis.encode(), digest_size=6).hexdigest()


def encode_token(values: Sequence[Any], fingerprint: str) -> str:
    payload = orjson.dumps({"k": list(values), "f": fingerprint}, option=orjson.OPT_UTC_Z)
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


def decode_token(
    token: str, spec: ResourceSpec, order: Sequence[tuple[str, bool]], fingerprint: str
) -> list[Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        values = payload["k"]
        if payload["f"] != fingerprint:
            raise _invalid(
                "page_token",
                "the token was issued for another filter or order_by; "
                "repeat the same filter and order_by, or start without a page_token",
            )
        if not isinstance(values, list) or len(values) != len(order):
            raise ValueError("shape")
        return [
            _coerce_key(spec, name, value) for (name, _), value in zip(order, values, strict=True)
        ]
    except InvalidArgument:
        raise
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise _invalid("page_token", "not a token this API issued; start without one") from None


def _coerce_key(spec: ResourceSpec, name: str, value: Any) -> Any:
    kind = spec.filterable[name].kind if name in spec.filterable else "int"
    if kind == "datetime":
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool) or abs(value) >= 2**31:
            raise ValueError("int expected")
        return value
    if not isinstance(value, str):
        raise ValueError("str expected")
    return value


def _after(
    spec: ResourceSpec, order: Sequence[tuple[str, bool]], values: Sequence[Any], p: Params
) -> str:
    """Rows strictly after ``values`` in ``order``: (a > x) OR (a = x AND b > y) ..."""
    alternatives: list[str] = []
    for i, (name, desc) in enumerate(order):
        terms = [f"t.{spec.column(n)} = {p(values[j])}" for j, (n, _) in enumerate(order[:i])]
        terms.append(f"t.{spec.column(name)} {'<' if desc else '>'} {p(values[i])}")
        alternatives.append("(" + " AND ".join(terms) + ")")
    return "(" + " OR ".join(alternatives) + ")"


def clamp_page_size(value: int | None, *, default: int, maximum: int, param: str) -> int:
    if value is None:
        return default
    if value < 1:
        raise _invalid(param, f"must be at least 1, got {value}")
    return min(value, maximum)


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
        raise _invalid("view", f"use basic or full, not {query.view!r}")
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
            raise _invalid("page", "use either page/per_page or page_size/page_token, not both")
        page = 1 if query.page is None else query.page
        if not 1 <= page <= MAX_PAGE_NUMBER:
            raise _invalid("page", f"must be between 1 and {MAX_PAGE_NUMBER}, got {page}")
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
            items=rows, page_size=per_page, total_size=total, page=page,
            per_page=per_page, items_json=None if texts is None else _json_array(texts),
        )  # fmt: skip

    size = clamp_page_size(
        query.page_size, default=default_page_size, maximum=max_page_size, param="page_size"
    )
    fingerprint = _fingerprint(query.filter, order)
    matching_sql, matching_values = " AND ".join(conditions), list(p.values)  # all pages
    if query.page_token:
        after = decode_token(query.page_token, spec, order, fingerprint)
        conditions.append(_after(spec, order, after, p))
    where_sql, tail = " AND ".join(conditions), f"ORDER BY {order_sql} LIMIT {p(size + 1)}"
    texts = await spec.json_rows(where_sql, p, tail, fields) if encoded else None
    if texts is not None:
        last_json = texts[size - 1] if len(texts) > size else None
        return Page(
            items=[], page_size=size, items_json=_json_array(texts[:size]),
            next_page_token=None if last_json is None else encode_token(
                _keys(spec, order, orjson.loads(last_json)), fingerprint
            ),
        )  # fmt: skip
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
