"""A fixed-window attempt counter: Redis when configured (shared by every worker),
in-process otherwise."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

WINDOW_SECONDS = 60


class RateLimiter:
    def __init__(self, limit: int, redis: Redis | None = None, prefix: str = "gateway:rl:") -> None:
        self.limit = limit
        self.redis = redis
        self.prefix = prefix
        self._counts: dict[str, tuple[int, int]] = {}

    async def hit(self, key: str) -> bool:
        """Count one attempt for ``key``; False once the window's limit is passed."""
        window = int(time.time()) // WINDOW_SECONDS
        if self.redis is not None:
            name = f"{self.prefix}{window}:{key}"
            count = int(await self.redis.incr(name))
            if count == 1:
                await self.redis.expire(name, WINDOW_SECONDS * 2)
            return count <= self.limit
        seen_window, count = self._counts.get(key, (window, 0))
        count = count + 1 if seen_window == window else 1
        self._counts[key] = (window, count)
        if len(self._counts) > 100_000:
            self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
        return count <= self.limit
