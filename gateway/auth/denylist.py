"""Revoked access tokens: their ``jti`` is denied until the token would expire.

Every worker keeps the set in memory, so the check on each request costs a dict
lookup. With Redis, a revocation is also stored there (``SET`` with the token's
remaining lifetime: a worker that starts later loads it) and published, so every
worker on every host learns it at once. On the embedded default the set lives in
this process only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("gateway.auth")

KEY_PREFIX = "gateway:revoked:"
CHANNEL = "gateway:revocations"
# Verification accepts a token up to ``tokens.LEEWAY`` (30 s of clock skew) past its
# ``exp``: a revocation is kept longer than that, or the token would be accepted again.
KEPT_PAST_EXPIRY = 60.0


class Denylist:
    def __init__(self) -> None:
        self._denied: dict[str, float] = {}
        self._redis: Redis | None = None
        self._listener: asyncio.Task[None] | None = None
        self._callbacks: list[Callable[[str], None]] = []

    def on_deny(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(jti)`` whenever a credential is denied here or on another worker."""
        self._callbacks.append(callback)

    def __contains__(self, jti: str) -> bool:
        expires = self._denied.get(jti)
        if expires is None:
            return False
        if expires < time.time():
            self._denied.pop(jti, None)
            return False
        return True

    def _remember(self, jti: str, expires_at: float) -> None:
        self._denied[jti] = expires_at
        for callback in self._callbacks:
            try:
                callback(jti)
            except Exception:
                log.exception("a revocation callback failed")

    async def start(self, redis: Redis | None) -> None:
        """Load what Redis holds and follow new revocations (no-op without Redis)."""
        self._redis = redis
        if redis is None:
            return
        pubsub = redis.pubsub()
        await pubsub.subscribe(CHANNEL)
        async for key in redis.scan_iter(match=f"{KEY_PREFIX}*", count=1000):
            ttl = await redis.ttl(key)
            if ttl > 0:
                name = key.decode() if isinstance(key, bytes) else key
                self._remember(name.removeprefix(KEY_PREFIX), time.time() + ttl)
        self._listener = asyncio.create_task(self._follow(pubsub), name="denylist-follower")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    async def _follow(self, pubsub: object) -> None:
        while True:
            try:
                async for message in pubsub.listen():  # type: ignore[attr-defined]
                    if message.get("type") != "message":
                        continue
                    data = message["data"]
                    jti, _, expires = (
                        data.decode() if isinstance(data, bytes) else data
                    ).partition(" ")
                    self._remember(jti, float(expires))
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis went away: retry; revocations also wait in Redis keys
                log.warning("revocation listener lost Redis; retrying", exc_info=True)
                await asyncio.sleep(1.0)

    async def deny(self, jti: str, expires_at: float) -> None:
        """Deny ``jti``, a token that expires at ``expires_at`` (epoch seconds), on every
        worker for as long as verification could accept it."""
        expires_at += KEPT_PAST_EXPIRY
        self._remember(jti, expires_at)
        if self._redis is not None:
            ttl = max(1, int(expires_at - time.time()) + 1)
            await self._redis.set(f"{KEY_PREFIX}{jti}", b"1", ex=ttl)
            await self._redis.publish(CHANNEL, f"{jti} {expires_at}")
