"""Real Chromium (Debian's, driven by playwright-core from tests/browser/node_modules)
against the session's gateway, from pages served on another origin (``PAGE_ORIGIN``).

``ops/scripts/install`` installs both. In CI (``CI`` or ``REQUIRE_SERVICES`` set) a
missing browser fails these tests; elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import PAGE_PORT

HERE = Path(__file__).parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
REQUIRED = any(
    os.environ.get(name, "") not in ("", "0", "false") for name in ("CI", "REQUIRE_SERVICES")
)


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"Chromium is not at {CHROMIUM} (ops/scripts/install installs Debian's)"
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        return "playwright-core is not installed (ops/scripts/install: npm ci in tests/browser)"
    return None


@pytest.fixture(scope="session")
def browser_ready() -> None:
    missing = _missing()
    if missing is not None:
        if REQUIRED:
            pytest.fail(f"browser tests are required here: {missing}")
        pytest.skip(missing)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def page_server(browser_ready: None) -> Iterator[str]:
    """The other origin's static pages (tests/browser/pages), on ``PAGE_PORT``."""
    handler = functools.partial(_Quiet, directory=str(HERE / "pages"))
    httpd = ThreadingHTTPServer(("127.0.0.1", PAGE_PORT), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{PAGE_PORT}"
    finally:
        httpd.shutdown()
        httpd.server_close()


async def run_scenario(scenario: str, **args: Any) -> dict[str, Any]:
    """One scenario of run.mjs in a fresh Chromium; its JSON report. Run as an asyncio
    subprocess: the gateway under test answers from this same event loop."""
    proc = await asyncio.create_subprocess_exec(
        "node", str(HERE / "run.mjs"), orjson.dumps({"scenario": scenario, **args}).decode(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "CHROMIUM": CHROMIUM},
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    except TimeoutError:
        proc.kill()
        raise
    assert proc.returncode == 0, err.decode(errors="replace")[-4000:]
    report: dict[str, Any] = orjson.loads(out)
    assert report["failure"] is None, report
    return report


def assert_clean(report: dict[str, Any]) -> None:
    """No console message of level error or warning, no page error, no failed request."""
    noisy = [m for m in report["console"] if m["type"] in ("error", "warning")]
    assert not noisy, noisy
    assert not report["pageErrors"], report["pageErrors"]
    assert not report["failedRequests"], report["failedRequests"]
