"""Reads keep their pooled connection for the next read (``db.pg``), safely."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from tortoise import connections

from db.sql import select
from tests.conftest import POSTGRES_URL
from tests.factories import make_customer

pytestmark = pytest.mark.postgres_only
PID = "SELECT pg_backend_pid() AS pid"


async def test_at_most_half_the_pool_is_kept_and_writes_still_get_connections(server, tenant):
    client = connections.get("default")
    await asyncio.gather(*(select("SELECT pg_sleep(0.05)") for _ in range(25)))
    assert 1 <= len(client._kept) <= client._keep_at_most < client._pool.get_max_size()
    # Writes go through the ORM and the pool: the kept half never starves them.
    await asyncio.wait_for(
        asyncio.gather(*(make_customer(tenant.owner) for _ in range(5))), timeout=10
    )


async def test_a_cancelled_read_gives_its_connection_back_to_the_pool(server):
    client = connections.get("default")
    await select(PID)
    kept = len(client._kept)
    slow = asyncio.create_task(select("SELECT pg_sleep(5)"))
    await asyncio.sleep(0.2)
    assert len(client._kept) == kept - 1  # the slow read took one
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    assert len(client._kept) == kept - 1  # not kept after a cancellation
    assert (await select("SELECT 1 AS one")) == [{"one": 1}]


async def test_a_kept_connection_the_server_dropped_is_replaced(server):
    client = connections.get("default")
    await select(PID)
    pids = [c.get_server_pid() for c in client._kept]
    assert pids
    admin = await asyncpg.connect(POSTGRES_URL.replace("postgres://", "postgresql://"))
    try:
        await admin.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid", pids)
    finally:
        await admin.close()
    await asyncio.sleep(0.2)
    rows = await select(PID)
    assert rows[0]["pid"] not in pids


async def test_kept_connections_go_back_when_the_client_lets_go(server):
    client = connections.get("default")
    await select(PID)
    idle = client._pool.get_idle_size()
    kept = len(client._kept)
    assert kept >= 1
    await client._give_back_kept()
    assert client._kept == []
    assert client._pool.get_idle_size() == idle + kept
