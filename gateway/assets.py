"""Static assets (vendored Swagger UI, GraphiQL, React, and our own page scripts),
served from memory, precompressed, under content-hashed URLs.

Each file under ``gateway/static/vendor`` is served at ``/vendor/<path>`` and at a
hashed URL, ``/vendor/swagger-ui/swagger-ui-bundle.<hash>.js`` (first 16 hex
digits of its SHA-256); the top-level scripts and styles of ``gateway/static``
likewise under ``/static/``. The hashed URL never changes meaning, so it is
``Cache-Control: public, max-age=31536000, immutable``; the plain URL stays for
old links with ``public, no-cache`` and an ETag. Pages link the hashed URLs
(``rewrite_urls``), so a release is picked up at once and never half-cached.

Brotli (quality 11) and gzip (level 9) variants are computed once, not per
request: ``python -m gateway.assets`` writes them to ``gateway/static/.compressed``
(run by ``ops/scripts/install`` and the Docker build), named by the content hash,
so a stale file can never be served. A process that finds some missing computes
them in a background thread (a few seconds of CPU, off the event loop), serving
the identity body or the gzip one until the better one is ready, and saves them
for the next process when the directory is writable.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mimetypes
import os
import re
import sys
import tempfile
import threading
import zlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import brotli
from sanic.response import HTTPResponse

from db.errors import NotFound
from gateway.caching import IMMUTABLE, REVALIDATE_PUBLIC
from gateway.compression import acceptable_encodings, compressible, suffix_etag

if TYPE_CHECKING:
    from sanic import Request

    from gateway.context import GatewayApp

log = logging.getLogger("gateway.assets")

STATIC_DIR = Path(__file__).parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
CACHE_DIR = STATIC_DIR / ".compressed"
HASH_DIGITS = 16
PRECOMPRESS_MIN_BYTES = 1024
_SKIP = frozenset({"README.md"})
_CODINGS = ("br", "gzip")
_SUFFIX = {"br": "br", "gzip": "gz"}


@dataclass
class Asset:
    path: Path
    url: str
    hashed_url: str
    digest: str
    content_type: str
    body: bytes
    precompress: bool
    variants: dict[str, bytes] = field(default_factory=dict)

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'

    def cache_file(self, coding: str, directory: Path = CACHE_DIR) -> Path:
        return directory / f"{self.digest}.{_SUFFIX[coding]}"


def _content_type(path: Path) -> str:
    guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix == ".js":
        guessed = "text/javascript"
    if guessed.startswith("text/") or guessed.endswith(("+xml", "json")):
        return f"{guessed}; charset=utf-8"
    return guessed


def _hashed(url: str, digest: str) -> str:
    head, slash, name = url.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    return f"{head}{slash}{stem}.{digest}.{ext}" if dot and stem else f"{url}.{digest}"


def _encode(body: bytes, coding: str) -> bytes:
    if coding == "br":
        return brotli.compress(body, quality=11)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return compressor.compress(body) + compressor.flush()


class Assets:
    """Every asset by its plain and hashed URL."""

    def __init__(self, roots: list[tuple[str, Path, bool]], cache_dir: Path = CACHE_DIR) -> None:
        self.cache_dir = cache_dir
        self.by_url: dict[str, tuple[Asset, bool]] = {}
        self._builder: threading.Thread | None = None
        self.ready = threading.Event()
        for prefix, root, recursive in roots:
            files = root.rglob("*") if recursive else root.glob("*")
            for path in sorted(files):
                if not path.is_file() or path.name in _SKIP or path.suffix == ".html":
                    continue
                if ".compressed" in path.parts:
                    continue
                body = path.read_bytes()
                digest = hashlib.sha256(body).hexdigest()[:HASH_DIGITS]
                url = prefix + path.relative_to(root).as_posix()
                content_type = _content_type(path)
                asset = Asset(
                    path,
                    url,
                    _hashed(url, digest),
                    digest,
                    content_type,
                    body,
                    compressible(content_type) and len(body) >= PRECOMPRESS_MIN_BYTES,
                )
                for coding in _CODINGS if asset.precompress else ():
                    with contextlib.suppress(OSError):
                        asset.variants[coding] = asset.cache_file(coding, cache_dir).read_bytes()
                self.by_url[url] = (asset, False)
                self.by_url[asset.hashed_url] = (asset, True)

    def assets(self) -> list[Asset]:
        return [asset for asset, hashed in self.by_url.values() if hashed]

    def missing(self) -> list[tuple[Asset, str]]:
        # gzip first: it is quick, and every browser takes it while brotli is computed
        return [
            (asset, coding)
            for coding in ("gzip", "br")
            for asset in self.assets()
            if asset.precompress and coding not in asset.variants
        ]

    def build(self, *, save: bool = True) -> int:
        """Compute every missing variant (blocking); returns how many were computed."""
        todo = self.missing()
        for asset, coding in todo:
            encoded = _encode(asset.body, coding)
            asset.variants[coding] = encoded
            if save:
                self._save(asset.cache_file(coding, self.cache_dir), encoded)
        self.ready.set()
        return len(todo)

    def _save(self, target: Path, data: bytes) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except OSError as exc:  # a read-only install: keep it in memory only
            log.debug("cannot save a precompressed asset", extra={"error": str(exc)})

    def build_in_background(self) -> None:
        """Once per process: compute what is missing in a daemon thread."""
        if self._builder is not None:
            return
        if not self.missing():
            self.ready.set()
            return
        log.info("precompressing static assets in the background (run python -m gateway.assets)")
        self._builder = threading.Thread(target=self.build, name="precompress", daemon=True)
        self._builder.start()

    def hashed_url(self, url: str) -> str:
        entry = self.by_url.get(url)
        return entry[0].hashed_url if entry is not None else url

    def rewrite_urls(self, html: str) -> str:
        """Point every ``src``/``href`` of ``html`` that names an asset at its hashed URL."""
        return _LINK.sub(lambda m: f"{m.group(1)}{self.hashed_url(m.group(2))}{m.group(3)}", html)

    def response(self, request: Request, url: str) -> HTTPResponse:
        entry = self.by_url.get(url)
        if entry is None:
            raise NotFound(f"no such file: {url}")
        asset, hashed = entry
        headers = {"Cache-Control": IMMUTABLE if hashed else REVALIDATE_PUBLIC}
        if asset.precompress:
            headers["Vary"] = "Accept-Encoding"
        body, coding = asset.body, None
        for candidate in acceptable_encodings(request.headers.get("accept-encoding", "")):
            variant = asset.variants.get(candidate)
            if variant is not None:
                body, coding = variant, candidate
                break
        etag = asset.etag if coding is None else suffix_etag(asset.etag, coding)
        headers["ETag"] = etag
        request.ctx.precompressed = True  # the compression middleware leaves it alone
        inm = request.headers.get("if-none-match")
        if inm is not None and (asset.etag in inm or "*" in inm):
            return HTTPResponse(status=304, headers=headers)
        if coding is not None:
            headers["Content-Encoding"] = coding
        return HTTPResponse(body, headers=headers, content_type=asset.content_type)


_LINK = re.compile(r"""((?:src|href)\s*=\s*["'])(/[^"'?#]+)(["'])""")


@cache
def registry() -> Assets:
    """The assets of this installation (read once per process)."""
    return Assets([("/vendor/", VENDOR_DIR, True), ("/static/", STATIC_DIR, False)])


def setup_assets(app: GatewayApp) -> Assets:
    assets = registry()

    async def vendor(request: Request, path: str) -> HTTPResponse:
        return assets.response(request, request.path)

    app.add_route(vendor, "/vendor/<path:path>", methods=["GET", "HEAD"], name="vendor")
    app.add_route(vendor, "/static/<path:path>", methods=["GET", "HEAD"], name="static")

    @app.after_server_start
    async def precompress(app: GatewayApp) -> None:
        assets.build_in_background()

    return assets


def main() -> int:
    """``python -m gateway.assets``: write every missing precompressed variant."""
    assets = registry()
    built = assets.build()
    keep = {asset.cache_file(coding).name for asset in assets.assets() for coding in _CODINGS}
    for stale in assets.cache_dir.glob("*"):
        if stale.name not in keep:
            stale.unlink()
    total = sum(1 for asset in assets.assets() if asset.precompress)
    print(f"{built} variants written to {assets.cache_dir} ({total} compressible assets)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
