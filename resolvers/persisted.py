"""Automatic persisted queries (Apollo's APQ protocol), kept per organization.

A client sends ``extensions.persistedQuery = {"version": 1, "sha256Hash": h}``
without the query; if the server knows ``h`` it runs the stored document,
otherwise it answers ``PERSISTED_QUERY_NOT_FOUND`` and the client retries with
the query and the hash, which the server checks and stores. Hash-only requests
make GETs cacheable.

Each organization has its own store (one tenant's documents are never another's),
bounded in bytes (``GRAPHQL_PERSISTED_QUERY_BYTES``, least recently used out) and
in time (``GRAPHQL_PERSISTED_QUERY_TTL_SECONDS``). Documents above
``MAX_DOCUMENT_BYTES`` run but are not stored: the client keeps sending them in
full. With Redis every worker and host shares the stores: a hash of documents and
a sorted set of last uses per organization, kept within the budget by one Lua
script; without Redis each worker keeps its own, within the same budgets plus
``MEMORY_TOTAL_BYTES`` for all organizations together.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from db.errors import DomainError, InvalidArgument
from gateway import metrics

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("gateway.graphql")

MAX_DOCUMENT_BYTES = 16_384
MEMORY_TOTAL_BYTES = 16 * 1024 * 1024
ENTRY_OVERHEAD = 200  # digest, bookkeeping
PREFIX = "gateway:apq:"

# KEYS: documents hash, last-use sorted set. ARGV: digest, query, now, budget, ttl.
# The hash's field "#bytes" (never a hex digest) keeps the organization's total;
# the least recently used documents leave first, and any unused for ``ttl``.
_PUT = """
local docs, uses = KEYS[1], KEYS[2]
local digest, query = ARGV[1], ARGV[2]
local now, budget, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local total = tonumber(redis.call('HGET', docs, '#bytes') or '0')
if redis.call('HEXISTS', docs, digest) == 0 then
  redis.call('HSET', docs, digest, query)
  total = redis.call('HINCRBY', docs, '#bytes', #query + 200)
end
redis.call('ZADD', uses, now, digest)
while true do
  local oldest = redis.call('ZRANGE', uses, 0, 0, 'WITHSCORES')
  if #oldest == 0 then break end
  if total <= budget and tonumber(oldest[2]) >= now - ttl then break end
  redis.call('ZREM', uses, oldest[1])
  local size = redis.call('HSTRLEN', docs, oldest[1])
  redis.call('HDEL', docs, oldest[1])
  total = redis.call('HINCRBY', docs, '#bytes', -(size + 200))
end
redis.call('EXPIRE', docs, ttl)
redis.call('EXPIRE', uses, ttl)
return total
"""
# KEYS: documents hash, last-use sorted set. ARGV: digest, now, ttl.
_GET = """
local used = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not used or tonumber(used) < tonumber(ARGV[2]) - tonumber(ARGV[3]) then return false end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return redis.call('HGET', KEYS[1], ARGV[1])
"""


class PersistedQueryNotFound(DomainError):
    code = "PERSISTED_QUERY_NOT_FOUND"
    status = 200  # a GraphQL error the client answers by resending with the query


class PersistedQueries:
    def __init__(
        self,
        redis: Redis | None = None,
        *,
        budget_bytes: int = 2 * 1024 * 1024,
        ttl_seconds: float = 7 * 86_400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.budget_bytes = budget_bytes
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        # (organization, digest) -> (query, last use), least recently used first.
        self._memory: OrderedDict[tuple[int, str], tuple[str, float]] = OrderedDict()
        self._bytes: dict[int, int] = {}
        self.memory_bytes = 0
        if redis is not None:
            self._put_script = redis.register_script(_PUT)
            self._get_script = redis.register_script(_GET)

    async def resolve(self, organization_id: int, query: Any, extensions: Any) -> Any:
        """The document to run: ``query`` itself, or the one stored under its hash."""
        if extensions is None:
            return query
        if not isinstance(extensions, dict):
            raise InvalidArgument("extensions: must be a JSON object")
        if "persistedQuery" not in extensions:
            return query
        persisted = extensions["persistedQuery"]
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            raise InvalidArgument("extensions.persistedQuery: only version 1 is supported")
        digest = persisted.get("sha256Hash")
        if (
            not isinstance(digest, str)
            or len(digest) != 64
            or not all(c in "0123456789abcdefABCDEF" for c in digest)
        ):
            raise InvalidArgument("extensions.persistedQuery.sha256Hash: a hex SHA-256 expected")
        digest = digest.lower()
        if query is None:
            stored = await self._get(organization_id, digest)
            metrics.cache_lookup("persisted_queries", stored is not None)
            if stored is None:
                raise PersistedQueryNotFound("PersistedQueryNotFound")
            return stored
        if not isinstance(query, str):
            return query  # the request check reports it
        encoded = query.encode("utf-8", "surrogatepass")
        if hashlib.sha256(encoded).hexdigest() != digest:
            raise InvalidArgument("extensions.persistedQuery: provided sha does not match query")
        if (
            len(encoded) <= MAX_DOCUMENT_BYTES
            and ENTRY_OVERHEAD + len(encoded) <= self.budget_bytes
        ):
            await self._put(organization_id, digest, query, len(encoded))
        return query

    # -- storage ---------------------------------------------------------------------

    @staticmethod
    def _keys(organization_id: int) -> list[str]:
        return [f"{PREFIX}{organization_id}:docs", f"{PREFIX}{organization_id}:uses"]

    async def _get(self, organization_id: int, digest: str) -> str | None:
        now = self.clock()
        if self.redis is not None:
            try:
                value = await self._get_script(
                    keys=self._keys(organization_id), args=[digest, now, self.ttl_seconds]
                )
            except RedisError:
                metrics.redis_error("persisted_queries")
                metrics.redis_fallback("persisted_queries", True)
                log.warning("persisted queries: Redis is unavailable; using this worker's store")
            else:
                metrics.redis_fallback("persisted_queries", False)
                if value is None:
                    return self._memory_get(organization_id, digest, now)
                return value.decode() if isinstance(value, bytes) else str(value)
        return self._memory_get(organization_id, digest, now)

    async def _put(self, organization_id: int, digest: str, query: str, size: int) -> None:
        now = self.clock()
        if self.redis is not None:
            try:
                await self._put_script(
                    keys=self._keys(organization_id),
                    args=[digest, query, now, self.budget_bytes, int(self.ttl_seconds)],
                )
                metrics.redis_fallback("persisted_queries", False)
                return
            except RedisError:
                metrics.redis_error("persisted_queries")
                metrics.redis_fallback("persisted_queries", True)
                log.warning("persisted queries: Redis is unavailable; using this worker's store")
        self._memory_put(organization_id, digest, query, size, now)

    def _memory_get(self, organization_id: int, digest: str, now: float) -> str | None:
        key = (organization_id, digest)
        found = self._memory.get(key)
        if found is None:
            return None
        query, used = found
        if now - used > self.ttl_seconds:
            self._evict(key)
            return None
        self._memory[key] = (query, now)
        self._memory.move_to_end(key)
        return query

    def _memory_put(
        self, organization_id: int, digest: str, query: str, size: int, now: float
    ) -> None:
        key = (organization_id, digest)
        if key in self._memory:
            self._memory[key] = (self._memory[key][0], now)
            self._memory.move_to_end(key)
            return
        cost = ENTRY_OVERHEAD + size
        self._memory[key] = (query, now)
        self._bytes[organization_id] = self._bytes.get(organization_id, 0) + cost
        self.memory_bytes += cost
        # This organization's oldest first, then anyone's oldest for the worker's total.
        if self._bytes[organization_id] > self.budget_bytes:
            for candidate in [k for k in self._memory if k[0] == organization_id]:
                if self._bytes.get(organization_id, 0) <= self.budget_bytes:
                    break
                self._evict(candidate)
        while self.memory_bytes > MEMORY_TOTAL_BYTES and self._memory:
            self._evict(next(iter(self._memory)))

    def _evict(self, key: tuple[int, str]) -> None:
        query, _ = self._memory.pop(key)
        cost = ENTRY_OVERHEAD + len(query.encode("utf-8", "surrogatepass"))
        remaining = self._bytes.get(key[0], 0) - cost
        if remaining > 0:
            self._bytes[key[0]] = remaining
        else:
            self._bytes.pop(key[0], None)
        self.memory_bytes -= cost
