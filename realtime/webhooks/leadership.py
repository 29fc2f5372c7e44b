"""One dispatcher per installation: a lock held for as long as this process leads.

PostgreSQL: a session advisory lock on a connection of the dispatcher's own (as the
relay does, realtime/relay.py, with another key). When the holder's process dies its
connection closes and PostgreSQL releases the lock; a standby retrying every
``takeover_seconds`` takes over. ``Lease.check`` runs a statement on that connection,
so a lost connection (and with it the lock) ends the lead.

SQLite (one host): an exclusive ``flock`` on a file beside the database file; the
kernel releases it when the holder's process dies. A database in memory has no
file and no second process: nothing to lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

from realtime.relay import asyncpg_dsn

# pg_try_advisory_lock key: "gwhooks" as a number (the relay's is "gwrelay").
LOCK_KEY = 0x6777_686F_6F6B_73


class Lease:
    """Proof of leadership while inside ``lead``."""

    def __init__(self, connection: asyncpg.Connection | None) -> None:
        self.connection = connection

    async def check(self) -> None:
        """Raise when the lock may have been lost (its connection is gone)."""
        if self.connection is not None:
            await self.connection.fetchval("SELECT 1")


def lock_path(database_url: str) -> Path | None:
    """The lock file beside a SQLite database (None for one in memory)."""
    path = database_url.split("://", 1)[1]
    if not path or path.startswith(":memory:"):
        return None
    return Path(path + ".webhooks.lock")


@contextlib.asynccontextmanager
async def lead(
    database_url: str, *, takeover_seconds: float, connect_timeout: float
) -> AsyncIterator[Lease]:
    """Wait (retrying) until this process holds the dispatcher lock; hold it inside."""
    if database_url.startswith(("postgres://", "postgresql://", "asyncpg://")):
        dsn = asyncpg_dsn(database_url.replace("asyncpg://", "postgresql://", 1))
        connection: asyncpg.Connection = await asyncpg.connect(dsn, timeout=connect_timeout)
        try:
            while True:
                if await connection.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
                    break
                await asyncio.sleep(takeover_seconds)
            yield Lease(connection)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(connection.close(timeout=2))
        return
    path = lock_path(database_url)
    if path is None:
        yield Lease(None)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(takeover_seconds)
        yield Lease(None)
    finally:
        os.close(fd)  # releases the lock
