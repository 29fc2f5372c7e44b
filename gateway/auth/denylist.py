"""Revoked credentials (token ``jti``s, ``key:<key_id>``): denied until they would expire.

The database is the source of truth (``db.revocations``); every worker keeps the
unexpired revocations in memory, so the check on each request costs a dict
lookup. Redis, when configured, only makes the news travel fast:

- ``deny`` commits the revocation to the database, applies it here (closing this
  worker's sockets through the ``on_deny`` callbacks) and queues a notice; a
  background task publishes the notice, and keeps it while Redis is away, so a
  revocation never fails because Redis does;
- every worker follows the notices. Each time its subscription is (re)made, after
  a Redis restart or a lost connection, it reads from the database what was
  revoked since its last read, so a notice published while it was not listening
  is not lost;
- while no notice can arrive (no Redis, or Redis away) it reads the database every
  ``POLL_SECONDS_ALONE``; otherwise every ``POLL_SECONDS``, as a safety net. It
  prunes expired rows every ``PRUNE_SECONDS``;
- a worker that starts loads every unexpired revocation before it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from redis.exceptions import ConnectionError as RedisConnectionError

from db.revocations import (
    KEPT_PAST_EXPIRY,
    prune_revocations,
    record_revocation,
    revocations_since,
)
from gateway import metrics
from gateway.ratelimit import raise_if_cancelled

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

log = logging.getLogger("gateway.auth")

CHANNEL = "gateway:revocations"
__all__ = ["CHANNEL", "KEPT_PAST_EXPIRY", "Denylist", "publish_notices"]
POLL_SECONDS = 30.0
POLL_SECONDS_ALONE = 2.0
PRUNE_SECONDS = 600.0
# A catch-up reads again what was recorded this long before its previous read: a
# revocation's row carries its worker's clock and commits a moment after it is
# stamped, so a row stamped before the last read may not have been visible to it.
CATCH_UP_SLACK = 60.0
REDIS_RETRY_SECONDS = 1.0
HEARTBEAT_SECONDS = 5.0
OUTBOX_LIMIT = 100_000
# ``gateway_redis_errors_total`` / ``gateway_redis_fallback``: while Redis is away this
# worker reads revocations from the database every POLL_SECONDS_ALONE instead.
METRICS_COMPONENT = "revocations"


class Liveness:
    """Whether a quiet subscription's connection still answers.

    After ``interval`` without a message, ping; the connection is lost only when the
    ping has gone unanswered for over ``interval`` across at least two polls. One
    poll is not enough: a busy event loop can wake a poll after its timeout before
    it read the pong already waiting in the socket, and must not take a live Redis
    for a dead one (the next poll reads it at once).
    """

    def __init__(self, now: float, interval: float) -> None:
        self.interval = interval
        self.heard_at = now
        self.pinged_at: float | None = None
        self.silent_polls = 0

    def heard(self, now: float) -> None:
        self.heard_at = now
        self.pinged_at = None
        self.silent_polls = 0

    def quiet(self, now: float) -> Literal["wait", "ping", "lost"]:
        """What to do after a poll that brought nothing."""
        if self.pinged_at is not None:
            self.silent_polls += 1
            if self.silent_polls >= 2 and now - self.pinged_at > self.interval:
                return "lost"
            return "wait"
        if now - self.heard_at >= self.interval:
            self.pinged_at = now
            self.silent_polls = 0
            return "ping"
        return "wait"


class Denylist:
    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._denied: dict[str, float] = {}
        self._callbacks: list[Callable[[str], None]] = []
        self._redis: Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._read_at: float | None = None  # when the last catch-up began
        self._behind = False  # the last catch-up failed: try again soon
        self._listening = False  # subscribed to the notices right now
        self._redis_lost = False  # logged that Redis went away (one line per change)
        self._outbox: dict[str, float] = {}  # notices not published yet
        self._outbox_ready = asyncio.Event()
        self._catch_up_now = asyncio.Event()
        self._resubscribed = asyncio.Event()

    def on_deny(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(credential_id)`` whenever a credential is denied, here or on
        another worker."""
        self._callbacks.append(callback)

    def __contains__(self, credential_id: str) -> bool:
        expires = self._denied.get(credential_id)
        if expires is None:
            return False
        if expires < self._clock():
            self._denied.pop(credential_id, None)
            return False
        return True

    @property
    def listening(self) -> bool:
        """Whether notices from other workers reach this one now (Redis subscribed)."""
        return self._listening

    def _remember(self, credential_id: str, expires_at: float) -> bool:
        """Deny ``credential_id`` here; True when that is news (callbacks were called)."""
        if self._denied.get(credential_id, float("-inf")) >= expires_at:
            return False
        self._denied[credential_id] = expires_at
        for callback in self._callbacks:
            try:
                callback(credential_id)
            except Exception:
                log.exception("a revocation callback failed")
        return True

    # -- life cycle -----------------------------------------------------------------

    async def start(self, redis: Redis | None) -> None:
        """Load every unexpired revocation, then follow new ones (notices through
        ``redis`` when given, the database in any case)."""
        self._redis = redis
        await self.catch_up()
        self._tasks.append(asyncio.create_task(self._sweep(), name="denylist-sweeper"))
        if redis is not None:
            self._tasks.append(asyncio.create_task(self._follow(redis), name="denylist-follower"))
            self._tasks.append(asyncio.create_task(self._publish(redis), name="denylist-notices"))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- revoking -------------------------------------------------------------------

    async def deny(self, credential_id: str, expires_at: float) -> None:
        """Deny ``credential_id``, which expires at ``expires_at`` (epoch seconds), on
        every worker for as long as verification could accept it.

        Returns once the database holds it and this worker applies it; other workers
        hear of it at once through Redis, or from the database when Redis is away.
        """
        expires_at += KEPT_PAST_EXPIRY
        await record_revocation(credential_id, expires_at)
        self.announce(credential_id, expires_at)

    def announce(self, credential_id: str, expires_at: float) -> None:
        """Apply here, and tell every worker, a revocation the database already holds
        (``db.api_keys.revoke_api_key`` records it in its own transaction)."""
        self._remember(credential_id, expires_at)
        if self._redis is None:
            return
        self._outbox[credential_id] = expires_at
        if len(self._outbox) > OUTBOX_LIMIT:  # others still read it from the database
            del self._outbox[next(iter(self._outbox))]
        self._outbox_ready.set()

    # -- reading the database -----------------------------------------------------------

    async def catch_up(self) -> int:
        """Apply what the database holds that this worker may have missed; how many
        revocations were news here."""
        began = self._clock()
        since = None if self._read_at is None else self._read_at - CATCH_UP_SLACK
        rows = await revocations_since(since, now=began)
        news = sum(self._remember(credential_id, expires) for credential_id, expires in rows)
        self._read_at = began
        return news

    async def _sweep(self) -> None:
        next_prune = self._clock()
        while True:
            alone = self._behind or not self._listening
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS_ALONE if alone else POLL_SECONDS):
                    await self._catch_up_now.wait()
            self._catch_up_now.clear()
            try:
                news = await self.catch_up()
                if self._behind:
                    self._behind = False
                    log.warning("revocations are read from the database again")
                if news:
                    log.info("applied revocations from the database", extra={"count": news})
                now = self._clock()
                if now >= next_prune:
                    next_prune = now + PRUNE_SECONDS
                    self._forget_expired(now)
                    await prune_revocations(now=now)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._behind:
                    self._behind = True
                    log.warning(
                        "could not read revocations from the database (%s); retrying every %g s",
                        type(exc).__name__,
                        POLL_SECONDS_ALONE,
                    )

    def _forget_expired(self, now: float) -> None:
        for credential_id in [c for c, expires in self._denied.items() if expires < now]:
            del self._denied[credential_id]

    # -- Redis: notices in and out --------------------------------------------------------

    async def _follow(self, redis: Redis) -> None:
        """Apply notices from other workers. Every (re)subscription, including the ones
        redis-py makes itself after a lost connection, triggers a catch-up.

        A quiet subscription is pinged every ``HEARTBEAT_SECONDS``: a connection whose
        far end is gone (a proxy or a container port that keeps it open, a dead peer
        that never closed it) would otherwise look like one without news, forever.
        """
        while True:
            pubsub: PubSub = redis.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                raise_if_cancelled()
                liveness = Liveness(time.monotonic(), HEARTBEAT_SECONDS)
                while True:
                    message = await pubsub.get_message(timeout=HEARTBEAT_SECONDS)
                    raise_if_cancelled()
                    now = time.monotonic()
                    if message is not None:
                        liveness.heard(now)
                        if message.get("type") == "subscribe":
                            self._heard_from_redis()
                        elif message.get("type") == "message":
                            self._apply_notice(message.get("data"))
                        continue
                    verdict = liveness.quiet(now)
                    if verdict == "lost":
                        raise RedisConnectionError("no answer to a ping")
                    if verdict == "ping":
                        await pubsub.ping()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._lost_redis(exc)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(REDIS_RETRY_SECONDS)

    def _heard_from_redis(self) -> None:
        self._listening = True
        metrics.redis_fallback(METRICS_COMPONENT, False)
        self._catch_up_now.set()  # what was published while this worker did not listen
        self._outbox_ready.set()  # what this worker could not publish
        self._resubscribed.set()
        if self._redis_lost:
            self._redis_lost = False
            log.warning("Redis answers again: revocation notices flow again")

    def _lost_redis(self, exc: BaseException) -> None:
        self._listening = False
        metrics.redis_error(METRICS_COMPONENT)
        metrics.redis_fallback(METRICS_COMPONENT, True)
        if not self._redis_lost:
            self._redis_lost = True
            log.warning(
                "revocation notices lost Redis (%s: %s); reading the database every %g s "
                "until it answers",
                type(exc).__name__,
                exc,
                POLL_SECONDS_ALONE,
            )

    def _apply_notice(self, data: Any) -> None:
        text = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
        credential_id, _, expires = text.partition(" ")
        try:
            self._remember(credential_id, float(expires))
        except ValueError:
            log.warning("ignored a malformed revocation notice")

    async def _publish(self, redis: Redis) -> None:
        """Publish queued notices; while Redis is away, keep them until it answers."""
        failing = False
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while self._outbox:
                batch = dict(self._outbox)
                try:
                    async with redis.pipeline(transaction=False) as pipe:
                        for credential_id, expires in batch.items():
                            pipe.publish(CHANNEL, _notice(credential_id, expires))
                        await pipe.execute()
                    raise_if_cancelled()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    metrics.redis_error(METRICS_COMPONENT)
                    if not failing:
                        failing = True
                        log.warning(
                            "could not publish revocation notices (%s: %s); they wait for "
                            "Redis (the database has the revocations)",
                            type(exc).__name__,
                            exc,
                        )
                    await self._until_resubscribed(REDIS_RETRY_SECONDS)
                    continue
                for credential_id, expires in batch.items():
                    if self._outbox.get(credential_id) == expires:
                        del self._outbox[credential_id]
                if failing:
                    failing = False
                    log.warning("published the revocation notices that waited for Redis")

    async def _until_resubscribed(self, at_most: float) -> None:
        """Wait until the follower subscribes again (Redis is back), or ``at_most``."""
        self._resubscribed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(at_most):
                await self._resubscribed.wait()


def _notice(credential_id: str, expires_at: float) -> str:
    return f"{credential_id} {expires_at!r}"


async def publish_notices(redis: Redis, revocations: dict[str, float]) -> None:
    """Tell every worker at once of revocations the database already holds, from a
    process that runs no ``Denylist`` (the ``gateway`` command). Without it workers
    still read them from the database, within ``POLL_SECONDS``."""
    async with redis.pipeline(transaction=False) as pipe:
        for credential_id, expires in revocations.items():
            pipe.publish(CHANNEL, _notice(credential_id, expires))
        await pipe.execute()
