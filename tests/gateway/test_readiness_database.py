"""Readiness follows PostgreSQL: a TCP proxy in front of it is cut, then restored."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from tests.conftest import POSTGRES_URL
from tests.gateway.test_cli import clean_env, free_port
from tests.gateway.test_health import wait_for

pytestmark = [pytest.mark.postgres_only, pytest.mark.filterwarnings("ignore::ResourceWarning")]


class TcpProxy:
    """Forwards 127.0.0.1:port to the upstream until stopped; can be started again."""

    def __init__(self, port: int, upstream: tuple[str, int]) -> None:
        self.port, self.upstream = port, upstream
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def start(self) -> None:
        async def run() -> None:
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

        asyncio.run_coroutine_threadsafe(run(), self.loop).result(5)

    def stop(self) -> None:
        async def run() -> None:
            assert self.server is not None
            self.server.close()
            for writer in self.writers:
                writer.close()
            self.writers.clear()

        asyncio.run_coroutine_threadsafe(run(), self.loop).result(5)

    def close(self) -> None:
        async def cancel_pipes() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_pipes(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


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
