"""Readiness follows PostgreSQL: a TCP proxy in front of it is cut, then restored."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from tests.conftest import POSTGRES_URL
from tests.gateway.test_cli import clean_env, free_port
from tests.gateway.test_health import wait_for
from tests.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.postgres_only, pytest.mark.filterwarnings("ignore::ResourceWarning")]


@pytest.fixture
def scratch_database() -> Iterator[str]:
    name = f"gateway_ready_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_URL.replace("postgres://", "postgresql://"))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_readiness_follows_the_database(tmp_path, scratch_database):
    host_port = POSTGRES_URL.split("@", 1)[1].split("/", 1)[0]
    host, _, pg_port = host_port.partition(":")
    proxy = TcpProxy(free_port(), (host, int(pg_port or 5432)))
    proxy.start()
    user = POSTGRES_URL.split("://", 1)[1].split("@", 1)[0]
    url = f"postgres://{user}@127.0.0.1:{proxy.port}/{scratch_database}"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--port", str(port)],
        env=clean_env(DATABASE_URL=url, AUTO_MIGRATE="true", LOG_LEVEL="WARNING"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/readyz", proc)

        proxy.stop()
        down = httpx.get(f"{base}/readyz", timeout=10)
        assert down.status_code == 503
        assert down.json()["checks"]["database"].startswith("error")
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200

        proxy.start()
        deadline = time.monotonic() + 15
        while httpx.get(f"{base}/readyz", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "not ready again after the database came back"
            time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        with contextlib.suppress(Exception):
            proxy.stop()
        proxy.close()
