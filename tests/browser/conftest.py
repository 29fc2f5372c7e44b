"""Real Chromium (Debian's, driven by playwright-core from tests/browser/node_modules)
against a real ``gateway serve`` process, from pages served on another origin.

The gateway runs as an operator runs it: its own database (SQLite, or PostgreSQL
with Redis on the services backend), the demo seeded at start (``SEED_DEMO``: the
``demo-cli`` client, the ``demo-docs`` public client, the user ``demo@example.com``),
and ``CORS_ALLOW_ORIGINS`` naming the page server's origin, ``http://localhost:<port>``
(the gateway listens on ``127.0.0.1``, so every call from a page is cross-origin).

One Chromium serves the whole module (``node run.mjs``, one JSON request a line);
each scenario gets a new browser context. Module-scoped, so that neither the gateway
nor the browser outlives these tests in a whole-suite run. ``ops/scripts/install`` installs both. In
CI (``CI`` or ``REQUIRE_SERVICES`` set) a missing browser fails these tests; elsewhere
they are skipped with the reason.
"""

from __future__ import annotations

import functools
import json
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from tests.conftest import BACKEND, REDIS_URL
from tests.processes import clean_env, free_port, gateway
from tests.served import Gateway, gateways, own_database

HERE = Path(__file__).parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
REQUIRED = any(
    os.environ.get(name, "") not in ("", "0", "false") for name in ("CI", "REQUIRE_SERVICES")
)
SCENARIO_GUARD = 120.0  # seconds: only ever reached when something is broken


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"Chromium is not at {CHROMIUM} (ops/scripts/install installs Debian's)"
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        return "playwright-core is not installed (ops/scripts/install: npm ci in tests/browser)"
    return None


@pytest.fixture(scope="module")
def browser_ready() -> None:
    missing = _missing()
    if missing is not None:
        if REQUIRED:
            pytest.fail(f"browser tests are required here (CI): {missing}")
        pytest.skip(f"NO REAL-BROWSER PROOF IN THIS RUN: {missing}")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_origin(browser_ready: None) -> Iterator[str]:
    """The other origin: tests/browser/pages, served as ``http://localhost:<port>``."""
    handler = functools.partial(_Quiet, directory=str(HERE / "pages"))
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@dataclass
class Served:
    """The ``gateway serve`` under test and what its demo seed and setup made."""

    node: Gateway
    page: str  # the other origin
    demo: dict[str, str]  # client_id, client_secret, user, password
    spa_client_id: str  # a public client whose redirect URI is on the page origin

    @property
    def api(self) -> str:
        return self.node.url

    def token(self) -> str:
        """An access token of the demo's confidential client (owner, every scope)."""
        reply = httpx.post(
            f"{self.api}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.demo["client_id"],
                "client_secret": self.demo["client_secret"],
            },
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        return str(reply.json()["access_token"])


@pytest.fixture(scope="module")
def served(page_origin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("browser")
    with own_database(tmp) as database, gateways(tmp, database) as start:
        env = {"SEED_DEMO": "true", "CORS_ALLOW_ORIGINS": page_origin}
        if BACKEND == "services":
            env["REDIS_URL"] = REDIS_URL
        node = start(**env)
        if BACKEND == "services":  # the services backend's gateway, not the embedded one
            node.wait_for_line("database: postgres")
            node.wait_for_line("bus: redis")
        node.wait_for_line("seeded the demo organization")
        if "sqlite://" in database["DATABASE_URL"]:
            creds = Path(database["DATABASE_URL"].split("://", 1)[1]).parent
        else:
            creds = tmp / "var"
        demo = json.loads((creds / "demo-credentials.json").read_text())
        made = gateway(
            "create-client",
            "demo",
            "A single-page app",
            "--json",
            "--public",
            "--grant",
            "authorization_code",
            "--scope",
            "orders:read",
            "--redirect-uri",
            f"{page_origin}/spa.html",
            env=clean_env(**database),
            cwd=tmp,
        )
        assert made.returncode == 0, made.stderr
        yield Served(node, page_origin, demo, json.loads(made.stdout)["client_id"])
        node.assert_clean_log()


class Browser:
    """The module's ``node run.mjs``: one Chromium, a new context per scenario."""

    def __init__(self, log: IO[bytes], log_path: Path) -> None:
        self.log_path = log_path
        self.proc = subprocess.Popen(
            ["node", str(HERE / "run.mjs")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, "CHROMIUM": CHROMIUM},
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.count = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(b"")  # the driver exited

    def run(self, scenario: str, **args: Any) -> dict[str, Any]:
        """One scenario's report; fails the test if the scenario itself threw."""
        assert self.proc.stdin is not None
        self.count += 1
        request = {"id": self.count, "scenario": scenario, **args}
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()
        line = self.lines.get(timeout=SCENARIO_GUARD)
        if not line:
            self.proc.wait(timeout=30)
            log = self.log_path.read_text(errors="replace")[-4000:]
            pytest.fail(f"the browser driver exited ({self.proc.returncode}):\n{log}")
        report: dict[str, Any] = json.loads(line)
        assert report["id"] == self.count, report
        assert report["failure"] is None, report
        return report

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=30)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def browser(browser_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    log_path = tmp_path_factory.mktemp("chromium") / "driver.log"
    with log_path.open("wb") as log:
        driver = Browser(log, log_path)
        try:
            yield driver
        finally:
            driver.close()


def assert_clean(report: dict[str, Any]) -> None:
    """No console message of level error or warning, no page error, no failed request."""
    noisy = [m for m in report["console"] if m["type"] in ("error", "warning")]
    assert not noisy, noisy
    assert not report["pageErrors"], report["pageErrors"]
    assert not report["failedRequests"], report["failedRequests"]


UNAUTHORIZED = "Failed to load resource: the server responded with a status of 401 (Unauthorized)"


def expect_console(report: dict[str, Any], text: str, count: int = 1) -> None:
    """Take out the ``count`` console messages a scenario causes on purpose (a browser
    logs every 4xx answer as an error), demanding exactly that many."""
    expected = [m for m in report["console"] if m["text"] == text]
    assert len(expected) == count, report["console"]
    report["console"] = [m for m in report["console"] if m["text"] != text]
