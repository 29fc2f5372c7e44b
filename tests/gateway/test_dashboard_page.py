"""``/dashboard`` as served: a strict CSP (no inline script, its own origin only),
hashed and precompressed assets, ES modules that load nothing from elsewhere, and
the redirect URIs its sign-in is registered with. tests/browser/test_dashboard.py
runs it in Chromium."""

from __future__ import annotations

import re

import brotli
import pytest

from gateway.assets import STATIC_DIR, registry
from gateway.dashboard import dashboard_redirect_uris
from gateway.settings import load_settings
from tests.gateway.test_compression import _raw

FILES = sorted(STATIC_DIR.glob("dashboard*"))


def _policy(header: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


async def test_the_page_has_a_strict_policy_and_links_hashed_assets(anon):
    page = await anon.get("/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-cache"
    policy = _policy(page.headers["content-security-policy"])
    assert policy["script-src"] == "'self'"  # no inline script, no hash, no eval
    assert policy["connect-src"] == "'self'"  # its own origin, ws: and wss: included
    assert policy["style-src-attr"] == "'none'"
    assert policy["default-src"] == "'none'"
    assert '<script type="module" src="/static/dashboard.' in page.text
    registry().ready.wait(120)
    for name in ("dashboard.js", "dashboard.css"):
        hashed = registry().hashed_url(f"/static/{name}")
        assert hashed in page.text
        response, raw = await _raw(anon, hashed, **{"Accept-Encoding": "br"})
        assert response.status_code == 200
        assert response.headers["content-encoding"] == "br"
        assert brotli.decompress(raw) == (STATIC_DIR / name).read_bytes()
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


@pytest.mark.parametrize("module", ["dashboard-auth.js", "dashboard-live.js"])
async def test_the_modules_it_imports_are_served_as_javascript(anon, module):
    assert f'from "./{module}"' in (STATIC_DIR / "dashboard.js").read_text()
    response = await anon.get(f"/static/{module}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"


def test_nothing_comes_from_another_origin():
    assert {f.name for f in FILES} >= {"dashboard.html", "dashboard.js", "dashboard.css"}
    for path in FILES:
        text = path.read_text()
        assert not re.search(r"(?:https?|wss?)://[\w\[]", text), path.name  # no literal host
        assert "innerHTML" not in text, path.name  # text goes in as text


@pytest.mark.parametrize(
    ("public_url", "expected"),
    [
        (None, ["http://127.0.0.1:8000/dashboard", "http://localhost:8000/dashboard"]),
        ("https://shop.example/", ["https://shop.example/dashboard"]),
        ("http://127.0.0.1:9000", ["http://127.0.0.1:9000/dashboard"]),
        ("http://shop.example", []),  # a browser would not sign in over plain http there
    ],
)
def test_the_sign_in_comes_back_to_the_page_itself(public_url, expected):
    settings = load_settings(port=8000, public_url=public_url)
    assert dashboard_redirect_uris(settings) == expected
