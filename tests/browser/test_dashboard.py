"""The live dashboard (/dashboard) in Debian's Chromium, through a network the test can cut.

The gateway runs behind a TCP proxy that plays the network (and a reverse proxy:
``PUBLIC_URL`` names it, so the demo's ``demo-dashboard`` client is registered with
the proxy's ``/dashboard`` as its redirect URI). The browser signs in through the
real sign-in page, reads the numbers, and the test places orders over REST straight
to the gateway and waits for the exact counts on screen. Then it cuts the network:
every connection through the proxy closes and new ones hang, as on a lost route
(the browser logs nothing for a connection that waits). The page says
"reconnecting"; orders placed meanwhile appear once the network is back, each once.

A failing step saves a screenshot and names it in the failure (``SCREENSHOTS``, or
the test's temporary directory).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import Browser, assert_clean
from tests.conftest import BACKEND, REDIS_URL
from tests.processes import free_port
from tests.served import Gateway, gateways, own_database
from tests.tcp_proxy import TcpProxy, ending

TOKEN_SECONDS = 30  # the shortest access token lifetime the settings allow


class CuttableProxy(TcpProxy):
    """``cut()``: every connection through the proxy closes, and new ones are held
    (accepted, never answered) until ``restore()`` forwards them: a network that went
    away and came back, without refused connections (which a browser logs)."""

    def __init__(self, port: int, upstream: tuple[str, int]) -> None:
        super().__init__(port, upstream)
        self.gate: asyncio.Event | None = None

    async def _dispatch(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        gate = self.gate
        if gate is not None:
            self.open.add(writer)  # closed by ``close()`` if it is still held then
            await gate.wait()
        await self._handle(reader, writer)

    def start(self) -> None:
        async def run() -> None:
            self.server = await asyncio.start_server(ending(self._dispatch), "127.0.0.1", self.port)

        self._run(run())

    def cut(self) -> None:
        async def run() -> None:
            self.gate = asyncio.Event()
            for writer in self.writers:
                writer.close()
            self.writers.clear()

        self._run(run())

    def restore(self) -> None:
        async def run() -> None:
            gate, self.gate = self.gate, None
            if gate is not None:
                gate.set()

        self._run(run())


class ClientCredentials(httpx.Auth):
    """A new token of the demo's confidential client for each request: the module's
    gateway issues tokens that live 30 seconds (the page's renewal is under test)."""

    def __init__(self, base_url: str, demo: dict[str, str]) -> None:
        self.base_url, self.demo = base_url, demo

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        reply = httpx.post(
            f"{self.base_url}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.demo["client_id"],
                "client_secret": self.demo["client_secret"],
            },
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        request.headers["Authorization"] = f"Bearer {reply.json()['access_token']}"
        yield request


class Dashboard:
    """The gateway behind the proxy, the demo's credentials, and REST calls to it."""

    def __init__(self, node: Gateway, proxy: CuttableProxy, demo: dict[str, str]) -> None:
        self.node, self.proxy, self.demo = node, proxy, demo
        self.page_url = f"http://127.0.0.1:{proxy.port}"  # what the browser opens
        self.rest = httpx.Client(
            base_url=node.url,  # straight to the gateway, never through the proxy
            auth=ClientCredentials(node.url, demo),
            timeout=30,
        )
        self.customer = self.rest.get("/api/v1/customers", params={"page_size": 1}).json()["data"]
        self.product = self.rest.get("/api/v1/products", params={"page_size": 1}).json()["data"]

    def place_order(self) -> int:
        reply = self.rest.post(
            "/api/v1/orders",
            json={
                "customer_id": self.customer[0]["id"],
                "items": [{"product_id": self.product[0]["id"], "quantity": 1}],
            },
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert reply.status_code == 201, reply.text
        return int(reply.json()["data"]["id"])

    def act(self, order_id: int, action: str) -> dict[str, Any]:
        reply = self.rest.post(
            f"/api/v1/orders/{order_id}:{action}", headers={"Idempotency-Key": str(uuid.uuid4())}
        )
        assert reply.status_code == 200, reply.text
        return dict(reply.json()["data"])

    def activity(self) -> dict[str, Any]:
        """The numbers the gateway itself gives (GraphQL ``orderActivity``)."""
        reply = self.rest.post(
            "/graphql",
            json={
                "query": "{ orderActivity { ordersToday revenueTodayCents "
                "statusCounts { status count } } }"
            },
        )
        assert reply.status_code == 200, reply.text
        assert "errors" not in reply.json(), reply.text
        return dict(reply.json()["data"]["orderActivity"])


@pytest.fixture(scope="module")
def dashboard(browser_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    tmp = tmp_path_factory.mktemp("dashboard")
    proxy = CuttableProxy(free_port(), ("127.0.0.1", 0))
    with own_database(tmp) as database, gateways(tmp, database) as start:
        env = {
            "SEED_DEMO": "true",
            "PUBLIC_URL": f"http://127.0.0.1:{proxy.port}",
            "ACCESS_TOKEN_TTL_SECONDS": str(TOKEN_SECONDS),
        }
        if BACKEND == "services":
            env["REDIS_URL"] = REDIS_URL
        node = start(**env)
        node.wait_for_line("seeded the demo organization")
        proxy.upstream = ("127.0.0.1", node.port)
        proxy.start()
        if "sqlite://" in database["DATABASE_URL"]:
            creds = Path(database["DATABASE_URL"].split("://", 1)[1]).parent
        else:
            creds = tmp / "var"
        demo = json.loads((creds / "demo-credentials.json").read_text())
        try:
            served = Dashboard(node, proxy, demo)
            yield served
            served.rest.close()
        finally:
            proxy.close()
        node.assert_clean_log()


@pytest.fixture
def screenshot(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SCREENSHOTS", "") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "dashboard.png"


class Session:
    """One page kept open across the test's steps (run.mjs ``steps``)."""

    def __init__(self, browser: Browser, screenshot: Path) -> None:
        self.browser, self.screenshot, self.name = browser, screenshot, uuid.uuid4().hex
        self.reports: list[dict[str, Any]] = []

    def step(self, name: str, **args: Any) -> dict[str, Any]:
        report = self.browser.run(name, session=self.name, screenshot=str(self.screenshot), **args)
        self.reports.append(report)
        return dict(report["result"] or {})

    def wait_for(self, timeout: float | None = None, **expect: Any) -> dict[str, Any]:
        return self.step("dashboardWaitFor", expect=expect, timeout=timeout)

    def assert_clean(self) -> None:
        for report in self.reports:
            assert_clean(report)


@contextlib.contextmanager
def session(browser: Browser, screenshot: Path) -> Iterator[Session]:
    page = Session(browser, screenshot)
    try:
        yield page
    except BaseException:
        with contextlib.suppress(BaseException):  # the page as it was when it failed
            page.step("screenshot")
            print(f"dashboard screenshot: {screenshot}")
        raise
    finally:
        with contextlib.suppress(BaseException):
            browser.run("closeSession", session=page.name)


def test_the_dashboard_signs_in_counts_live_orders_and_resumes_after_a_cut(
    dashboard: Dashboard, browser: Browser, screenshot: Path
) -> None:
    with session(browser, screenshot) as page:
        shown = page.step(
            "dashboardSignIn",
            api=dashboard.page_url,
            email=dashboard.demo["user"],
            password=dashboard.demo["password"],
        )
        # Signed in (the code taken out of the address), and the gateway's own numbers.
        assert shown["address"] == f"{dashboard.page_url}/dashboard"
        truth = dashboard.activity()
        assert shown["ordersToday"] == truth["ordersToday"]
        assert shown["revenueToday"] == truth["revenueTodayCents"]
        assert shown["statuses"] == {s["status"].upper(): s["count"] for s in truth["statusCounts"]}
        assert sum(shown["statuses"].values()) > 0  # the demo's orders
        assert shown["bars"] == 30
        today, statuses = shown["ordersToday"], shown["statuses"]

        def expected(placed: list[int]) -> dict[str, Any]:
            return {
                "ordersToday": today + len(placed),
                "statuses": {**statuses, "PENDING": statuses["PENDING"] + len(placed)},
                "latest": sorted(set(placed) | set(shown["latest"]), reverse=True)[:10],
            }

        # Live: orders placed over REST appear, each once.
        placed = [dashboard.place_order() for _ in range(3)]
        page.wait_for(state="live", **expected(placed))

        # The network goes away: the page says so, and orders keep coming meanwhile.
        dashboard.proxy.cut()
        page.wait_for(state="reconnecting")
        placed += [dashboard.place_order() for _ in range(4)]
        assert page.step("dashboardRead")["ordersToday"] == today + 3  # nothing while away

        # It comes back: the page resumes after the last event it applied, so the
        # orders placed meanwhile arrive, none missed and none twice; then live ones.
        dashboard.proxy.restore()
        page.wait_for(state="live", **expected(placed))
        placed.append(dashboard.place_order())
        after = page.wait_for(state="live", **expected(placed))
        assert after["states"] == ["live", "reconnecting", "live"]
        truth = dashboard.activity()
        assert after["ordersToday"] == truth["ordersToday"] == today + 8
        assert after["statuses"] == {s["status"].upper(): s["count"] for s in truth["statusCounts"]}

        # Payment and cancellation move the status counts; paid revenue counts today.
        paid = dashboard.act(placed[0], "pay")
        dashboard.act(placed[1], "cancel")
        moved = {
            **statuses,
            "PENDING": statuses["PENDING"] + 6,
            "PAID": statuses["PAID"] + 1,
            "CANCELLED": statuses["CANCELLED"] + 1,
        }
        revenue = shown["revenueToday"] + paid["total_cents"]
        page.wait_for(state="live", statuses=moved, revenueToday=revenue)
        assert dashboard.activity()["revenueTodayCents"] == revenue
        page.assert_clean()


def test_the_dashboard_renews_its_token_when_the_socket_expires_and_resumes(
    dashboard: Dashboard, browser: Browser, screenshot: Path
) -> None:
    with session(browser, screenshot) as page:
        shown = page.step(
            "dashboardSignIn",
            api=dashboard.page_url,
            email=dashboard.demo["user"],
            password=dashboard.demo["password"],
        )
        today = shown["ordersToday"]
        dashboard.place_order()
        page.wait_for(state="live", ordersToday=today + 1)
        # The gateway closes the socket when the token it was opened with expires
        # (4401); the page renews the token with its refresh token (a public client's,
        # rotated) and resumes where it was.
        renewed = page.wait_for(
            states=["live", "reconnecting", "live"], timeout=(3 * TOKEN_SECONDS) * 1000
        )
        assert renewed["token"] != shown["token"]
        dashboard.place_order()
        page.wait_for(state="live", ordersToday=today + 2)
        assert dashboard.activity()["ordersToday"] == today + 2
        page.assert_clean()
