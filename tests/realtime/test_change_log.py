"""The change log and the relay: gap-free positions, commits only, resume limits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from db import events as change_log
from db.errors import InsufficientStock, ResyncRequired
from db.models import Event
from tests import realtime_clients as rt
from tests.factories import make_customer, make_order, make_product


async def settled(server, timeout: float = 10) -> int:
    """Wait until the relay has numbered every committed event; the head position."""
    deadline = asyncio.get_running_loop().time() + timeout
    while await Event.filter(position__isnull=True).exists():
        assert asyncio.get_running_loop().time() < deadline, "the relay did not catch up"
        await asyncio.sleep(0.02)
    return await change_log.head_position()


async def test_concurrent_writes_get_gap_free_increasing_positions(server, tenant):
    await settled(server)
    start = await change_log.head_position()
    await asyncio.gather(*(make_customer(tenant.owner) for _ in range(25)))
    head = await settled(server)
    rows = await change_log.events_after(start, limit=1000)
    positions = [row["position"] for row in rows]
    assert positions == list(range(start + 1, head + 1))
    mine = [row for row in rows if row["organization_id"] == tenant.id]
    assert len(mine) == 25
    assert {row["type"] for row in mine} == {"customer.created"}


async def test_a_rolled_back_write_is_never_numbered_or_published(server, tenant):
    customer = await make_customer(tenant.owner)
    product = await make_product(tenant.owner, stock=1)
    before = await settled(server)
    with pytest.raises(InsufficientStock):
        await make_order(tenant.owner, customer["id"], [(product["id"], 5)])
    assert await settled(server) == before
    rows = await change_log.events_after(before, organization_id=tenant.id)
    assert rows == []


async def test_the_relay_wakes_on_commit_not_on_its_poll(server, tenant):
    relay = server.app.ctx.extras["relay"]
    await settled(server)
    start = await change_log.head_position()
    async with rt.realtime(server.base_url, tenant_token(tenant)) as ws:
        await rt.subscribe(ws, "c", ["customers"])
        loop = asyncio.get_running_loop()
        began = loop.time()
        await make_customer(tenant.owner)
        (event,) = await rt.events(ws, 1)
        latency = loop.time() - began
    assert event["position"] > start
    # Far below the relay's one-second poll: the commit woke it.
    assert latency < relay.poll_seconds / 2


async def test_events_after_keeps_to_the_organization_and_resources(server, tenant, other_tenant):
    start = await settled(server)
    await make_customer(tenant.owner)
    await make_product(tenant.owner)
    await make_customer(other_tenant.owner)
    await settled(server)
    mine = await change_log.events_after(start, organization_id=tenant.id, resources=("customer",))
    assert [row["type"] for row in mine] == ["customer.created"]
    assert all(row["organization_id"] == tenant.id for row in mine)


async def test_pruning_keeps_the_newest_event_and_resume_before_it_asks_for_resync(server, tenant):
    hub = server.app.ctx.extras["hub"]
    await make_customer(tenant.owner)
    head = await settled(server)
    removed = await change_log.prune(datetime.now(UTC) + timedelta(days=1))
    assert removed >= 1
    assert await change_log.oldest_position() == head  # only the newest is left
    mailbox = hub.mailbox(tenant.principal("owner"))
    try:
        with pytest.raises(ResyncRequired):
            await hub.subscribe(mailbox, {"customers": None}, after=head - 2)
        # Resuming right before the newest kept event still works.
        subscriber = await hub.subscribe(mailbox, {"customers": None}, after=head - 1)
        assert subscriber.cursor >= head - 1
    finally:
        mailbox.close(1000, "done")


def tenant_token(tenant) -> str:
    return tenant.client.headers["Authorization"].removeprefix("Bearer ")


async def test_one_transaction_s_events_are_numbered_together(server, tenant):
    customer = await make_customer(tenant.owner)
    product = await make_product(tenant.owner, stock=10)
    start = await settled(server)
    await make_order(tenant.owner, customer["id"], [(product["id"], 2)])
    await settled(server)
    rows = await change_log.events_after(start, organization_id=tenant.id)
    assert sorted(row["type"] for row in rows) == ["order.created", "product.updated"]
    assert [row["position"] for row in rows] == [start + 1, start + 2]
