"""The README's "try it" commands, run as a newcomer runs them: against ``gateway serve``
on the embedded default with its demo data (``ops/scripts/serve``).

Each starts an embedded database of its own in a temporary directory, whatever the
pass, so they run in the embedded pass only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import clean_env, free_port, start_serving

pytestmark = pytest.mark.backend_independent

ROOT = Path(__file__).resolve().parents[2]
GUARD = 60  # seconds: a failure guard only


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A serving gateway with the demo seeded: its URL and the demo credentials' file."""
    where = tmp_path_factory.mktemp("try")
    port = free_port()
    proc = start_serving(port, where, LOG_LEVEL="WARNING", ACCESS_LOG="false")
    try:
        yield f"http://127.0.0.1:{port}", where / "var" / "demo-credentials.json"
    finally:
        proc.terminate()
        proc.communicate(timeout=GUARD)


def test_try_webhooks_shows_a_verified_signed_delivery(demo: tuple[str, Path]) -> None:
    url, credentials = demo
    done = subprocess.run(
        [sys.executable, "ops/try/webhooks.py", "--url", url, "--credentials", str(credentials)],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=GUARD,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "delivery received: signature verified" in out, out
    assert "webhook-signature: v1," in out
    assert "event: order.created order" in out
    assert "attempt 1 delivered HTTP 204" in out
    assert "deleted webhook endpoint" in out


def test_the_sdk_module_lists_orders_then_follows_a_new_one(demo: tuple[str, Path]) -> None:
    url, credentials = demo
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway_client",
            "--url",
            url,
            "--events",
            "1",
            "--credentials",
            str(credentials),
        ],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        lines = []
        for line in follower.stdout:  # the newest orders, then "following orders"
            lines.append(line)
            if line.startswith("following orders"):
                break
        assert any(line.startswith("order ") for line in lines), lines
        stored = json.loads(credentials.read_text())
        with httpx.Client(base_url=url, timeout=GUARD) as http:
            token = http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(stored["client_id"], stored["client_secret"]),
            ).json()["access_token"]
            http.headers["authorization"] = f"Bearer {token}"
            customer = http.get("/api/v1/customers", params={"page_size": 1}).json()["data"][0]
            product = http.get(
                "/api/v1/products", params={"page_size": 1, "filter": "stock >= 1"}
            ).json()["data"][0]
            made = http.post(
                "/api/v1/orders",
                json={
                    "customer_id": customer["id"],
                    "items": [{"product_id": product["id"], "quantity": 1}],
                },
            )
            assert made.status_code == 201, made.text
        out, err = follower.communicate(timeout=GUARD)
        assert follower.returncode == 0, err
        assert f"order.created {made.json()['data']['id']}" in out, out
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.communicate()
