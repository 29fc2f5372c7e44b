"""The event bus: fan-out of published events to this process's subscribers.

A small front object (``EventBus``) over a backend chosen by URL scheme, in the
shape of encode/broadcaster:

- ``memory://``: in-process, for the embedded default and single-worker runs;
- ``redis://``: Redis pub/sub, so every worker and host sees every event.

``subscribe()`` is an async context manager yielding a ``Subscription`` with a
bounded queue; it always unsubscribes on exit. The relay from the change log
(issue 5) is the publisher; until then nothing publishes in production.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import PubSub


@dataclass(frozen=True, slots=True)
class Message:
    channel: str
    payload: dict[str, Any]


class Backend(Protocol):
    async def connect(self) -> None: ...
    async def disconnect(self) -> None: ...
    async def subscribe(self, channel: str) -> None: ...
    async def unsubscribe(self, channel: str) -> None: ...
    async def publish(self, channel: str, payload: bytes) -> None: ...
    async def next_message(self) -> tuple[str, bytes]: ...


class MemoryBackend:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._channels: set[str] = set()

    async def connect(self) -> None:
        return None

    async def disconnect(self) -> None:
        return None

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def publish(self, channel: str, payload: bytes) -> None:
        if channel in self._channels:
            await self._queue.put((channel, payload))

    async def next_message(self) -> tuple[str, bytes]:
        return await self._queue.get()


class RedisBackend:
    def __init__(self, url: str) -> None:
        self._redis: Redis = Redis.from_url(url)
        self._pubsub: PubSub = self._redis.pubsub()

    async def connect(self) -> None:
        await self._redis.ping()

    async def disconnect(self) -> None:
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self._redis.aclose()

    async def subscribe(self, channel: str) -> None:
        await self._pubsub.subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        await self._pubsub.unsubscribe(channel)

    async def publish(self, channel: str, payload: bytes) -> None:
        await self._redis.publish(channel, payload)

    async def next_message(self) -> tuple[str, bytes]:
        while True:
            if not self._pubsub.subscribed:
                await asyncio.sleep(0.05)
                continue
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
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
        self._backend = backend_for(url)
        self._subscribers: dict[str, set[Subscription]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        await self._backend.connect()
        self._reader = asyncio.create_task(self._read(), name="event-bus-reader")

    async def disconnect(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._backend.disconnect()

    async def publish(self, channel: str, payload: dict[str, Any]) -> None:
        await self._backend.publish(channel, orjson.dumps(payload))

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        subscription = Subscription(channel)
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
                await self._backend.unsubscribe(channel)

    async def _read(self) -> None:
        while True:
            channel, raw = await self._backend.next_message()
            message = Message(channel, orjson.loads(raw))
            for subscription in list(self._subscribers.get(channel, ())):
                # A full queue drops for that subscriber only (issue 5 adds
                # disconnect-and-resume); it never slows the others.
                with contextlib.suppress(asyncio.QueueFull):
                    subscription.queue.put_nowait(message)
