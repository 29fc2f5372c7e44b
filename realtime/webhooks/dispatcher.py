"""The webhook dispatcher: one per installation, one task per enabled endpoint.

Every worker process runs a ``Dispatcher`` candidate (like the relay); the one that
holds the lock (``leadership.py``) leads: it keeps one ``EndpointWorker`` task per
enabled endpoint (``worker.py``), so a slow or failing receiver only ever holds up
its own endpoint. It follows the change stream on the bus: an event of an
organization wakes that organization's workers, a ``webhook_endpoint.*`` event
re-reads the endpoint set, and a heartbeat ahead of what it has seen (a missed
message) wakes them all. Every ``poll_seconds`` it also re-reads the endpoint set
and restarts a worker that failed (the database was away, say).

Stopping lets deliveries in flight finish for up to ``grace_seconds``; one still
running then is cancelled, its cursor not moved: the next leader sends the event
again with the same ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from db.events import installation_key
from db.webhook_delivery import enabled_endpoints
from realtime.clock import Clock, SystemClock
from realtime.outage import Outage, describe
from realtime.relay import channel_for
from realtime.webhooks.leadership import Lease, lead
from realtime.webhooks.worker import EndpointWorker, Stopping

WORKER_LOG_SECONDS = 60.0  # at most one line a minute per endpoint's failing worker

if TYPE_CHECKING:
    from gateway.settings import Settings
    from realtime.bus import EventBus

log = logging.getLogger("gateway.webhooks")


@dataclass(frozen=True, slots=True)
class Policy:
    """How deliveries are made (the WEBHOOK_* settings)."""

    allow_private: bool = False
    connect_timeout: float = 5.0
    timeout: float = 15.0
    max_response_bytes: int = 16_384
    max_attempts: int = 8
    retry_initial: float = 5.0
    retry_max: float = 3600.0
    breaker_failures: int = 5
    breaker_cooldown: float = 60.0
    disable_after: float = 259_200.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            allow_private=settings.webhook_private_targets_allowed,
            connect_timeout=settings.webhook_connect_timeout_seconds,
            timeout=settings.webhook_timeout_seconds,
            max_response_bytes=settings.webhook_max_response_bytes,
            max_attempts=settings.webhook_max_attempts,
            retry_initial=settings.webhook_retry_initial_seconds,
            retry_max=settings.webhook_retry_max_seconds,
            breaker_failures=settings.webhook_breaker_failures,
            breaker_cooldown=settings.webhook_breaker_cooldown_seconds,
            disable_after=float(settings.webhook_disable_after_seconds),
        )


class Dispatcher:
    def __init__(
        self,
        bus: EventBus | None,
        *,
        database_url: str,
        policy: Policy,
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        takeover_seconds: float = 1.0,
        poll_seconds: float = 5.0,
        grace_seconds: float = 2.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self.bus = bus
        self.database_url = database_url
        self.policy = policy
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.sleep = sleep
        self.takeover_seconds = takeover_seconds
        self.poll_seconds = poll_seconds
        self.grace_seconds = grace_seconds
        self.connect_timeout = connect_timeout
        self.leading = False
        self.stopping = asyncio.Event()
        self.workers: dict[int, tuple[EndpointWorker, asyncio.Task[None]]] = {}
        self._organizations: dict[int, int] = {}  # endpoint id -> organization id
        self._changed = asyncio.Event()
        self._seen = 0
        self._task: asyncio.Task[None] | None = None
        self.outage = Outage(log, "webhook dispatcher: database")
        # When each endpoint's worker last logged that it ended by an exception (the
        # database went away mid-attempt, or a bug): at most a line a minute each, apart
        # from the database outage so that neither hides the other.
        self._worker_logged: dict[str, float] = {}

    async def start(self) -> None:
        self.stopping.clear()
        self._task = asyncio.create_task(self._run(), name="webhook-dispatcher")

    async def stop(self) -> None:
        """Let deliveries in flight finish (up to ``grace_seconds``), then end."""
        self.stopping.set()
        tasks = [task for _, task in self.workers.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=self.grace_seconds)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -- time, for the workers -------------------------------------------------

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds`` on the dispatcher's clock; ``Stopping`` if it stops meanwhile."""
        if self.stopping.is_set():
            raise Stopping
        if seconds <= 0:
            return
        sleeper = asyncio.ensure_future(self.sleep(seconds))
        stopper = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            stopper.cancel()
        if self.stopping.is_set():
            raise Stopping

    async def idle(self, wake: asyncio.Event) -> None:
        """Wait for news for one endpoint (or the poll interval, or stopping)."""
        waiter = asyncio.ensure_future(wake.wait())
        stopper = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait(
                {waiter, stopper}, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()
            stopper.cancel()
        if self.stopping.is_set():
            raise Stopping

    # -- leading ---------------------------------------------------------------

    async def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                async with lead(
                    self.database_url,
                    takeover_seconds=self.takeover_seconds,
                    connect_timeout=self.connect_timeout,
                ) as lease:
                    self.leading = True
                    log.info("this worker now runs the webhook dispatcher")
                    await self._lead(lease)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.outage.failed(error)
            finally:
                self.leading = False
                await self._stop_workers()
            await asyncio.sleep(self.takeover_seconds)

    async def _lead(self, lease: Lease) -> None:
        follower: asyncio.Task[None] | None = None
        if self.bus is not None:
            follower = asyncio.create_task(self._follow(), name="webhook-dispatcher-follow")
        try:
            while not self.stopping.is_set():
                await lease.check()
                await self._sync()
                if self.outage.down:
                    self.outage.succeeded()
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await self._changed.wait()
        finally:
            if follower is not None:
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower

    async def _sync(self) -> None:
        """One worker per enabled endpoint: start the missing, end the extra."""
        wanted = await enabled_endpoints()
        self._organizations = wanted
        for endpoint_id in list(self.workers):
            worker, task = self.workers[endpoint_id]
            if endpoint_id not in wanted or task.done():
                task.cancel()
                await asyncio.wait([task])  # its outcome was logged by ``_ended``
                del self.workers[endpoint_id]
        for endpoint_id in wanted:
            if endpoint_id not in self.workers and not self.stopping.is_set():
                worker = EndpointWorker(self, endpoint_id)
                task = asyncio.create_task(worker.run(), name=f"webhook-endpoint-{endpoint_id}")
                task.add_done_callback(self._ended)
                self.workers[endpoint_id] = (worker, task)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """Log a worker that ended by an exception; the next look restarts it."""
        error = None if task.cancelled() else task.exception()
        if error is None:
            return
        now = time.monotonic()
        name = task.get_name()
        if now - self._worker_logged.get(name, -WORKER_LOG_SECONDS) >= WORKER_LOG_SECONDS:
            self._worker_logged[name] = now
            log.warning(
                "%s ended (%s); restarted within %.1f s", name, describe(error), self.poll_seconds
            )

    async def _stop_workers(self) -> None:
        tasks = [task for _, task in self.workers.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self.workers.clear()

    async def _follow(self) -> None:
        """Wake the workers an event on the bus concerns."""
        assert self.bus is not None
        channel = channel_for(await installation_key())
        async with self.bus.subscribe(channel, maxsize=10_000) as subscription:
            async for message in subscription:
                payload = message.payload
                position = payload.get("position")
                if position is None:
                    head = payload.get("head")
                    if isinstance(head, int) and head > self._seen:
                        self._seen = head
                        self._wake_all()
                    continue
                self._seen = max(self._seen, int(position))
                if str(payload.get("type", "")).startswith("webhook_endpoint."):
                    self._changed.set()  # the endpoint set may have changed
                    changed = self.workers.get(_int(payload.get("resource_id")))
                    if changed is not None:
                        changed[0].wake.set()  # re-read its URL, secrets, filter, replays
                organization = payload.get("organization_id")
                for endpoint_id, (worker, _) in self.workers.items():
                    if self._organizations.get(endpoint_id) == organization:
                        worker.wake.set()

    def _wake_all(self) -> None:
        for worker, _ in self.workers.values():
            worker.wake.set()


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0
