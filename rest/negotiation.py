"""Which representation a REST client gets (``Accept``, RFC 9110 12.5.1).

REST v1 serves JSON (the default), XML (``application/xml`` or ``text/xml``, see
``rest.xml``) and, on list endpoints, CSV exports (``text/csv``, see
``rest.csv_export``). Problems follow the choice: ``application/problem+xml`` when
XML was chosen, else ``application/problem+json``.

Choice: each supported type gets the q-value of the most specific range in
``Accept`` that matches it (``application/json`` over ``application/*`` over
``*/*``); the highest q wins, ties go in the server's order (JSON, XML, CSV), and
q=0 means "not this one". Nothing acceptable is 406 ``NOT_ACCEPTABLE`` (as
problem+json) listing what the endpoint serves. No ``Accept`` means JSON.

Cost: no ``Accept``, ``*/*`` and ``application/json`` (nearly every client) are one
comparison and set nothing; anything else is parsed once per distinct value and
kept in a small LRU, so a busy client costs one dictionary lookup.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from gateway.errors import NotAcceptable, ProblemRenderer
from rest import xml

if TYPE_CHECKING:
    from sanic import Request

JSON = "application/json"
XML = "application/xml"
TEXT_XML = "text/xml"
CSV = "text/csv"
PROBLEM_XML = "application/problem+xml"

# In the server's order of preference for equal q-values.
SERVED = (JSON, XML, TEXT_XML)
SERVED_LISTS = (*SERVED, CSV)
_FAST = frozenset({"*/*", JSON, "application/json, */*", "application/json, text/plain, */*"})
# problem+json stands for JSON: a client that names only it still reads our problems.
_ALIASES = {JSON: ("application/problem+json",), XML: ("application/problem+xml",)}


def _ranges(accept: str) -> dict[str, float]:
    ranges: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = part.split(";")
        media = media.strip().lower()
        if not media:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    q = 0.0  # an unreadable weight admits nothing
                if q != q:  # NaN
                    q = 0.0
        ranges[media] = max(q, ranges.get(media, 0.0)) if media in ranges else q
    return ranges


def _quality(media: str, ranges: dict[str, float]) -> float:
    for name in (media, *_ALIASES.get(media, ())):
        if name in ranges:
            return ranges[name]
    family = media.split("/")[0] + "/*"
    if family in ranges:
        return ranges[family]
    return ranges.get("*/*", 0.0)


@lru_cache(maxsize=256)
def choose(accept: str, lists: bool = False) -> str | None:
    """The media type to answer with, or None when ``accept`` admits none we serve."""
    if not accept.strip():
        return JSON
    ranges = _ranges(accept)
    best, best_q = None, 0.0
    for media in SERVED_LISTS if lists else SERVED:
        q = _quality(media, ranges)
        if q > best_q:
            best, best_q = media, q
    return best


def accepts_json(accept: str) -> bool:
    """Whether ``accept`` lets a non-list endpoint answer JSON (kept for callers)."""
    return choose(accept) == JSON


def negotiate(request: Request) -> None:
    """Pick the representation for a REST request (``request.ctx.media``, absent for
    JSON), or raise 406. Called for every REST request, before authentication."""
    accept = request.headers.get("accept")
    if accept is None or accept in _FAST:
        return
    lists = bool(getattr(request.route.ctx, "csv", False)) if request.route else False
    media = choose(accept, lists)
    if media is None:
        served = SERVED_LISTS if lists else SERVED
        raise NotAcceptable(
            f"this endpoint serves {', '.join(served)} (problems as application/problem+json "
            f"or application/problem+xml); the Accept header admits none of them",
        )
    if media != JSON:
        request.ctx.media = media


def media_of(request: Request) -> str:
    """The representation chosen for ``request`` (JSON unless ``negotiate`` said else)."""
    media: str = getattr(request.ctx, "media", JSON)
    return media


def _xml_problem(body: dict[str, Any]) -> tuple[bytes, str]:
    return xml.problem(body), PROBLEM_XML


def problem_renderer(request: Request) -> ProblemRenderer | None:
    """For the error handler: XML problems for REST requests whose ``Accept`` prefers
    XML (also for errors raised before a route ran, e.g. 404, 405, 413, 415)."""
    if not request.path.startswith("/api/v1"):
        return None
    media = getattr(request.ctx, "media", None)
    if media is None:
        accept = request.headers.get("accept")
        if accept is None or accept in _FAST:
            return None
        media = choose(accept)
    return _xml_problem if media in (XML, TEXT_XML) else None
