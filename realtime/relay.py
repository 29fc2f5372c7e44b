"""The relay: numbers committed change-log rows and publishes them, in order.

Exactly one relay works at a time per installation. On PostgreSQL every worker
runs a ``Relay`` that tries to take a session advisory lock on a connection of
its own; the holder numbers and publishes, the others retry every
``takeover_seconds``. When the holder's process dies its connection closes,
PostgreSQL releases the lock and another worker takes over within that
interval. The holder also ``LISTEN``s: a trigger on the events table notifies
at commit, so a write in any process wakes it within milliseconds. In this
process the write path wakes it directly: the factory hands the relay the
database client's ``Commits`` (``db.commits``), which ``db.events.writing`` tells.

On SQLite (the embedded default, one host) the relay works through Tortoise;
the database's write lock and the unique index on ``position`` keep numbering
gap-free even if two processes share the file.

Every ``heartbeat_seconds`` the holder publishes the newest position (``head``)
so a worker that missed a message (Redis restart, a dropped publish) notices
and reads it from the log; it also prunes events older than the retention
window, always keeping the newest one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from db.commits import Commits
from db.events import (
    ASSIGN,
    PRUNE,
    assign_positions,
    head_position,
    installation_key,
    numbered,
    prune,
)
from gateway import metrics
from gateway.ratelimit import raise_if_cancelled
from realtime.bus import EventBus
from realtime.outage import Outage
from realtime.tracing import batch_span

log = logging.getLogger("gateway.realtime")

CHANNEL_PREFIX = "gateway:events:"


def channel_for(installation: str) -> str:
    """The bus channel of one installation's change stream (a Redis may serve several)."""
    return CHANNEL_PREFIX + installation


NOTIFY_CHANNEL = "gateway_events"
# pg_try_advisory_lock key: "gwrelay" as a number, so it is unlikely to clash.
LOCK_KEY = 0x6777_7265_6C61_79
BATCH = 500


# Tortoise's pool options and the gateway's timeouts in DATABASE_URL; asyncpg would take
# them for server settings (the relay's connection gets its timeout as an argument).
_POOL_OPTIONS = {
    "minsize",
    "maxsize",
    "max_queries",
    "max_inactive_connection_lifetime",
    "connect_timeout",
    "command_timeout",
}


def asyncpg_dsn(url: str) -> str:
    """``DATABASE_URL`` without the pool options, for a connection of our own."""
    base, _, query = url.partition("?")
    kept = [p for p in query.split("&") if p and p.split("=", 1)[0] not in _POOL_OPTIONS]
    return base + ("?" + "&".join(kept) if kept else "")


def encode(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event, option=orjson.OPT_UTC_Z)


class Relay:
    def __init__(
        self,
        bus: EventBus,
        *,
        database_url: str,
        retention_seconds: int,
        takeover_seconds: float = 1.0,
        heartbeat_seconds: float = 1.0,
        poll_seconds: float = 1.0,
        commits: Commits | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        self.bus = bus
        self.database_url = database_url
        self.connect_timeout = connect_timeout
        self.retention = timedelta(seconds=retention_seconds)
        self.takeover_seconds = takeover_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.poll_seconds = poll_seconds
        self.leading = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.commits = commits
        self._last_prune = 0.0
        self.channel = ""
        # One log line when a dependency fails, one when it is back.
        self.database_outage = Outage(log, "change-log relay: database")
        self.bus_outage = Outage(log, "change-log relay: publishing to the bus")

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        """Start working (or standing by) in the background; never fails for a database outage."""
        self._task = asyncio.create_task(self._run(), name="change-log-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.leading = False

    @property
    def _postgres(self) -> bool:
        return self.database_url.startswith(("postgres://", "postgresql://"))

    async def _run(self) -> None:
        with self.commits.watching(self._wake) if self.commits else contextlib.nullcontext():
            await self._work()

    async def _work(self) -> None:
        while True:
            try:
                if not self.channel:
                    self.channel = channel_for(await installation_key())
                if self._postgres:
                    async with self._pg_leadership() as connection:
                        await self._lead(connection)
                else:
                    self.leading = True
                    await self._lead(None)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.database_outage.failed(error)
            self.leading = False
            await asyncio.sleep(self.takeover_seconds)

    @contextlib.asynccontextmanager
    async def _pg_leadership(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection holding the relay lock (waits, retrying, until it gets it)."""
        connection: asyncpg.Connection = await asyncpg.connect(
            asyncpg_dsn(self.database_url), timeout=self.connect_timeout
        )
        # Reached by standbys too: the database is back even if another worker leads.
        if self.database_outage.down:
            self.database_outage.succeeded()
        try:
            while True:
                if await connection.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
                    break
                await asyncio.sleep(self.takeover_seconds)
            await connection.add_listener(NOTIFY_CHANNEL, self._notified)
            self.leading = True
            log.info("this worker now runs the change-log relay")
            yield connection
        finally:
            self.leading = False
            with contextlib.suppress(Exception):
                await asyncio.shield(connection.close(timeout=2))

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def _lead(self, connection: asyncpg.Connection | None) -> None:
        last_beat = 0.0
        while True:
            # A library that swallows a cancellation (redis-py does, see realtime/bus.py)
            # must not keep the relay running past stop(): it would hold the lock and
            # keep its worker from shutting down.
            raise_if_cancelled()
            self._wake.clear()
            events = await self._number(connection)
            if self.database_outage.down:
                self.database_outage.succeeded()
            metrics.change_lag("relay", [event.get("occurred_at") for event in events])
            with batch_span(self.channel, events):  # linked to the writes (realtime/tracing.py)
                if await self._publish([encode(event) for event in events]):
                    metrics.relay_published(events)
            if len(events) == BATCH:
                continue
            now = time.monotonic()
            if now - last_beat >= self.heartbeat_seconds:
                last_beat = now
                await self._heartbeat(connection)
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a
            # cancellation that lands as the wake-up completes (a NOTIFY at SIGTERM),
            # and the relay then never stops.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()

    async def _number(self, connection: asyncpg.Connection | None) -> list[dict[str, Any]]:
        if connection is None:
            return await assign_positions(BATCH)
        return numbered([dict(row) for row in await connection.fetch(ASSIGN, BATCH)])

    async def _publish(self, payloads: list[bytes]) -> bool:
        """Whether ``payloads`` went out (the bus took them)."""
        if not payloads:  # nothing was tried: says nothing about the bus
            return False
        try:
            await self.bus.publish_many(self.channel, payloads)
        except Exception as error:
            # The event is numbered and kept: workers read it from the log when
            # the next heartbeat (or their reconnect) shows them the gap.
            self.bus_outage.failed(error)
            metrics.redis_error("relay")
            return False
        if self.bus_outage.down:
            self.bus_outage.succeeded()
        return True

    async def _heartbeat(self, connection: asyncpg.Connection | None) -> None:
        if connection is None:
            head = await head_position()
        else:
            head = int(await connection.fetchval("SELECT coalesce(max(position), 0) FROM events"))
        await self._publish([orjson.dumps({"head": head})])
        now = time.monotonic()
        if now - self._last_prune >= 60:
            self._last_prune = now
            removed = await self._prune(connection)
            if removed:
                log.info("pruned the change log", extra={"removed": removed})

    async def _prune(self, connection: asyncpg.Connection | None) -> int:
        before = datetime.now(UTC) - self.retention
        if connection is None:
            return await prune(before)
        status = await connection.execute(PRUNE, before)
        return int(status.split()[-1])
