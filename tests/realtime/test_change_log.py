"""The change log and the relay: gap-free positions, commits only, resume limits."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import websockets

from db import events as change_log
from db.errors import InsufficientStock, ResyncRequired
from db.models import Event
from realtime.relay import asyncpg_dsn
from tests import realtime_clients as rt
from tests.conftest import BACKEND
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
    relay = server.app.ctx.relay
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
    hub = server.app.ctx.hub
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


async def kept_window() -> tuple[int, int, int]:
    """(oldest, newest, how many) numbered positions, read in one snapshot."""
    rows = await change_log.select(
        "SELECT coalesce(min(position), 0) AS lo, coalesce(max(position), 0) AS hi,"
        " count(position) AS n FROM events",
    )
    return int(rows[0]["lo"]), int(rows[0]["hi"]), int(rows[0]["n"])


async def prune_with(how: str, server, before: datetime) -> None:
    """Prune through Tortoise, or with the relay's own statement on its own connection."""
    if how == "orm":
        await change_log.prune(before)
        return
    if BACKEND != "services":
        pytest.skip("the relay's own statement runs on PostgreSQL")
    connection = await asyncpg.connect(asyncpg_dsn(server.app.ctx.settings.database_url))
    try:
        await connection.execute(change_log.PRUNE, before)
    finally:
        await connection.close()


@pytest.mark.parametrize("how", ["orm", "relay"])
async def test_pruning_cuts_by_position_so_an_older_time_after_a_newer_one_leaves_no_hole(
    server, tenant, how
):
    """Positions follow commits, times the writes' start: a later position can hold an
    older time. Deleting by time would cut a hole inside the kept window."""
    start = await settled(server)
    for _ in range(10):
        await make_customer(tenant.owner)
    head = await settled(server)
    assert head == start + 10
    base = datetime.now(UTC) - timedelta(hours=1)
    # minutes after base, by position start+1 ..; position start+6 is older (4) than
    # position start+5 (5), and the cut (4.5 minutes) falls between them
    minutes = [0, 1, 2, 3, 5, 4, 6, 7, 8, 9]
    await Event.filter(position__lte=start).update(created_at=base - timedelta(minutes=1))
    for offset, minute in enumerate(minutes, start=1):
        await Event.filter(position=start + offset).update(
            created_at=base + timedelta(minutes=minute)
        )
    before = base + timedelta(minutes=4.5)
    await prune_with(how, server, before)
    oldest, newest, count = await kept_window()
    assert (oldest, newest) == (start + 5, head)
    assert count == newest - oldest + 1  # no hole
    # everything created at or after the cut is kept
    assert not await Event.filter(created_at__gte=before, position__lt=oldest).exists()
    hub = server.app.ctx.hub
    mailbox = hub.mailbox(tenant.principal("owner"))
    try:
        with pytest.raises(ResyncRequired):
            await hub.subscribe(mailbox, {"customers": None}, after=oldest - 2)
        await hub.subscribe(mailbox, {"customers": None}, after=oldest - 1)
    finally:
        mailbox.close(1000, "done")


async def test_pruning_while_writers_commit_never_leaves_a_hole(server, tenant):
    await settled(server)
    stop = asyncio.Event()

    async def writer() -> None:
        while not stop.is_set():
            # the event's time is taken now, its position at commit: holding the
            # transaction open a little lets other writers commit (and be numbered)
            # first, with newer times (on PostgreSQL; SQLite runs one at a time)
            async with change_log.writing():
                await make_customer(tenant.owner)
                await asyncio.sleep(random.random() / 100)

    writers = [asyncio.create_task(writer()) for _ in range(4)]
    try:
        windows = []
        for i in range(60):
            # cuts among the rows being written and numbered right now, where a later
            # position can hold an older time
            await change_log.prune(datetime.now(UTC) - timedelta(milliseconds=i % 20))
            windows.append(await kept_window())
            await asyncio.sleep(0.005)
    finally:
        stop.set()
        await asyncio.gather(*writers)
    await settled(server)
    await change_log.prune(datetime.now(UTC))
    windows.append(await kept_window())
    for oldest, newest, count in windows:
        assert count == newest - oldest + 1, windows


async def test_a_resume_below_the_oldest_kept_position_is_resync_on_every_door(
    server, tenant, anon
):
    await make_customer(tenant.owner)
    await make_customer(tenant.owner)
    await settled(server)
    await change_log.prune(datetime.now(UTC) + timedelta(days=1))  # all but the newest
    oldest = await change_log.oldest_position()
    gone = oldest - 2  # the event at oldest - 1 is gone
    token = tenant_token(tenant)
    auth = {"Authorization": f"Bearer {token}"}
    subscription = "subscription ($a: StreamPosition) { customerEvents(after: $a) { position } }"

    # the JSON channel
    async with rt.realtime(server.base_url, token) as ws:
        await rt.send(ws, type="subscribe", id="s", topics=["customers"], after=gone)
        error = await rt.frame(ws)
        assert (error["type"], error["code"]) == ("error", "RESYNC_REQUIRED"), error
    # Server-Sent Events, by query and by Last-Event-ID
    for params, headers in (({"after": str(gone)}, {}), ({}, {"Last-Event-ID": str(gone)})):
        r = await anon.get(
            "/api/v1/events", params={"topics": "customers", **params}, headers={**auth, **headers}
        )
        assert r.status_code == 410, r.text
        assert r.json()["code"] == "RESYNC_REQUIRED"
    # GraphQL over WebSocket
    async with websockets.connect(
        rt.ws_url(server.base_url, "/graphql"), subprotocols=["graphql-transport-ws"]
    ) as ws:
        await rt.send(ws, type="connection_init", payload=auth)
        assert (await rt.frame(ws))["type"] == "connection_ack"
        await rt.send(
            ws, type="subscribe", id="1", payload={"query": subscription, "variables": {"a": gone}}
        )
        error = await rt.frame(ws)
        assert error["type"] == "error", error
        assert error["payload"][0]["extensions"]["code"] == "RESYNC_REQUIRED"
    # GraphQL over SSE and multipart
    for accept in ("text/event-stream", "multipart/mixed"):
        r = await anon.post(
            "/graphql",
            json={"query": subscription, "variables": {"a": gone}},
            headers={**auth, "Accept": accept},
        )
        assert r.status_code == 400, (accept, r.status_code, r.text)  # before any stream
        assert r.json()["errors"][0]["extensions"]["code"] == "RESYNC_REQUIRED", r.text


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
