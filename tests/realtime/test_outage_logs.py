"""An outage is logged once when it starts and once when it ends, not per attempt.

A 12-second Redis outage once logged 251 tracebacks. The bus, and then a whole
``gateway serve``, run here against a private ``redis-server`` on a spare port (never
the shared one), stopped and started again; the tests wait on the bus's own attempt
counter and on what the server says, not on time.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import uuid
from pathlib import Path

import httpx
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from realtime.bus import EventBus
from realtime.outage import Outage
from tests import served
from tests.processes import clean_env, free_port, gateway
from tests.realtime.test_delivery_faults import dashboards


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
    redis = served.start_redis(port, tmp_path)
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
                redis = served.start_redis(port, tmp_path)
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


COMPONENTS = ("event bus (Redis pub/sub)", "change-log relay: publishing to the bus")


async def test_a_gateway_logs_a_redis_outage_once_when_it_starts_and_once_when_it_ends(tmp_path):
    """A whole ``gateway serve`` with a subscriber and writes going on while its
    (private) Redis is killed and started again: a few lines, none with a traceback.

    The test waits for the server's acknowledgements: readiness reporting Redis gone,
    then every event written during the outage reaching the subscriber.
    """
    redis_port = free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    redis = served.start_redis(redis_port, tmp_path)
    try:
        with (
            served.own_database(tmp_path) as database,
            served.gateways(tmp_path, database) as serve,
        ):
            node = serve(REDIS_URL=redis_url, RATE_LIMITS_ENABLED="true")
            token = _owner_token(node, tmp_path, database)
            headers = {"Authorization": f"Bearer {token}"}
            ws = f"ws://127.0.0.1:{node.port}/api/v1/realtime"
            async with (
                httpx.AsyncClient(base_url=node.url, headers=headers, timeout=30) as api,
                dashboards([[ws]], token) as (dashboard,),
            ):
                await _write(api, 3)
                await until(lambda: len(dashboard.events) >= 3, "the first events")
                before = len(node.lines())

                redis.kill()
                redis.wait()
                await until_async(lambda: _redis_is_down(api), "readiness to see Redis gone")
                await _write(api, 20)  # writes go on; their events wait in the change log
                # The relay retries a publish for about a second before it counts an
                # outage: Redis stays away until every component has said it is.
                for component in COMPONENTS:
                    await asyncio.to_thread(node.wait_for_line, f"{component}: unavailable")
                redis = served.start_redis(redis_port, tmp_path)
                await until(lambda: len(dashboard.events) >= 23, "the events of the outage")
                for component in COMPONENTS:  # each says, once, that Redis is back
                    await asyncio.to_thread(node.wait_for_line, f"{component}: back after")

            positions = [event["position"] for event in dashboard.events]
            assert positions == sorted(set(positions))
            assert len(positions) == 23
            node.proc.send_signal(signal.SIGTERM)
            assert node.exit_code() == 0
            node.assert_clean_log()
            during = [
                r["message"] for r in node.records(before) if r["level"] in ("warning", "error")
            ]
    finally:
        redis.kill()
        redis.wait()
    for component in COMPONENTS:
        said = [
            m.removeprefix(f"{component}: ").split()[0] for m in during if m.startswith(component)
        ]
        assert said == ["unavailable", "back"], during
    assert len(during) <= 10, during  # was 251 tracebacks in 12 s


def _owner_token(node: served.Gateway, cwd: Path, database: dict[str, str]) -> str:
    env = clean_env(**database)
    assert gateway("create-org", "acme", env=env, cwd=cwd).returncode == 0
    made = gateway("create-client", "acme", "dashboards", "--role", "owner", env=env, cwd=cwd)
    assert made.returncode == 0, made.stderr
    fields = dict(line.split("=", 1) for line in made.stdout.splitlines() if "=" in line)
    reply = httpx.post(
        f"{node.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(fields["client_id"], fields["client_secret"]),
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    token: str = reply.json()["access_token"]
    return token


async def _write(api: httpx.AsyncClient, count: int) -> None:
    for _ in range(count):
        key = uuid.uuid4().hex[:10]
        reply = await api.post(
            "/api/v1/customers", json={"name": key, "email": f"{key}@example.com"}
        )
        assert reply.status_code == 201, reply.text


async def _redis_is_down(api: httpx.AsyncClient) -> bool:
    reply = await api.get("/readyz")
    return str(reply.json()["checks"].get("redis", "")).startswith("error")


async def until_async(check, what: str) -> None:
    for _ in range(6_000):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")
