"""Response compression (gateway/compression.py) and precompressed, content-hashed
static assets (gateway/assets.py)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from types import SimpleNamespace

import brotli
import httpx
import pytest
from sanic.compat import Header
from sanic.response import HTTPResponse

from gateway import compression
from gateway.assets import VENDOR_DIR, Assets, registry
from gateway.compression import MIN_BYTES, choose_encoding, compress_response, compressible
from tests.factories import make_customer, make_product


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip, deflate, br, zstd", "br"),  # Chromium's
        ("gzip, deflate", "gzip"),
        ("br;q=0.5, gzip", "gzip"),  # q-values decide
        ("gzip;q=0.8, br;q=0.8", "br"),  # a tie prefers brotli
        ("br;q=0, gzip;q=0.1", "gzip"),
        ("br;q=0, gzip;q=0", None),
        ("*", "br"),
        ("*;q=0.5, gzip", "gzip"),
        ("*, br;q=0", "gzip"),
        ("identity", None),
        ("", None),
        ("x-gzip", "gzip"),
        ("BR", "br"),
        ("gzip;q=oops, br;q=2", None),  # invalid weights refuse, never a 500
        ("deflate", None),
    ],
)
def test_the_coding_follows_accept_encoding(header, expected):
    assert choose_encoding(header) == expected


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", True),
        ("application/problem+json", True),
        ("application/graphql-response+json", True),
        ("text/html; charset=utf-8", True),
        ("text/javascript; charset=utf-8", True),
        ("text/css", True),
        ("application/vnd.oai.openapi+json", True),
        ("text/event-stream", False),
        ('multipart/mixed; boundary="graphql"', False),
        ("image/png", False),
        ("application/octet-stream", False),
    ],
)
def test_which_types_are_compressed(content_type, expected):
    assert compressible(content_type) is expected


def _request(accept_encoding: str | None = "gzip, br") -> SimpleNamespace:
    headers = Header({"accept-encoding": accept_encoding} if accept_encoding else {})
    return SimpleNamespace(headers=headers, ctx=SimpleNamespace())


async def _run(body: bytes, content_type: str = "application/json", **kw) -> HTTPResponse:
    response = HTTPResponse(body, content_type=content_type, headers=kw.pop("headers", None))
    await compress_response(_request(**kw), response)
    return response


async def test_a_body_just_under_the_threshold_is_sent_as_it_is():
    body = b'{"a":"' + b"x" * (MIN_BYTES - 9) + b'"}'
    assert len(body) == MIN_BYTES - 1
    response = await _run(body)
    assert response.body == body
    assert "content-encoding" not in response.headers
    assert response.headers["vary"] == "Accept-Encoding"  # compressible, so it varies


async def test_a_body_at_the_threshold_is_compressed():
    body = b'{"a":"' + b"x" * (MIN_BYTES - 8) + b'"}'
    assert len(body) == MIN_BYTES
    response = await _run(body)
    assert response.headers["content-encoding"] == "br"
    assert brotli.decompress(response.body) == body


async def test_gzip_and_identity_by_accept_encoding():
    body = b"[" + b'{"id":1,"name":"n"},' * 200 + b"{}]"
    gz = await _run(body, accept_encoding="gzip")
    assert gz.headers["content-encoding"] == "gzip"
    assert gzip.decompress(gz.body) == body
    plain = await _run(body, accept_encoding=None)
    assert plain.body == body
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"


async def test_vary_keeps_what_was_there():
    response = await _run(b"{}", headers={"Vary": "Origin"})
    assert response.headers["vary"] == "Origin, Accept-Encoding"


async def test_already_encoded_and_no_transform_bodies_are_left_alone():
    body = b"x" * 5000
    encoded = await _run(body, content_type="text/plain", headers={"Content-Encoding": "gzip"})
    assert encoded.body == body
    kept = await _run(body, content_type="text/plain", headers={"Cache-Control": "no-transform"})
    assert kept.body == body
    assert "content-encoding" not in kept.headers


async def test_a_big_body_is_compressed_off_the_event_loop(monkeypatch):
    calls: list[object] = []
    real = compression.asyncio.to_thread

    async def spy(func, *args):
        calls.append(func)
        return await real(func, *args)

    monkeypatch.setattr(compression.asyncio, "to_thread", spy)
    body = b'{"x":"' + b"abc" * (compression.THREAD_BYTES // 3) + b'"}'
    response = await _run(body)
    assert calls == [compression.compress]
    assert brotli.decompress(response.body) == body


async def test_a_strong_etag_names_its_coding():
    body = b"[" + b"1," * 1000 + b"1]"
    response = await _run(body, headers={"ETag": '"abc"'})
    assert response.headers["etag"] == '"abc-br"'
    weak = await _run(body, headers={"ETag": 'W/"abc"'})
    assert weak.headers["etag"] == 'W/"abc"'


# --- over HTTP ---------------------------------------------------------------------------


async def _raw(
    client: httpx.AsyncClient, path: str, **headers: str
) -> tuple[httpx.Response, bytes]:
    async with client.stream("GET", path, headers=headers) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    return response, raw


async def test_the_openapi_document_comes_as_brotli_gzip_or_identity(anon):
    plain, identity = await _raw(anon, "/api/v1/openapi.json", **{"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert len(identity) > 10_000
    br, raw_br = await _raw(anon, "/api/v1/openapi.json", **{"Accept-Encoding": "gzip, br"})
    assert br.headers["content-encoding"] == "br"
    assert brotli.decompress(raw_br) == identity
    assert len(raw_br) < len(identity) / 4
    gz, raw_gz = await _raw(anon, "/api/v1/openapi.json", **{"Accept-Encoding": "gzip"})
    assert gz.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw_gz) == identity
    for response in (plain, br, gz):
        assert "Accept-Encoding" in response.headers["vary"]


async def test_rest_lists_and_problems_are_compressed(tenant):
    for n in range(12):
        await make_customer(tenant.owner, name=f"Compressible customer number {n}")
    response, raw = await _raw(tenant.client, "/api/v1/customers", **{"Accept-Encoding": "br"})
    assert response.headers["content-encoding"] == "br"
    assert len(brotli.decompress(raw)) > MIN_BYTES
    small = await tenant.client.get("/api/v1/customers/999999", headers={"Accept-Encoding": "br"})
    assert small.status_code == 404
    assert small.headers["content-type"].startswith("application/problem+json")
    assert "content-encoding" not in small.headers  # under the threshold
    assert "Accept-Encoding" in small.headers["vary"]


async def test_the_etag_of_a_compressed_read_works_for_reads_and_writes(tenant):
    product = await make_product(tenant.owner, description="A long description. " * 100)
    path = f"/api/v1/products/{product['id']}"
    first = await tenant.client.get(path, headers={"Accept-Encoding": "br"})
    assert first.headers["content-encoding"] == "br"
    etag = first.headers["etag"]
    assert etag.endswith('-br"')
    again = await tenant.client.get(path, headers={"Accept-Encoding": "br", "If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag
    patched = await tenant.client.patch(path, json={"stock": 7}, headers={"If-Match": etag})
    assert patched.status_code == 200, patched.text
    stale = await tenant.client.patch(path, json={"stock": 8}, headers={"If-Match": etag})
    assert stale.status_code == 412


async def test_event_streams_are_never_compressed(tenant, anon):
    headers = {
        "Authorization": tenant.client.headers["authorization"],
        "Accept-Encoding": "gzip, br",
    }
    async with anon.stream(
        "GET", "/api/v1/events", params={"topics": "customers"}, headers=headers
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in response.headers
        assert "Accept-Encoding" not in response.headers.get("vary", "")


async def test_multipart_streams_are_never_compressed(tenant):
    body = {"query": "subscription { customerEvents { position } }"}
    headers = {"Accept": 'multipart/mixed;subscriptionSpec="1.0"', "Accept-Encoding": "gzip, br"}
    async with tenant.client.stream("POST", "/graphql", json=body, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("multipart/mixed")
        assert "content-encoding" not in response.headers


# --- precompressed assets ------------------------------------------------------------------

BUNDLE = "/vendor/swagger-ui/swagger-ui-bundle.js"


async def test_hashed_assets_are_precompressed_and_immutable(anon):
    original = (VENDOR_DIR / "swagger-ui" / "swagger-ui-bundle.js").read_bytes()
    hashed = registry().hashed_url(BUNDLE)
    assert re.fullmatch(r"/vendor/swagger-ui/swagger-ui-bundle\.[0-9a-f]{16}\.js", hashed)
    registry().ready.wait(120)  # built by ops/scripts/install, else in the background
    for coding, decode in (("br", brotli.decompress), ("gzip", gzip.decompress)):
        response, raw = await _raw(anon, hashed, **{"Accept-Encoding": coding})
        assert response.status_code == 200
        assert response.headers["content-encoding"] == coding
        assert decode(raw) == original
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["vary"] == "Accept-Encoding"
        assert response.headers["content-type"] == "text/javascript; charset=utf-8"
        again = await anon.get(
            hashed, headers={"Accept-Encoding": coding, "If-None-Match": response.headers["etag"]}
        )
        assert again.status_code == 304
    plain, raw = await _raw(anon, hashed, **{"Accept-Encoding": "identity"})
    assert raw == original
    assert "content-encoding" not in plain.headers


async def test_plain_asset_urls_still_work_and_revalidate(anon):
    response = await anon.get(BUNDLE)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, no-cache"
    assert response.headers["etag"]
    missing = await anon.get("/vendor/swagger-ui/nope.js")
    assert missing.status_code == 404
    assert (await anon.get("/vendor/../gateway/settings.py")).status_code == 404


@pytest.mark.parametrize(
    ("path", "accept"), [("/docs", "text/html"), ("/graphql", "text/html,application/json")]
)
async def test_pages_link_only_hashed_immutable_assets(anon, path, accept):
    page = await anon.get(path, headers={"Accept": accept})
    assert page.status_code == 200
    links = re.findall(r'(?:src|href)="(/(?:vendor|static)/[^"]+)"', page.text)
    assert len(links) >= 4
    for link in links:
        assert re.search(r"\.[0-9a-f]{16}\.[a-z]+$", link), link
        asset = await anon.get(link)
        assert asset.status_code == 200, link
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_missing_variants_are_built_once_in_the_background_and_saved(tmp_path: Path):
    root = tmp_path / "assets"
    root.mkdir()
    script = b"console.log('hello');\n" * 200
    (root / "app.js").write_bytes(script)
    (root / "tiny.css").write_bytes(b"a{}")
    cache = tmp_path / "cache"
    assets = Assets([("/a/", root, True)], cache_dir=cache)
    assert {(a.url, c) for a, c in assets.missing()} == {("/a/app.js", "gzip"), ("/a/app.js", "br")}
    assets.build_in_background()
    assert assets.ready.wait(60)
    (asset,) = [a for a in assets.assets() if a.url == "/a/app.js"]
    assert brotli.decompress(asset.variants["br"]) == script
    assert gzip.decompress(asset.variants["gzip"]) == script
    assert sorted(p.suffix for p in cache.iterdir()) == [".br", ".gz"]
    reloaded = Assets([("/a/", root, True)], cache_dir=cache)
    assert reloaded.missing() == []  # read back, not computed again
    (root / "app.js").write_bytes(script + b"//changed\n")
    changed = Assets([("/a/", root, True)], cache_dir=cache)
    assert len(changed.missing()) == 2  # named by content: a stale variant is never used
