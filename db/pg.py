"""The PostgreSQL backend: Tortoise's asyncpg client with a lighter pool reset.

asyncpg's default release runs ``SELECT pg_advisory_unlock_all(); CLOSE ALL;
UNLISTEN *; RESET ALL`` after every query: one more round trip per read. The
gateway never leaves session state on pooled connections (no SET, LISTEN,
session advisory locks or cursors outside transactions; anything that needs them
takes a dedicated connection), so release only rolls back an open transaction,
which asyncpg always does.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to reset: see the module docstring."""


class GatewayAsyncpgClient(AsyncpgDBClient):
    async def create_pool(self, **kwargs: Any) -> asyncpg.Pool:
        return await asyncpg.create_pool(None, reset=_keep_session, **kwargs)


client_class = GatewayAsyncpgClient
