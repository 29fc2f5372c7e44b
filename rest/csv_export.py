"""``Accept: text/csv`` on a list endpoint: the whole list as a CSV download.

The export walks every page with the same keyset pagination, filter, order, view
and field mask as the JSON list (``page_token``, ``page``, ``per_page`` and
``page_size`` are ignored: an export always starts at the first row and ends at
the last), writing each page to the client as it arrives, so memory stays at one
page (``PAGE_SIZE_MAX`` rows) whatever the list's length. A row written or deleted
during the export may or may not be in it; no row that exists throughout is
skipped or repeated.

The format (RFC 4180): UTF-8, ``\\r\\n`` line ends, a header row with the field
names, one row per resource, every cell quoted. Cells: a string as is; a number
as its JSON text; ``true``/``false``; null is an empty cell; a nested value (an
order's ``items``, an API key's ``scopes``) is its compact JSON text
(``[{"product_id":3,"quantity":1,...}]``), so one row stays one resource and
nothing is lost. CSV injection (OWASP): a string cell that starts with ``=``,
``+``, ``-``, ``@``, a tab, a carriage return or a line feed (or their fullwidth
forms) gets a leading ``'`` so a spreadsheet shows it as text instead of running
it; numbers are ours and are written as they are.

Errors in the request (a bad filter, an unknown field) are found on the first
page, before anything is sent, and answered as problems like any list. Should a
later page fail, the connection is closed mid-body (no final chunk), which HTTP
clients report as an incomplete download rather than a complete file.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson
from sanic import HTTPResponse

from db.listing import ListQuery, Page
from rest.wire import dumps

if TYPE_CHECKING:
    from sanic import Request

log = logging.getLogger("rest.csv_export")

CONTENT_TYPE = "text/csv; charset=utf-8; header=present"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")

Fetch = Callable[[ListQuery], Awaitable[Page]]


def cell(value: Any) -> str:
    """One JSON value as a CSV cell (see the module doc)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA_START) else value
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def _rows(page: Page) -> list[dict[str, Any]]:
    """A page's rows as the JSON list shows them (the same encoding of every value)."""
    data = page.items_json if page.items_json is not None else dumps(page.items)
    rows: list[dict[str, Any]] = orjson.loads(data)
    return rows


def _columns(
    first: list[dict[str, Any]],
    fields: Sequence[str],
    mask: Collection[str] | None,
    basic_only: Collection[str],
) -> list[str]:
    if mask:
        return [name for name in fields if name in mask]
    if first:
        present = first[0]
        return [name for name in fields if name in present] + [
            name for name in present if name not in fields
        ]
    return [name for name in fields if name not in basic_only]


def _encode(columns: Sequence[str], rows: list[dict[str, Any]], header: bool) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    if header:
        writer.writerow(columns)
    writer.writerows([cell(row.get(name)) for name in columns] for row in rows)
    return buffer.getvalue().encode()


async def stream(
    request: Request,
    name: str,
    query: ListQuery,
    fetch: Fetch,
    *,
    fields: Sequence[str],
    mask: Collection[str] | None,
    page_size: int,
    computed: Collection[str] = (),
) -> HTTPResponse | None:
    """Send the list ``fetch`` pages through as a CSV attachment named ``name``.csv.

    ``computed`` are the fields a list shows only with ``view=full`` (they are left
    out of the header of an empty basic export).
    """
    query = replace(query, page_size=page_size, page_token=None, page=None, per_page=None)
    page = await fetch(query)  # errors here are still a problem document
    rows = _rows(page)
    hidden = computed if query.view != "full" else ()
    columns = _columns(rows, fields, mask, hidden)
    headers = {
        "Content-Disposition": f'attachment; filename="{name}.csv"',
        "Vary": "Accept",
        "X-Accel-Buffering": "no",
    }
    if request.method == "HEAD":
        return HTTPResponse(status=200, headers=headers, content_type=CONTENT_TYPE)
    response = await request.respond(headers=headers, content_type=CONTENT_TYPE)
    await response.send(_encode(columns, rows, header=True))
    token = page.next_page_token
    try:
        while token:
            page = await fetch(replace(query, page_token=token))
            await response.send(_encode(columns, _rows(page), header=False))
            token = page.next_page_token
    except Exception:
        # The status line is gone: end the connection without the last chunk, so
        # the client sees a broken download, not a short file that looks whole.
        log.exception("CSV export failed mid-stream", extra={"path": request.path})
        request.transport.close()
        return None
    await response.eof()
    return None
