"""Fixed-window failure counters: Redis when configured (shared by every worker),
in-process otherwise.

Sign-in counts failures only: a caller is refused once a key's failures in the
current minute reach its limit, so people who type their password right are never
slowed down by others behind the same address.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

WINDOW_SECONDS = 60


class RateLimiter:
    def __init__(self, redis: Redis | None = None, prefix: str = "gateway:rl:") -> None:
        self.redis = redis
        self.prefix = prefix
        self._counts: dict[str, tuple[int, int]] = {}

    @staticmethod
    def _window() -> int:
        return int(time.time()) // WINDOW_SECONDS

    async def count(self, key: str) -> int:
        """Failures counted for ``key`` in the current window."""
        window = self._window()
        if self.redis is not None:
            value = await self.redis.get(f"{self.prefix}{window}:{key}")
            return int(value or 0)
        seen_window, count = self._counts.get(key, (window, 0))
        return count if seen_window == window else 0

    async def exhausted(self, key: str, limit: int) -> bool:
        return await self.count(key) >= limit

    async def add(self, key: str) -> None:
        """Count one failure for ``key``."""
        window = self._window()
        if self.redis is not None:
            name = f"{self.prefix}{window}:{key}"
            if int(await self.redis.incr(name)) == 1:
                await self.redis.expire(name, WINDOW_SECONDS * 2)
            return
        seen_window, count = self._counts.get(key, (window, 0))
        self._counts[key] = (window, count + 1 if seen_window == window else 1)
        if len(self._counts) > 100_000:
            self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
