"""The event bus of the configured backend (in-process, or Redis pub/sub)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from realtime.bus import RedisBackend
from tests.private_redis import private_redis, proxy_to


async def subscribed(server, channel: str) -> None:
    """Wait until Redis counts a subscriber of ``channel`` (it confirms a SUBSCRIBE
    asynchronously: a PUBLISH on another connection could overtake it)."""
    redis = server.app.ctx.redis
    if redis is None:
        return  # the in-process bus subscribes at once
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not (await redis.pubsub_numsub(channel))[0][1]:
        assert loop.time() < deadline, f"Redis never confirmed the subscription to {channel}"
        await asyncio.sleep(0.01)


async def test_every_subscriber_of_a_channel_gets_each_message(server):
    bus = server.app.ctx.bus
    channel = f"test:{uuid.uuid4().hex}"
    async with bus.subscribe(channel) as first, bus.subscribe(channel) as second:
        await subscribed(server, channel)
        for n in range(3):
            await bus.publish(channel, {"n": n})
        for subscription in (first, second):
            got = [(await asyncio.wait_for(subscription.queue.get(), 5)) for _ in range(3)]
            assert [m.payload for m in got if m] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert channel not in bus._subscribers


async def test_other_channels_are_not_delivered(server):
    bus = server.app.ctx.bus
    mine, other = f"test:{uuid.uuid4().hex}", f"test:{uuid.uuid4().hex}"
    async with bus.subscribe(mine) as subscription:
        await subscribed(server, mine)
        await bus.publish(other, {"x": 1})
        await bus.publish(mine, {"x": 2})
        message = await asyncio.wait_for(subscription.queue.get(), 5)
        assert message is not None
        assert message.payload == {"x": 2}
        assert subscription.queue.empty()


async def test_a_publish_cancelled_in_flight_is_cancelled_not_completed(server):
    """redis-py finishes a command it was cancelled in and returns as if nothing had
    happened; the bus raises the cancellation, so the relay stops when told to (a
    swallowed one kept a worker from shutting down after SIGTERM)."""
    bus = server.app.ctx.bus
    channel = f"test:{uuid.uuid4().hex}"
    carried_on = cancelled = 0
    for i in range(200):
        task = asyncio.create_task(bus.publish_many(channel, [b"{}", b"{}"]))
        for _ in range(i % 7):  # cancel at different points of the round trip
            await asyncio.sleep(0)
        if not task.cancel():
            await task
            continue
        try:
            await task
        except asyncio.CancelledError:
            cancelled += 1
        else:
            carried_on += 1
    assert cancelled > 0
    assert carried_on == 0


@pytest.mark.postgres_only
async def test_the_first_publish_after_a_redis_restart_succeeds(tmp_path):
    """A restart closes the publisher's pooled connections; the proxy (like a container's
    port) lets the bus find out only from its next command, which then reconnects and
    is sent again instead of failing once."""
    with private_redis(tmp_path) as redis, proxy_to(redis) as proxy:
        backend = RedisBackend(proxy.url)
        await backend.connect()
        try:
            await asyncio.gather(*(backend.publish("test:restart", b"{}") for _ in range(4)))
            redis.stop()
            redis.start()
            await backend.publish("test:restart", b"{}")
            await backend.publish_many("test:restart", [b"{}", b"{}"])
        finally:
            await backend.disconnect()
