"""Hand-built SQL for the read paths, on the connection Tortoise manages.

Reads are the hot path: building them through the ORM's query builder cost
more than the database round trip (see ops/bench/RESULTS.md). Statements are
written once with ``$n`` placeholders (PostgreSQL's form) and rewritten to
``?`` for SQLite; ``connections.get`` returns the transaction's connection
inside ``in_transaction()``, so reads in a write see that write.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import lru_cache
from typing import Any

import asyncpg
import orjson
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.context import require_context

from db import tracing
from db.pg import GatewayAsyncpgClient

_PLACEHOLDER = re.compile(r"\$(\d+)")


class Params:
    """Collects bind values; calling it with a value returns its placeholder."""

    __slots__ = ("values",)

    def __init__(self, *initial: Any) -> None:
        self.values: list[Any] = list(initial)

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"

    def many(self, values: Sequence[Any]) -> str:
        return ", ".join(self(v) for v in values)

    def among(self, column: str, ids: Sequence[int]) -> str:
        """``column`` is one of the integer ``ids``.

        PostgreSQL gets one array parameter, so the statement text (and asyncpg's
        prepared statement) is the same whatever the count; SQLite gets a list.
        """
        if dialect() == "postgres":
            return f"{column} = ANY({self(list(ids))}::int[])"
        return f"{column} IN ({self.many(ids)})"


def client() -> BaseDBAsyncClient:
    """The current ``default`` connection (a transaction's, inside one).

    What ``tortoise.connections.get("default")`` returns, through the context as
    Tortoise advises: its module-level proxy imports and looks up the context on
    every call (2 µs; a single-row read asked twice).
    """
    return require_context().connections.get("default")


def dialect() -> str:
    """``postgres`` or ``sqlite``."""
    name: str = client().capabilities.dialect
    return name


@lru_cache(maxsize=512)
def _qmark(sql: str) -> tuple[str, tuple[int, ...]]:
    order = tuple(int(n) - 1 for n in _PLACEHOLDER.findall(sql))
    return _PLACEHOLDER.sub("?", sql), order


def pg_json_time(column: str) -> str:
    """PostgreSQL expression writing a timestamptz as orjson does with ``OPT_UTC_Z``.

    ``2024-08-24T02:40:00Z`` on a whole second, ``2024-08-24T02:40:00.511048Z``
    otherwise (orjson leaves out a zero fraction and never trims one).
    """
    utc = f"{column} AT TIME ZONE 'UTC'"
    return (
        f"CASE WHEN date_trunc('second', {column}) = {column} "
        f"""THEN to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') """
        f"""ELSE to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END"""
    )


_PINNED: ContextVar[asyncpg.Connection | None] = ContextVar("gateway_pinned_reads", default=None)


@asynccontextmanager
async def one_connection() -> AsyncIterator[None]:
    """Run the reads (``select``) inside on one pooled connection, taken once.

    For read-only paths that run several statements in a row (a page and the
    relations it needs). PostgreSQL outside a transaction only: elsewhere, and
    when already inside, nothing changes. Inside: no concurrent reads (one
    connection runs one statement at a time), no writes, and nothing that takes
    a connection of its own (an ORM query): with every connection held this way,
    that would wait for ever.
    """
    conn = client() if _PINNED.get() is None else None
    if not (isinstance(conn, GatewayAsyncpgClient) and conn.ready):
        yield
        return
    async with conn.pinned() as connection:
        token = _PINNED.set(connection)
        try:
            yield
        finally:
            _PINNED.reset(token)


async def select_json(sql: str, params: Sequence[Any] = ()) -> list[str] | None:
    """PostgreSQL: run a SELECT of one text column (JSON built by the database).

    None, without running it, on another dialect.
    """
    conn = client()
    if isinstance(conn, GatewayAsyncpgClient) and conn.ready:
        return await conn.fetch_column(sql, params)
    if conn.capabilities.dialect != "postgres":
        return None
    _, records = await conn.execute_query(sql, list(params))
    return [record[0] for record in records]


async def select(
    sql: str,
    params: Sequence[Any] = (),
    *,
    datetimes: Collection[str] = (),
    json: Collection[str] = (),
) -> list[dict[str, Any]]:
    """Run a SELECT and return dict rows, decoding ``datetimes`` and ``json`` columns."""
    pinned = _PINNED.get()
    if pinned is not None:
        fetched = pinned.fetch(sql, *params)
        if tracing.tracer is not None:
            fetched = tracing.traced_statement(fetched, sql, "postgres")
        return _decode(list(map(dict, await fetched)), json)
    conn = client()
    if isinstance(conn, GatewayAsyncpgClient) and conn.ready:
        # Outside a transaction: straight to asyncpg's pool, skipping the client's
        # per-call wrappers (a measurable share of a single-row read).
        rows: list[dict[str, Any]] = await conn.fetch_dicts(sql, params)
    elif conn.capabilities.dialect == "sqlite":
        text, order = _qmark(sql)
        rows = await conn.execute_query_dict(text, [params[i] for i in order])
        if datetimes:
            for row in rows:
                for column in datetimes:
                    value = row.get(column)
                    if isinstance(value, str):
                        row[column] = datetime.fromisoformat(value)
    else:
        rows = await conn.execute_query_dict(sql, list(params))
    return _decode(rows, json)


def _decode(rows: list[dict[str, Any]], json: Collection[str]) -> list[dict[str, Any]]:
    if json:
        for row in rows:
            for column in json:
                value = row.get(column)
                if isinstance(value, str | bytes):
                    row[column] = orjson.loads(value)
    return rows
