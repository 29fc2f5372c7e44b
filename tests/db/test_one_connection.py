"""``db.sql.one_connection``: several reads on one pooled connection, taken once."""

from __future__ import annotations

import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from db.sql import one_connection, select
from tests.statements import counting_reads

PID = "SELECT pg_backend_pid() AS pid"


def free(client) -> int:
    """Connections no read holds: idle in asyncpg's pool, or kept for the next read."""
    return client._pool.get_idle_size() + len(client._kept)


@pytest.mark.postgres_only
async def test_reads_inside_share_one_connection_held_throughout(server):
    client = connections.get("default")
    await select(PID)  # a connection is free now
    before = free(client)
    assert before >= 1
    async with one_connection():
        assert free(client) == before - 1  # taken once, held between reads
        pids = {(await select(PID))[0]["pid"] for _ in range(5)}
        async with one_connection():  # nested: the same connection still
            pids.add((await select(PID))[0]["pid"])
        assert free(client) == before - 1
    assert free(client) == before
    assert len(pids) == 1


@pytest.mark.postgres_only
async def test_a_transaction_keeps_its_own_connection(server):
    async with in_transaction() as tx:
        (own,) = await tx.execute_query_dict(PID)
        async with one_connection():
            inside = (await select(PID))[0]["pid"]
    assert inside == own["pid"]


async def test_reads_count_and_work_on_every_backend(server):
    with counting_reads() as reads:
        async with one_connection():
            rows = await select("SELECT 1 AS one")
    assert rows == [{"one": 1}]
    assert reads.statements == ["SELECT 1 AS one"]
