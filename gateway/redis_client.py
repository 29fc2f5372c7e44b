"""The worker's Redis client (rate limits, stream tickets, revocation notices).

A pooled connection that Redis closed (a restart, an idle timeout) fails the first
command sent on it. Given a pool, redis-py keeps the pool's retry policy, and
``from_url`` gives none, so that first command would fail the request that sent it.
The client therefore retries connection errors and timeouts a few times on a fresh
connection, with a short jittered backoff: the first request after a restart
succeeds, and a Redis that is really away fails in about a second, not a minute.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

RETRIES = 3
BACKOFF_BASE_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 0.5
CONNECT_TIMEOUT_SECONDS = 2.0
# A burst waits this long for a pooled connection instead of failing past the pool's size.
POOL_WAIT_SECONDS = 5


def redis_client(url: str) -> Redis:
    """A client for ``url`` that connects lazily and reconnects on its own; closing it
    closes its connections (it owns its pool)."""
    pool = BlockingConnectionPool.from_url(
        url,
        timeout=POOL_WAIT_SECONDS,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        retry=Retry(
            ExponentialWithJitterBackoff(base=BACKOFF_BASE_SECONDS, cap=BACKOFF_CAP_SECONDS),
            RETRIES,
        ),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return Redis.from_pool(pool)
