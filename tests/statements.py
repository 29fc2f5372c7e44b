"""Counting the read statements that reach the database, for "no N+1" proofs.

The count is taken at the driver, below everything the gateway does: asyncpg's
``Connection.fetch`` (every read on PostgreSQL, pooled, pinned or in a transaction)
and aiosqlite's ``Connection.execute_fetchall`` (every read through Tortoise on
SQLite). Statements run by the worker's background tasks (the change stream, the
relay, the revocation sweeper, the webhook dispatcher and its endpoints' workers: they
read at times of their own) are left out, known by the names the gateway gives those
tasks.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiosqlite
import asyncpg
import pytest

_READ = re.compile(r"(SELECT|WITH)\b", re.IGNORECASE)
BACKGROUND_TASKS = frozenset(
    {
        "change-stream",
        "change-log-relay",
        "realtime-start",
        "denylist-sweeper",
        "denylist-follower",
        "denylist-notices",
        "signing-key-reload",
        "event-bus-reader",
        "start-when-migrated",
        "webhook-dispatcher",
        "webhook-dispatcher-follow",
    }
)
BACKGROUND_PREFIXES = ("webhook-endpoint-",)  # one delivery task per endpoint


class Reads:
    """The read statements run since ``counting_reads`` began, in order."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)

    def seen(self, sql: object) -> None:
        text = str(sql).lstrip()
        task = asyncio.current_task()
        if _READ.match(text) and (task is None or not _background(task.get_name())):
            self.statements.append(text)


def _background(name: str) -> bool:
    return name in BACKGROUND_TASKS or name.startswith(BACKGROUND_PREFIXES)


@contextmanager
def counting_reads() -> Iterator[Reads]:
    """Count the reads run inside the block, on either backend."""
    reads = Reads()
    fetch = asyncpg.connection.Connection.fetch
    fetchall = aiosqlite.Connection.execute_fetchall

    async def counted_fetch(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        reads.seen(query)
        return await fetch(self, query, *args, **kwargs)

    async def counted_fetchall(self: Any, sql: str, *args: Any, **kwargs: Any) -> Any:
        reads.seen(sql)
        return await fetchall(self, sql, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(asyncpg.connection.Connection, "fetch", counted_fetch)
        patch.setattr(aiosqlite.Connection, "execute_fetchall", counted_fetchall)
        yield reads
