"""Exit 0 when the test PostgreSQL and Redis answer, else print why and exit 1."""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg
from redis.asyncio import Redis


async def main() -> int:
    pg = os.environ["TEST_POSTGRES_URL"].replace("postgres://", "postgresql://", 1)
    problems = []
    try:
        conn = await asyncpg.connect(pg, timeout=5)
        await conn.close()
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        problems.append(f"PostgreSQL at {pg}: {exc}")
    redis = Redis.from_url(os.environ["TEST_REDIS_URL"], socket_connect_timeout=5)
    try:
        await redis.ping()
    except Exception as exc:
        problems.append(f"Redis at {os.environ['TEST_REDIS_URL']}: {exc}")
    finally:
        await redis.aclose()
    for problem in problems:
        print(f"unreachable: {problem}", file=sys.stderr)
    return 1 if problems else 0


sys.exit(asyncio.run(main()))
