"""The event bus: fan-out of published messages to this process's subscribers.

A small front object (``EventBus``) over a backend chosen by URL scheme, in the
shape of encode/broadcaster:

- ``memory://``: in-process, for the embedded default and single-worker runs;
- ``redis://``: Redis pub/sub, so every worker and host sees every message.

``subscribe()`` is an async context manager yielding a ``Subscription`` with a
bounded queue; it always unsubscribes on exit. A full queue drops for that
subscriber only: it never slows the others (the change stream notices the gap
by position and reads what it missed from the log).

When Redis goes away the reader reconnects with backoff, subscribes again, and
calls the ``on_reconnect`` callbacks, so the change stream can backfill what
was published during the outage (pub/sub itself keeps nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from gateway import metrics
from gateway.ratelimit import raise_if_cancelled
from gateway.redis_client import redis_client
from realtime.outage import Outage
from realtime.tracing import publish_span

log = logging.getLogger("gateway.realtime")

BACKOFF_FIRST = 0.05
BACKOFF_MAX = 2.0


@dataclass(frozen=True, slots=True)
class Message:
    channel: str
    payload: Any
    raw: bytes = b""


class Backend(Protocol):
    async def connect(self) -> None: ...
    async def disconnect(self) -> None: ...
    async def reconnect(self, channels: Collection[str]) -> None: ...
    async def subscribe(self, channel: str) -> None: ...
    async def unsubscribe(self, channel: str) -> None: ...
    async def publish(self, channel: str, payload: bytes) -> None: ...
    async def publish_many(self, channel: str, payloads: list[bytes]) -> None: ...
    async def next_message(self) -> tuple[str, bytes]: ...


class MemoryBackend:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._channels: set[str] = set()

    async def connect(self) -> None:
        return None

    async def disconnect(self) -> None:
        return None

    async def reconnect(self, channels: Collection[str]) -> None:
        return None

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def publish(self, channel: str, payload: bytes) -> None:
        if channel in self._channels:
            self._queue.put_nowait((channel, payload))

    async def publish_many(self, channel: str, payloads: list[bytes]) -> None:
        if channel in self._channels:
            for payload in payloads:
                self._queue.put_nowait((channel, payload))

    async def next_message(self) -> tuple[str, bytes]:
        return await self._queue.get()


class RedisBackend:
    """Redis pub/sub. Each command is followed by ``raise_if_cancelled``: redis-py
    finishes a command it was cancelled in and returns normally, and a relay or
    reader that misses its cancellation that way never stops (SIGTERM hung)."""

    def __init__(self, url: str) -> None:
        # Publishing goes through the worker's retrying client, so the first publish
        # after a Redis restart reconnects instead of failing once; while Redis is
        # really away it fails within about a second (the change log keeps the event).
        # The reader has its own client without retries: it reconnects, and
        # resubscribes, on its own schedule.
        self._publisher: Redis = redis_client(url)
        self._redis: Redis = Redis.from_url(url, socket_connect_timeout=2.0)
        self._pubsub: PubSub = self._redis.pubsub()

    async def connect(self) -> None:
        await self._redis.ping()
        raise_if_cancelled()

    async def disconnect(self) -> None:
        await self._pubsub.aclose()
        await self._redis.aclose()
        await self._publisher.aclose()

    async def reconnect(self, channels: Collection[str]) -> None:
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
        self._pubsub = self._redis.pubsub()
        await self._redis.ping()
        if channels:
            await self._pubsub.subscribe(*channels)
        raise_if_cancelled()

    async def subscribe(self, channel: str) -> None:
        await self._pubsub.subscribe(channel)
        raise_if_cancelled()

    async def unsubscribe(self, channel: str) -> None:
        await self._pubsub.unsubscribe(channel)

    async def publish(self, channel: str, payload: bytes) -> None:
        await self._publisher.publish(channel, payload)
        raise_if_cancelled()

    async def publish_many(self, channel: str, payloads: list[bytes]) -> None:
        async with self._publisher.pipeline(transaction=False) as pipe:
            for payload in payloads:
                pipe.publish(channel, payload)
            await pipe.execute()
        raise_if_cancelled()

    async def next_message(self) -> tuple[str, bytes]:
        while True:
            if not self._pubsub.subscribed:
                await asyncio.sleep(0.05)
                continue
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            raise_if_cancelled()
            if message is not None and message["type"] == "message":
                channel = message["channel"]
                return (channel.decode() if isinstance(channel, bytes) else channel), message[
                    "data"
                ]


def backend_for(url: str) -> Backend:
    if url.startswith("memory://"):
        return MemoryBackend()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisBackend(url)
    raise ValueError(f"no event bus backend for {url!r}; use memory:// or redis://")


@dataclass(eq=False)
class Subscription:
    channel: str
    queue: asyncio.Queue[Message | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=1_000)
    )

    async def __aiter__(self) -> AsyncIterator[Message]:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            yield item


class EventBus:
    """Publish to channels; subscribers of this process get what is published anywhere."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._backend = backend_for(url)
        self._subscribers: dict[str, set[Subscription]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._reconnected: list[Callable[[], None]] = []
        self.reconnects = 0
        self.outage = Outage(log, "event bus (Redis pub/sub)")

    async def connect(self) -> None:
        await self._backend.connect()
        self._reader = asyncio.create_task(self._read(), name="event-bus-reader")

    async def disconnect(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._backend.disconnect()

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` each time the reader is back after losing the backend."""
        self._reconnected.append(callback)

    async def publish(self, channel: str, payload: Any) -> None:
        await self._backend.publish(channel, orjson.dumps(payload))

    async def publish_many(self, channel: str, payloads: list[bytes]) -> None:
        """Publish messages already encoded as JSON, in order, in one round trip where
        the backend can (the relay encodes each event once)."""
        if payloads:
            with publish_span(self.url.partition(":")[0], channel, len(payloads)):
                await self._backend.publish_many(channel, payloads)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str, *, maxsize: int = 1_000) -> AsyncIterator[Subscription]:
        subscription = Subscription(channel, asyncio.Queue(maxsize=maxsize))
        listeners = self._subscribers.setdefault(channel, set())
        if not listeners:
            await self._backend.subscribe(channel)
        listeners.add(subscription)
        try:
            yield subscription
        finally:
            listeners.discard(subscription)
            if not listeners:
                del self._subscribers[channel]
                with contextlib.suppress(Exception):
                    await self._backend.unsubscribe(channel)

    async def _read(self) -> None:
        backoff = BACKOFF_FIRST
        while True:
            try:
                channel, raw = await self._backend.next_message()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.outage.failed(error)
                metrics.redis_error("bus")
                await self._reconnect(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff = BACKOFF_FIRST
            listeners = self._subscribers.get(channel)
            if not listeners:
                continue
            try:
                message = Message(channel, orjson.loads(raw), raw)
            except orjson.JSONDecodeError:
                log.warning("dropped a message that is not JSON", extra={"channel": channel})
                continue
            for subscription in listeners:
                with contextlib.suppress(asyncio.QueueFull):
                    subscription.queue.put_nowait(message)

    async def _reconnect(self, backoff: float) -> None:
        while True:
            await asyncio.sleep(backoff * (0.5 + random.random()))
            try:
                await self._backend.reconnect(tuple(self._subscribers))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.outage.failed(error)
                metrics.redis_error("bus")
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            self.reconnects += 1
            self.outage.succeeded()
            for callback in tuple(self._reconnected):
                callback()
            return
