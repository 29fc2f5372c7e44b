"""The PostgreSQL backend: Tortoise's asyncpg client, tuned for the read path.

- No reset query on release. asyncpg's default runs ``SELECT
  pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`` after every query:
  one more round trip per read. The gateway never leaves session state on pooled
  connections (no SET, LISTEN, session advisory locks or cursors outside
  transactions; anything that needs them takes a dedicated connection), and
  asyncpg always rolls back an open transaction on release.
- Several reads in a row can share one acquired connection (``pinned``): a page
  and the relations looked ahead for it take the pool and the gate once.
- Bounded waits (``connect_timeout``, ``command_timeout`` in the URL, from
  ``DATABASE_CONNECT_TIMEOUT_SECONDS`` and ``DATABASE_STATEMENT_TIMEOUT_SECONDS``):
  asyncpg waits 60 s to connect and for ever for an answer, so a database behind a
  network that drops packets held every request. With the bounds, the driver's
  error comes soon and ``gateway.errors`` answers 503 ``DATABASE_UNAVAILABLE``.
- Fail fast while the database is away (``_Pool``): after a connection could not
  be opened, the others waiting would each wait for their own attempt (up to the
  connect timeout each, in line behind the gate); instead they fail at once, and
  one acquire at a time tries again every ``AWAY_RETRY_SECONDS``.
- A fair gate in front of the pool for reads. ``asyncio.Queue``, which asyncpg's
  pool waits on, lets a newcomer take a connection that was just handed to a
  waiter, and the waiter goes back to the end of the line: under load some requests
  starved (p99 several times the median). A FIFO semaphore sized like the pool
  serves them in arrival order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import (
    NestedTransactionContext,
    TransactionContext,
    TransactionContextPooled,
)
from tortoise.exceptions import DBConnectionError

from db import tracing
from db.commits import Commits


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to reset: see the module docstring."""


def _usable(connection: Any) -> bool:
    """Whether a pool connection we hold is still open (asyncpg detaches dead ones)."""
    try:
        return not connection.is_closed()
    except asyncpg.InterfaceError:
        return False


def _take_kept(kept: list[Any]) -> Any:
    """The last kept connection that is still open, or None."""
    while kept:
        candidate = kept.pop()
        if _usable(candidate):
            return candidate
        # else: its connection died while kept; asyncpg gave the slot back
    return None


class PoolWaits:
    """Acquires that found no connection free and had to wait, in this process: at the
    reads' gate or in the pool (``gateway_db_pool_waits_total`` reads it)."""

    count = 0


# While the database is away, one acquire tries to connect this often; the others fail.
AWAY_RETRY_SECONDS = 0.25


class _Pool(asyncpg.Pool):  # type: ignore[misc]  # asyncpg is untyped
    """asyncpg's pool, failing fast while the database is known to be away.

    Every acquire goes through ``_acquire`` (Tortoise's ORM calls and transactions,
    the gateway's reads, the readiness probe). While the database answers, the
    override costs one attribute test. Once opening a connection failed, acquires
    fail at once with ``DBConnectionError`` (503 at the doors) until
    ``AWAY_RETRY_SECONDS`` have passed; then one of them tries again (the others
    still fail), and its success ends the outage.
    """

    __slots__ = ("_away_until", "_probing")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._away_until = 0.0
        self._probing = False

    async def _acquire(self, timeout: float | None) -> Any:  # noqa: ASYNC109 (asyncpg's)
        if self._away_until:
            return await self._acquire_while_away(timeout)
        if self._queue.empty():
            PoolWaits.count += 1
        try:
            return await super()._acquire(timeout)
        except Exception:
            self._away_until = time.monotonic() + AWAY_RETRY_SECONDS
            raise

    async def _acquire_while_away(self, timeout: float | None) -> Any:  # noqa: ASYNC109
        if self._probing or time.monotonic() < self._away_until:
            raise DBConnectionError("the database did not answer a moment ago")
        self._probing = True
        try:
            connection = await super()._acquire(timeout)
        except Exception:
            self._away_until = time.monotonic() + AWAY_RETRY_SECONDS
            raise
        finally:
            self._probing = False
        self._away_until = 0.0
        return connection


async def _create_pool(**kwargs: Any) -> asyncpg.Pool:
    """``asyncpg.create_pool``, making a ``_Pool`` (with create_pool's defaults)."""
    kwargs.setdefault("max_queries", 50000)
    kwargs.setdefault("max_inactive_connection_lifetime", 300.0)
    kwargs.setdefault("loop", None)
    kwargs.setdefault("connection_class", asyncpg.Connection)
    kwargs.setdefault("record_class", asyncpg.Record)
    pool: asyncpg.Pool = await _Pool(None, **kwargs)
    return pool


class GatewayTransactionWrapper(tracing.TracedStatements, TransactionWrapper):
    """A transaction's client, its statements traced (``db.tracing``), savepoints too."""

    def _in_transaction(self) -> TransactionContext:
        return NestedTransactionContext(GatewayTransactionWrapper(self))


class GatewayAsyncpgClient(tracing.TracedStatements, AsyncpgDBClient):
    _gate: asyncio.Semaphore | None = None
    _kept: list[Any]
    _keep_at_most = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commits = Commits()  # told in process; other processes hear the NOTIFY

    async def create_pool(self, **kwargs: Any) -> asyncpg.Pool:
        connect_timeout = kwargs.pop("connect_timeout", None)
        if connect_timeout is not None:  # asyncpg's name for it; Tortoise's URL casts to int
            kwargs["timeout"] = float(connect_timeout)
        if kwargs.get("command_timeout") is not None:
            kwargs["command_timeout"] = float(kwargs["command_timeout"])
        size = int(kwargs.get("max_size") or 10)
        self._gate = asyncio.Semaphore(size)
        self._kept = []
        self._keep_at_most = max(1, size // 2)
        return await _create_pool(reset=_keep_session, **kwargs)

    def _in_transaction(self) -> TransactionContext:
        return TransactionContextPooled(GatewayTransactionWrapper(self), self._pool_init_lock)

    @property
    def ready(self) -> bool:
        return self._pool is not None and self._gate is not None

    @asynccontextmanager
    async def _reader(self) -> AsyncIterator[Any]:
        """A pooled connection for reads, in line behind the gate.

        A read that went well keeps its connection for the next one (at most half
        the pool, so writes always find the rest free): handing a connection back
        to asyncpg's pool and taking one out again cost more CPU than a short
        read itself. After an error or a cancellation the connection goes back to
        the pool, which knows how to clean it up.
        """
        assert self._pool is not None
        assert self._gate is not None
        if self._gate.locked():
            PoolWaits.count += 1
        async with self._gate:
            kept = self._kept
            connection = _take_kept(kept) or await self._pool.acquire()
            try:
                yield connection
            except BaseException:
                await self._pool.release(connection)
                raise
            if not self._keep(connection, kept):
                await self._pool.release(connection)

    def _keep(self, connection: Any, kept: list[Any]) -> bool:
        if len(kept) < self._keep_at_most and _usable(connection):
            kept.append(connection)
            return True
        return False

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """One read, as ``_reader`` runs it, without a context manager around it: a
        single read is the hot path, and the generator-based manager cost more
        than the bookkeeping inside it."""
        assert self._pool is not None
        gate = self._gate
        assert gate is not None
        if gate.locked():
            PoolWaits.count += 1
        await gate.acquire()
        try:
            kept = self._kept
            connection = _take_kept(kept) or await self._pool.acquire()
            try:
                records: list[Any] = await connection.fetch(sql, *params)
            except BaseException:
                await self._pool.release(connection)
                raise
            if not self._keep(connection, kept):
                await self._pool.release(connection)
            return records
        finally:
            gate.release()

    def _read(self, sql: str, params: Sequence[Any]) -> Awaitable[list[Any]]:
        """``_fetch``, in a statement span while tracing is on (``db.tracing``)."""
        if tracing.tracer is None:
            return self._fetch(sql, params)
        return tracing.traced_statement(self._fetch(sql, params), sql, "postgres")

    async def _give_back_kept(self) -> None:
        kept, self._kept = getattr(self, "_kept", []), []
        if self._pool is not None:
            for connection in kept:
                await self._pool.release(connection)

    async def _expire_connections(self) -> None:
        await self._give_back_kept()
        await super()._expire_connections()

    async def _close(self) -> None:
        await self._give_back_kept()
        await super()._close()

    async def fetch_dicts(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """Run one read on a pooled connection, waiting in line for it."""
        return list(map(dict, await self._read(sql, params)))

    @asynccontextmanager
    async def pinned(self) -> AsyncIterator[asyncpg.Connection]:
        """One pooled connection for several reads in a row (``db.sql.one_connection``)."""
        async with self._reader() as connection:
            yield connection

    async def fetch_column(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Like ``fetch_dicts``, for the first column only."""
        return [record[0] for record in await self._read(sql, params)]


client_class = GatewayAsyncpgClient
