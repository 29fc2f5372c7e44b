"""The PostgreSQL backend: Tortoise's asyncpg client, tuned for the read path.

- No reset query on release. asyncpg's default runs ``SELECT
  pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`` after every query:
  one more round trip per read. The gateway never leaves session state on pooled
  connections (no SET, LISTEN, session advisory locks or cursors outside
  transactions; anything that needs them takes a dedicated connection), and
  asyncpg always rolls back an open transaction on release.
- Several reads in a row can share one acquired connection (``pinned``): a page
  and the relations looked ahead for it take the pool and the gate once.
- A fair gate in front of the pool for reads. ``asyncio.Queue``, which asyncpg's
  pool waits on, lets a newcomer take a connection that was just handed to a
  waiter, and the waiter goes back to the end of the line: under load some requests
  starved (p99 several times the median). A FIFO semaphore sized like the pool
  serves them in arrival order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to reset: see the module docstring."""


class GatewayAsyncpgClient(AsyncpgDBClient):
    _gate: asyncio.Semaphore | None = None

    async def create_pool(self, **kwargs: Any) -> asyncpg.Pool:
        self._gate = asyncio.Semaphore(int(kwargs.get("max_size") or 10))
        return await asyncpg.create_pool(None, reset=_keep_session, **kwargs)

    @property
    def ready(self) -> bool:
        return self._pool is not None and self._gate is not None

    async def fetch_dicts(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """Run one read on a pooled connection, waiting in line for it."""
        assert self._pool is not None
        assert self._gate is not None
        async with self._gate:
            return list(map(dict, await self._pool.fetch(sql, *params)))

    @asynccontextmanager
    async def pinned(self) -> AsyncIterator[asyncpg.Connection]:
        """One pooled connection for several reads in a row (``db.sql.one_connection``)."""
        assert self._pool is not None
        assert self._gate is not None
        async with self._gate, self._pool.acquire() as connection:
            yield connection

    async def fetch_column(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Like ``fetch_dicts``, for the first column only."""
        assert self._pool is not None
        assert self._gate is not None
        async with self._gate:
            return [record[0] for record in await self._pool.fetch(sql, *params)]


client_class = GatewayAsyncpgClient
