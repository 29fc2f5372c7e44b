"""Automatic persisted queries (Apollo's APQ protocol).

A client sends ``extensions.persistedQuery = {"version": 1, "sha256Hash": h}``
without the query; if the server knows ``h`` it runs the stored document,
otherwise it answers ``PERSISTED_QUERY_NOT_FOUND`` and the client retries with
the query and the hash, which the server checks and stores. Documents live in
Redis when configured (shared by every worker and host, kept ``TTL_SECONDS``),
in a bounded in-process map otherwise. Hash-only requests make GETs cacheable.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from db.errors import DomainError, InvalidArgument

if TYPE_CHECKING:
    from redis.asyncio import Redis

TTL_SECONDS = 7 * 24 * 3600
MEMORY_ENTRIES = 10_000
PREFIX = "gateway:apq:"


class PersistedQueryNotFound(DomainError):
    code = "PERSISTED_QUERY_NOT_FOUND"
    status = 200  # a GraphQL error the client answers by resending with the query


class PersistedQueries:
    def __init__(self, redis: Redis | None = None) -> None:
        self.redis = redis
        self._memory: OrderedDict[str, str] = OrderedDict()

    async def resolve(self, query: Any, extensions: Any) -> Any:
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
        if not isinstance(digest, str) or len(digest) != 64:
            raise InvalidArgument("extensions.persistedQuery.sha256Hash: a hex SHA-256 expected")
        digest = digest.lower()
        if query is None:
            stored = await self._get(digest)
            if stored is None:
                raise PersistedQueryNotFound("PersistedQueryNotFound")
            return stored
        if not isinstance(query, str):
            return query  # the request check reports it
        if hashlib.sha256(query.encode()).hexdigest() != digest:
            raise InvalidArgument("extensions.persistedQuery: provided sha does not match query")
        await self._put(digest, query)
        return query

    async def _get(self, digest: str) -> str | None:
        if self.redis is not None:
            value = await self.redis.get(PREFIX + digest)
            return value.decode() if isinstance(value, bytes) else value
        found = self._memory.get(digest)
        if found is not None:
            self._memory.move_to_end(digest)
        return found

    async def _put(self, digest: str, query: str) -> None:
        if self.redis is not None:
            await self.redis.set(PREFIX + digest, query, ex=TTL_SECONDS)
            return
        self._memory[digest] = query
        self._memory.move_to_end(digest)
        while len(self._memory) > MEMORY_ENTRIES:
            self._memory.popitem(last=False)
