"""Caching headers: ``Cache-Control`` per response class, ``Vary``, ``Last-Modified``.

The classes (see README "Caching and compression"):

- API reads (a 2xx or 304 to GET/HEAD): ``private, no-cache``; a browser may keep
  them but asks again each time, with ``If-None-Match`` (the REST ETags) or
  ``If-Modified-Since``, and gets a 304 when nothing changed;
- everything else (writes, errors, redirects, token and key responses): ``no-store``;
- HTML pages: ``no-cache`` (they point at hashed assets, so a new release shows at
  once); the sign-in pages keep ``no-store`` (they carry a CSRF token);
- content-hashed assets: ``public, max-age=31536000, immutable``.

A handler that sets ``Cache-Control`` itself keeps it; ``apply_default`` only fills
in what is missing, at the cost of one header lookup per response.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sanic import Request
    from sanic.compat import Header
    from sanic.response import BaseHTTPResponse

API_READ = "private, no-cache"
NO_STORE = "no-store"
HTML_PAGE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE_PUBLIC = "public, no-cache"

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def apply_default(request: Request, response: BaseHTTPResponse) -> None:
    """``Cache-Control`` for a response whose handler set none."""
    headers = response.headers
    if "cache-control" in headers:
        return
    status = response.status
    if request.method in ("GET", "HEAD") and (200 <= status < 300 or status == 304):
        headers["Cache-Control"] = API_READ
    else:
        headers["Cache-Control"] = NO_STORE


def add_vary(headers: Header, token: str) -> None:
    """Add ``token`` to ``Vary`` once, keeping what other middleware put there."""
    current = headers.get("vary")
    if current is None:
        headers["Vary"] = token
    elif current != "*" and token.lower() not in current.lower():
        headers["Vary"] = f"{current}, {token}"


def http_date(moment: datetime) -> str:
    """RFC 9110 IMF-fixdate of a datetime (naive means UTC): ``Sun, 06 Nov 1994 08:49:37 GMT``.
    About 1 µs for the UTC datetimes the database returns."""
    if moment.tzinfo is not UTC and moment.utcoffset():
        moment = moment.astimezone(UTC)
    m = moment
    return (
        f"{_DAYS[m.weekday()]}, {m.day:02d} {_MONTHS[m.month]} {m.year} "
        f"{m.hour:02d}:{m.minute:02d}:{m.second:02d} GMT"
    )


def parse_http_date(text: str) -> datetime | None:
    """An ``If-Modified-Since`` value as an aware UTC datetime; None when it is not a date
    (RFC 9110 13.1.3: an invalid date means the condition is ignored)."""
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def not_modified_since(request: Request, last_modified: datetime) -> bool:
    """Whether ``If-Modified-Since`` says the client already has this version.

    Only for GET/HEAD without ``If-None-Match`` (which takes precedence, RFC 9110
    13.2.2). HTTP dates have whole seconds: a change within the same second as the
    client's copy is not seen this way; the ETag sees it.
    """
    headers = request.headers
    since = headers.get("if-modified-since")
    if not since or "if-none-match" in headers or request.method not in ("GET", "HEAD"):
        return False
    client = parse_http_date(since)
    if client is None:
        return False
    if last_modified.tzinfo is None:
        last_modified = last_modified.replace(tzinfo=UTC)
    return last_modified.replace(microsecond=0) <= client
