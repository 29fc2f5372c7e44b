"""Response compression: brotli or gzip, chosen by ``Accept-Encoding``.

Compressed: complete (not streamed) bodies of at least ``MIN_BYTES`` whose type is
text-like (JSON and problem+json, GraphQL responses, HTML, JS, CSS, XML, CSV, plain
text: the OpenAPI, AsyncAPI and SDL documents included). Never: event streams and
multipart streams (their bodies are not in the response object: they are written
as they come), WebSocket upgrades, responses that already have a
``Content-Encoding`` (the precompressed assets of ``gateway.assets``) or say
``no-transform``, 206 and bodies under the threshold. Every response of a
compressible type says ``Vary: Accept-Encoding``, compressed or not.

Dynamic bodies use fast settings (brotli quality 3, gzip level 3): about 30 µs for
a 50-row order list of 8.5 KB, to 946 / 1,197 bytes (docs/decisions.md has the
measurements); bodies over ``THREAD_BYTES`` are compressed in a thread so the event
loop keeps serving.

Strong ETags get the coding as a suffix (``"v3"`` becomes ``"v3-br"``): a
compressed body is another representation (RFC 9110 8.8.3). The suffix is taken
off ``If-None-Match`` and ``If-Match`` before any handler reads them, so a client
can send back the tag it was given, to read (304) or to write (no 412).
"""

from __future__ import annotations

import asyncio
import re
import zlib
from typing import TYPE_CHECKING

import brotli

from gateway.caching import add_vary

if TYPE_CHECKING:
    from sanic import Request
    from sanic.response import BaseHTTPResponse


MIN_BYTES = 1024
THREAD_BYTES = 256 * 1024
BROTLI_QUALITY = 3
GZIP_LEVEL = 3

_TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/problem+json",
        "application/graphql-response+json",
        "application/graphql",
        "application/javascript",
        "application/xml",
        "application/problem+xml",
        "text/html",
        "text/javascript",
        "text/css",
        "text/plain",
        "text/xml",
        "text/csv",
        "image/svg+xml",
    }
)
_compressible_cache: dict[str, bool] = {}
_choice_cache: dict[str, tuple[str, ...]] = {}
_CACHE_LIMIT = 256
_SUFFIXED = re.compile(r'-(br|gzip)"')


def compressible(content_type: str) -> bool:
    """Whether a body of this ``Content-Type`` is worth compressing (cached per value)."""
    known = _compressible_cache.get(content_type)
    if known is None:
        media = content_type.split(";", 1)[0].strip().lower()
        known = media in _TEXT_TYPES or media.endswith(("+json", "+xml"))
        if len(_compressible_cache) >= _CACHE_LIMIT:
            _compressible_cache.clear()
        _compressible_cache[content_type] = known
    return known


def _parse(header: str) -> tuple[str, ...]:
    weights: dict[str, float] = {}
    for part in header.split(","):
        name, _, params = part.partition(";")
        name = name.strip().lower()
        if not name:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0:  # nan too
                    q = 0.0
        if name == "x-gzip":
            name = "gzip"
        weights[name] = q
    star = weights.get("*", 0.0)
    br = weights.get("br", star)
    gzip = weights.get("gzip", star)
    ranked = sorted((q, coding == "br", coding) for coding, q in (("br", br), ("gzip", gzip)))
    return tuple(coding for q, _, coding in reversed(ranked) if q > 0)


def acceptable_encodings(accept_encoding: str) -> tuple[str, ...]:
    """The codings we have that ``Accept-Encoding`` accepts, best first.

    The highest q-value wins, brotli on a tie; ``*`` stands for a coding not named;
    ``q=0`` refuses. Identity is always acceptable to us (RFC 9110 12.5.3 lets a
    server send it rather than 406). Cached per header value: browsers send a few.
    """
    if not accept_encoding:
        return ()
    try:
        return _choice_cache[accept_encoding]
    except KeyError:
        pass
    choice = _parse(accept_encoding)
    if len(_choice_cache) >= _CACHE_LIMIT:
        _choice_cache.clear()
    _choice_cache[accept_encoding] = choice
    return choice


def choose_encoding(accept_encoding: str) -> str | None:
    """``"br"``, ``"gzip"`` or None (identity) for an ``Accept-Encoding`` value."""
    codings = acceptable_encodings(accept_encoding)
    return codings[0] if codings else None


def compress(body: bytes, coding: str) -> bytes:
    if coding == "br":
        return brotli.compress(body, quality=BROTLI_QUALITY)
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: gzip container
    return compressor.compress(body) + compressor.flush()


def suffix_etag(etag: str, coding: str) -> str:
    """``"v3"`` -> ``"v3-br"``; weak tags are left as they are (weak comparison holds)."""
    if etag.startswith('"') and etag.endswith('"') and len(etag) >= 2:
        return f'{etag[:-1]}-{coding}"'
    return etag


def strip_validator_codings(request: Request) -> None:
    """Take the coding suffixes off ``If-None-Match`` / ``If-Match`` (see module doc)."""
    headers = request.headers
    for name in ("if-none-match", "if-match"):
        if name not in headers:
            continue
        value = ", ".join(headers.getall(name))
        match = _SUFFIXED.search(value)
        if match is not None:
            request.ctx.validator_coding = match.group(1)
            headers[name] = _SUFFIXED.sub('"', value)


async def compress_response(request: Request, response: BaseHTTPResponse) -> None:
    """The last response step (``gateway.pipeline``): it sees the final body."""
    if response.status == 304:
        _not_modified(request, response)
        return
    content_type = response.content_type or response.headers.get("content-type")
    if not content_type or not compressible(content_type):
        return
    headers = response.headers
    add_vary(headers, "Accept-Encoding")
    body = getattr(response, "body", None)
    if not body or len(body) < MIN_BYTES or response.status == 206:
        return
    if "content-encoding" in headers or "no-transform" in headers.get("cache-control", ""):
        return
    coding = choose_encoding(request.headers.get("accept-encoding", ""))
    if coding is None or getattr(request.ctx, "precompressed", False):
        return
    if len(body) >= THREAD_BYTES:
        encoded = await asyncio.to_thread(compress, body, coding)
    else:
        encoded = compress(body, coding)
    if len(encoded) >= len(body):
        return
    response.body = encoded
    headers["Content-Encoding"] = coding
    if "content-length" in headers:
        headers["Content-Length"] = str(len(encoded))
    etag = headers.get("etag")
    if etag is not None:
        headers["ETag"] = suffix_etag(etag, coding)


def _not_modified(request: Request, response: BaseHTTPResponse) -> None:
    """A 304 repeats the tag the client holds: with the coding it was sent with."""
    coding = getattr(request.ctx, "validator_coding", None)
    if coding is None:
        return
    headers = response.headers
    add_vary(headers, "Accept-Encoding")
    etag = headers.get("etag")
    if etag is not None:
        headers["ETag"] = suffix_etag(etag, coding)
