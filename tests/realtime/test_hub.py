"""The worker's change stream: gaps are read from the log, slow consumers are cut off."""

from __future__ import annotations

import asyncio

import pytest

from db import events as change_log
from realtime.close_codes import SLOW_CONSUMER
from realtime.hub import MailboxClosed, StreamEvent
from realtime.relay import channel_for, encode
from tests.factories import make_customer


async def test_a_slow_consumer_is_closed_and_the_others_go_on(server, tenant):
    hub = server.app.ctx.hub
    slow = hub.mailbox(tenant.principal("owner"))
    fast = hub.mailbox(tenant.principal("owner"))
    slow.limit = 3
    try:
        await hub.subscribe(slow, {"customers": None})
        await hub.subscribe(fast, {"customers": None})
        for _ in range(5):
            await make_customer(tenant.owner)
        got: list[StreamEvent] = []
        while len(got) < 5:
            got += [event for _, event in await asyncio.wait_for(fast.get(), 10) if event]
        assert slow.closed == SLOW_CONSUMER
        with pytest.raises(MailboxClosed) as closed:
            await slow.get()
        assert closed.value.code == 1013
        assert slow.subscribers == set()
    finally:
        slow.close(1000, "done")
        fast.close(1000, "done")


async def test_a_missed_message_is_read_from_the_log(server, tenant):
    """The relay's message for a position never arrives; the next one shows the gap."""
    hub = server.app.ctx.hub
    relay = server.app.ctx.relay
    mailbox = hub.mailbox(tenant.principal("owner"))
    try:
        await hub.subscribe(mailbox, {"customers": None})
        # Hold the relay back, write twice, then publish only the second event.
        await relay.stop()
        try:
            await make_customer(tenant.owner, name="lost in transit")
            await make_customer(tenant.owner, name="arrives")
            numbered = await change_log.assign_positions(10)
            assert [e["data"]["name"] for e in numbered[-2:]] == ["lost in transit", "arrives"]
            await server.app.ctx.bus.publish_many(hub.channel, [encode(numbered[-1])])
            got: list[StreamEvent] = []
            while len(got) < 2:
                got += [e for _, e in await asyncio.wait_for(mailbox.get(), 10) if e]
            names = [e.data["name"] for e in got if isinstance(e, StreamEvent)]
            assert names == ["lost in transit", "arrives"]
        finally:
            await relay.start()
    finally:
        mailbox.close(1000, "done")


async def test_another_installation_on_the_same_redis_is_not_our_stream(server, tenant):
    """Two gateways on different databases share a Redis: their positions never mix."""
    hub = server.app.ctx.hub
    assert hub.channel.startswith("gateway:events:")
    foreign = {
        "position": hub.head + 1000,
        "type": "customer.created",
        "resource": "customer",
        "resource_id": "1",
        "organization_id": tenant.id,
        "actor": "elsewhere",
        "occurred_at": "2026-01-01T00:00:00Z",
        "data": {"id": 1, "name": "not ours"},
    }
    mailbox = hub.mailbox(tenant.principal("owner"))
    try:
        await hub.subscribe(mailbox, {"customers": None})
        await server.app.ctx.bus.publish_many(
            channel_for("another-installation"), [encode(foreign)]
        )
        await make_customer(tenant.owner, name="ours")
        got: list[StreamEvent] = []
        while not got:
            got += [e for _, e in await asyncio.wait_for(mailbox.get(), 10) if e]
        assert [e.data["name"] for e in got if isinstance(e, StreamEvent)] == ["ours"]
        assert hub.head < foreign["position"]
    finally:
        mailbox.close(1000, "done")
