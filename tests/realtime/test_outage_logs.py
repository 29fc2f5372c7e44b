"""An outage is logged once when it starts and once when it ends, not per attempt.

A 12-second Redis outage once logged 251 tracebacks. The bus is run here against a
private ``redis-server`` on a spare port (never the shared one), stopped and started
again; the test waits on the bus's own attempt counter, not on time.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from realtime.bus import EventBus
from realtime.outage import Outage
from tests.processes import free_port


def test_many_failures_are_one_line_and_the_return_is_another(caplog):
    now = [100.0]
    log = logging.getLogger("test.outage")
    outage = Outage(log, "the thing", clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="test.outage"):
        outage.succeeded()  # up and still up: nothing to say
        for _ in range(100):
            outage.failed(ConnectionError("Connection refused\n  by peer"))
            now[0] += 0.025
        outage.succeeded()
        outage.succeeded()
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "the thing: unavailable (ConnectionError: Connection refused by peer); retrying",
        "the thing: back after 2.5 s (100 failed attempts)",
    ]
    assert all(r.exc_info is None for r in caplog.records)


def start_redis(port: int, directory: Path) -> subprocess.Popen[bytes]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is needed for this test (it is on the services machines)")
    command = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(directory)]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL)


async def answering(url: str) -> None:
    for _ in range(500):
        client = Redis.from_url(url)
        try:
            await client.ping()
            return
        except (OSError, RedisConnectionError):
            await asyncio.sleep(0.02)
        finally:
            await client.aclose()
    raise AssertionError("the private Redis did not start")


async def until(check, what: str) -> None:
    for _ in range(6_000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_redis_outage_logs_one_line_down_and_one_line_back(tmp_path, caplog):
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    redis = start_redis(port, tmp_path)
    bus = EventBus(url)
    try:
        await answering(url)
        await bus.connect()
        channel = f"test:{uuid.uuid4().hex}"
        with caplog.at_level(logging.INFO, logger="gateway.realtime"):
            async with bus.subscribe(channel):
                redis.terminate()
                redis.wait(timeout=10)
                await until(lambda: bus.outage.attempts >= 5, "five failed reconnects")
                during = [r for r in caplog.records if r.name == "gateway.realtime"]
                redis = start_redis(port, tmp_path)
                await until(lambda: bus.reconnects >= 1, "the bus to reconnect")
        records = [r for r in caplog.records if r.name == "gateway.realtime"]
    finally:
        await bus.disconnect()
        redis.terminate()
        redis.wait(timeout=10)
    assert len(during) == 1, [r.getMessage() for r in during]
    assert during[0].getMessage().startswith("event bus (Redis pub/sub): unavailable (")
    assert len(records) == 2, [r.getMessage() for r in records]
    assert "back after" in records[1].getMessage()
    assert all(r.exc_info is None for r in records)
