"""Helpers of the delivery tests: endpoints, a dispatcher of the test's own, jumping time."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from db.events import head_position
from db.models import Event, WebhookDeadLetter, WebhookDelivery, WebhookEndpoint
from realtime.webhooks import Dispatcher, Policy

GUARD = 60.0  # seconds: only reached when something is broken


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


class JumpingTime:
    """The dispatcher's clock and sleep: a sleep moves the clock at once, so a backoff
    of an hour takes no time. Sleeps of ``block_at`` seconds or more (a breaker's
    cooldown, say) wait until the test calls ``release()``."""

    def __init__(self, block_at: float = math.inf) -> None:
        self.now = time.time()
        self.block_at = block_at
        self.slept: list[float] = []
        self.blocked = 0
        self._gate = asyncio.Event()

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object]) -> Any:
        raise NotImplementedError("the dispatcher only reads the time")

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if seconds >= self.block_at:
            gate = self._gate
            self.blocked += 1
            try:
                await gate.wait()
            finally:
                self.blocked -= 1
        self.now += seconds
        await asyncio.sleep(0)

    def release(self) -> None:
        self._gate.set()
        self._gate = asyncio.Event()


POLICY = {
    "allow_private": True,
    "connect_timeout": 5.0,
    "timeout": 20.0,
    "max_attempts": 50,
    "retry_initial": 1.0,
    "retry_max": 10.0,
    "breaker_failures": 1000,
    "breaker_cooldown": 30.0,
    "disable_after": 10.0**7,
}


@contextlib.asynccontextmanager
async def dispatching(
    server: Any, clock: JumpingTime | None = None, *, grace: float = 2.0, **policy: Any
) -> AsyncIterator[Dispatcher]:
    """A dispatcher of the test's own over the test server's database and bus."""
    clock = clock or JumpingTime()
    dispatcher = Dispatcher(
        server.app.ctx.bus,
        database_url=server.app.ctx.settings.database_url,
        policy=Policy(**(POLICY | policy)),
        clock=clock,
        sleep=clock.sleep,
        takeover_seconds=0.05,
        poll_seconds=0.3,
        grace_seconds=grace,
    )
    await dispatcher.start()
    try:
        await until(lambda: dispatcher.leading, "the dispatcher to lead")
        yield dispatcher
    finally:
        await dispatcher.stop()


async def until(check: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + GUARD
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def until_async(check: Callable[[], Any], what: str, explain: Any = None) -> Any:
    deadline = time.monotonic() + GUARD
    while not (result := await check()):
        if time.monotonic() > deadline and explain is not None:
            what += f": {await explain()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return result


async def settled(timeout: float = GUARD) -> int:
    """Wait until the relay has numbered every committed event; the head position."""
    deadline = time.monotonic() + timeout
    while await Event.filter(position__isnull=True).exists():
        assert time.monotonic() < deadline, "the relay did not catch up"
        await asyncio.sleep(0.02)
    return await head_position()


async def make_endpoint(
    organization_id: int,
    url: str,
    *,
    topics: tuple[str, ...] = ("customers",),
    filter: str = "",
    secret: str | None = None,
) -> WebhookEndpoint:
    """An endpoint as the API creates one: its cursor at the head, so it gets what follows."""
    return await WebhookEndpoint.create(
        organization_id=organization_id,
        url=url,
        description="delivery test",
        topics=list(topics),
        event_filter=filter,
        enabled=True,
        secret=secret or new_secret(),
        cursor=await settled(),
    )


async def deliveries(endpoint_id: int) -> list[WebhookDelivery]:
    return await WebhookDelivery.filter(endpoint_id=endpoint_id).order_by("id")


async def dead_letters(endpoint_id: int) -> list[WebhookDeadLetter]:
    return await WebhookDeadLetter.filter(endpoint_id=endpoint_id).order_by("position")


async def endpoint(endpoint_id: int) -> WebhookEndpoint:
    return await WebhookEndpoint.get(id=endpoint_id)
