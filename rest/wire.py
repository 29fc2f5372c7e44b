"""The REST wire format: envelopes, ETags, conditional requests, bodies, ids.

Bodies are built as bytes around the ``data`` part, so an ETag is computed from
exactly the bytes of ``data`` (and pagination) and the volatile ``metadata``
(request id, timestamp) never changes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

import orjson
from pydantic import BaseModel
from sanic.response import HTTPResponse

from db.errors import FieldError, InvalidArgument, NotFound, PreconditionFailed
from db.inputs import validate_input
from db.listing import ListQuery, Page
from gateway.caching import http_date, not_modified_since
from gateway.errors import MalformedBody, UnsupportedMediaType
from rest import xml

if TYPE_CHECKING:
    from sanic import Request

M = TypeVar("M", bound=BaseModel)

JSON = "application/json"
XML_TYPES = frozenset({"application/xml", "text/xml"})
_DUMP = orjson.OPT_UTC_Z
MAX_ID = 2**31 - 1


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=_DUMP)


def _metadata(request: Request, pagination: Mapping[str, Any] | None) -> bytes:
    meta: dict[str, Any] = {
        "request_id": getattr(request.ctx, "request_id", None),
        "timestamp": datetime.now(UTC),
    }
    if pagination is not None:
        meta["pagination"] = pagination
    return dumps(meta)


def _envelope(data: bytes, meta: bytes) -> bytes:
    return b'{"data":' + data + b',"metadata":' + meta + b"}"


def _not_modified(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if not header:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in candidates or etag in candidates


def _respond(
    request: Request,
    data: bytes,
    meta: bytes,
    etag: str | None,
    status: int,
    headers: dict[str, str] | None,
) -> HTTPResponse:
    out = {**headers, "Vary": "Accept"} if headers else {"Vary": "Accept"}
    media = getattr(request.ctx, "media", None)  # set only when not JSON (rest.negotiation)
    if etag is not None:
        if media is not None:
            etag = representation_etag(etag, media)
        out["ETag"] = etag
        if status == 200 and request.method in ("GET", "HEAD") and _not_modified(request, etag):
            return HTTPResponse(status=304, headers=out)
    if media is not None:
        body = xml.dumps(orjson.loads(_envelope(data, meta)))
        content_type = f"{media}; charset=utf-8"
        return HTTPResponse(body, status=status, headers=out, content_type=content_type)
    return HTTPResponse(_envelope(data, meta), status=status, headers=out, content_type=JSON)


def representation_etag(etag: str, media: str | None) -> str:
    """The ETag of the XML representation: the JSON one with ``-xml`` inside the
    quotes (another representation needs another strong validator, RFC 9110 8.8.3)."""
    if media is None or media == JSON:
        return etag
    return f'{etag[:-1]}-xml"'


def version_etag(version: int, mask: Collection[str] | None = None) -> str:
    """Strong ETag of a single resource: its version, plus the field mask if one applies."""
    if not mask:
        return f'"v{version}"'
    digest = hashlib.blake2b(",".join(sorted(mask)).encode(), digest_size=4).hexdigest()
    return f'"v{version}-{digest}"'


def body_etag(*parts: bytes) -> str:
    """Strong ETag of a body: a hash of its bytes (SHA-256: hardware-accelerated, so
    the cheapest strong hash for a page of JSON)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return f'"{digest.hexdigest()[:32]}"'


def apply_mask(row: dict[str, Any], mask: Collection[str] | None) -> dict[str, Any]:
    if not mask:
        return row
    return {key: value for key, value in row.items() if key in mask}


def parse_mask(request: Request, allowed: Collection[str]) -> frozenset[str] | None:
    """``fields=id,name`` -> the set of fields to return (unknown names are a 400)."""
    raw = request.args.get("fields")
    if raw is None or not raw.strip():
        return None
    mask = frozenset(part.strip() for part in raw.split(",") if part.strip())
    unknown = sorted(mask - set(allowed))
    if unknown:
        raise InvalidArgument(
            f"fields: unknown field(s) {', '.join(unknown)}; available: {', '.join(allowed)}",
            errors=[
                FieldError(("query", "fields"), f"unknown field(s): {unknown}", "invalid_fields")
            ],
        )
    return mask


def single(
    request: Request,
    row: dict[str, Any],
    *,
    mask: Collection[str] | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    embedded: Collection[str] = (),
) -> HTTPResponse:
    """One resource in the envelope, with its version ETag and its ``Last-Modified``
    (``updated_at``); ``If-Modified-Since`` answers 304 unless ``If-None-Match`` is sent.

    ``embedded`` names related objects the row carries (``expand=``): their ids and
    versions join the ETag and their ``updated_at`` the ``Last-Modified``, so a change to
    one of them is a new representation."""
    etag = version_etag(row["version"], mask) if "version" in row else None
    updated = row.get("updated_at")
    if embedded:
        others = [row.get(name) or {} for name in sorted(embedded)]
        if etag is not None:
            marks = ",".join(f"{o.get('id')}:{o.get('version')}" for o in others)
            digest = hashlib.blake2b(marks.encode(), digest_size=4).hexdigest()
            etag = f'{etag[:-1]}-{digest}"'
        times = [o["updated_at"] for o in others if isinstance(o.get("updated_at"), datetime)]
        if isinstance(updated, datetime) and times:
            updated = max(updated, *times)
    if status == 200 and isinstance(updated, datetime):
        headers = {**(headers or {}), "Last-Modified": http_date(updated)}
        if not_modified_since(request, updated):
            headers["Vary"] = "Accept"
            if etag is not None:
                headers["ETag"] = representation_etag(etag, getattr(request.ctx, "media", None))
            return HTTPResponse(status=304, headers=headers)
    data = dumps(apply_mask(row, mask))
    return _respond(request, data, _metadata(request, None), etag, status, headers)


def collection(request: Request, page: Page, *, mask: frozenset[str] | None = None) -> HTTPResponse:
    """A page of resources in the envelope, with a body ETag and a ``Link`` to the next page."""
    items = page.items
    if mask and items and not mask.issuperset(items[0]):
        items = [apply_mask(row, mask) for row in items]
    pagination: dict[str, Any]
    headers: dict[str, str] = {}
    if page.page is not None:
        per_page = page.per_page or 1
        total = page.total_size or 0
        pagination = {
            "page": page.page,
            "per_page": per_page,
            "total_size": total,
            "total_pages": (total + per_page - 1) // per_page,
        }
        if page.page * per_page < total:
            headers["Link"] = _link(request, {"page": str(page.page + 1)})
    else:
        pagination = {"page_size": page.page_size, "next_page_token": page.next_page_token}
        if page.next_page_token:
            headers["Link"] = _link(request, {"page_token": page.next_page_token})
    data = page.items_json if page.items_json is not None else dumps(items)
    return _respond(
        request,
        data,
        _metadata(request, pagination),
        body_etag(data, dumps(pagination)),
        200,
        headers,
    )


def list_data(request: Request, items: list[dict[str, Any]]) -> HTTPResponse:
    """A complete (unpaginated) list, e.g. batchGet or statistics."""
    data = dumps(items)
    return _respond(request, data, _metadata(request, None), body_etag(data), 200, None)


def _link(request: Request, replace: Mapping[str, str]) -> str:
    args = [(k, v) for k, values in request.args.items() for v in values if k not in replace]
    args.extend(replace.items())
    return f'<{request.path}?{urlencode(args)}>; rel="next"'


def int_arg(request: Request, name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidArgument(
            f"{name}: expected an integer, got {raw!r}",
            errors=[FieldError(("query", name), "expected an integer", "int_parsing")],
        ) from None


def bool_arg(request: Request, name: str) -> bool:
    raw = (request.args.get(name) or "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise InvalidArgument(f"{name}: expected true or false, got {raw!r}")
    return raw in ("true", "1")


def list_query(request: Request) -> ListQuery:
    """The list parameters every collection accepts."""
    return ListQuery(
        filter=request.args.get("filter"),
        order_by=request.args.get("order_by"),
        page_size=int_arg(request, "page_size"),
        page_token=request.args.get("page_token") or None,
        page=int_arg(request, "page"),
        per_page=int_arg(request, "per_page"),
        view=request.args.get("view"),
    )


def parse_id(raw: str, resource: str) -> int:
    """A path id: not a number is a 400; a number no row can have is a 404."""
    if not raw.isdigit() or not raw.isascii():
        raise InvalidArgument(
            f"{resource} id must be a positive integer, got {raw!r}",
            errors=[FieldError(("path", "id"), "expected a positive integer", "int_parsing")],
        )
    value = int(raw)
    if value < 1 or value > MAX_ID:
        raise NotFound.for_resource(resource, raw)
    return value


def parse_body(request: Request, model: type[M]) -> M:
    """The JSON (or XML, ``rest.xml``) body validated against ``model``: 415, 400 or
    422 when it is not.

    The 422 is ``db.inputs.validate_input``'s, the same GraphQL gives for the same input.
    """
    ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if ctype != JSON and not ctype.endswith("+json"):
        if ctype in XML_TYPES or ctype.endswith("+xml"):
            return validate_input(model, xml.loads(request.body or b"", model), at="body")
        raise UnsupportedMediaType(
            f"send the body as application/json or application/xml "
            f"(got {ctype or 'no Content-Type'})"
        )
    try:
        payload = orjson.loads(request.body or b"")
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(
            f"the body is not valid JSON: {exc.msg} at position {exc.pos}",
            errors=[FieldError(("body",), exc.msg, "json_invalid")],
        ) from None
    return validate_input(model, payload, at="body")


def if_match_versions(request: Request) -> list[int] | None:
    """Versions accepted by ``If-Match`` (None when absent or ``*``).

    Our ETags are strong: a weak validator or a tag we never issued matches
    nothing, so the write is refused with 412.
    """
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return None
    versions: list[int] = []
    for tag in header.split(","):
        tag = tag.strip().replace('-xml"', '"')  # the XML representation's tag
        if tag.startswith('"v') and tag.endswith('"') and tag[2:-1].isdigit():
            versions.append(int(tag[2:-1]))
    if not versions:
        raise PreconditionFailed(
            "If-Match does not match the current ETag; fetch the resource and retry"
        )
    return versions
