"""Rate limits shared by every worker and host: GCRA in Redis, in-process without it.

One limiter serves every door (REST, GraphQL, OAuth, WebSockets)::

    limiter = RateLimiter(app.ctx.redis)            # None on the embedded default
    decision = await limiter.hit("read", f"client:{client_id}", Rate.parse("600/minute"))
    response.headers.update(decision.headers())     # 429 when not decision.allowed

**Algorithm.** GCRA (the generic cell rate algorithm): each key stores one number, its
theoretical arrival time (TAT). A rate of ``limit`` per ``period`` emits one unit every
``period / limit`` and allows a burst of ``limit``. A hit of ``cost`` units is allowed when
``now >= TAT + cost * interval - period`` and moves the TAT forward by ``cost * interval``;
a refused hit changes nothing. Times are whole microseconds (the interval is rounded up
to one), so the edges are exact on both backends: the ``limit``-th hit of a burst is
allowed and the next one is refused.

**Costs larger than the limit** (a GraphQL query whose cost points exceed the whole
quota) are allowed only when the quota is full, and charged in full: the key goes into
debt, and later hits wait until it is paid back. While the quota is not full they are
refused with ``retry_after`` = the time until it is. Such a request is therefore never
refused forever, and a caller cannot get more than ``limit`` units per ``period`` on
average by sending expensive requests.

**Backends.** With Redis, one Lua script (loaded once, run by EVALSHA through redis-py's
``register_script``, which loads it again after a Redis restart) reads and writes the
TAT atomically, so every worker and host shares one count; keys expire when their quota
is full. At most ``REDIS_CONCURRENCY`` scripts per limiter are in flight; more calls
wait for a slot (within ``redis_timeout``). Without Redis, a bounded dict in this
process (``max_local_keys`` entries; full quotas are dropped first, then the least
recently used keys) does the same arithmetic. When Redis errors or does not answer
within ``redis_timeout``, that call is decided by the in-process counters, a warning is
logged once per change of state (down, back), and Redis is tried again every
``REDIS_RETRY_SECONDS``; the caller never sees an exception. Keys are hashed (BLAKE2b,
128 bits), so their length and bytes do not matter.

**Time** comes from the injected ``clock`` on both backends (``now`` is an argument of the
Lua script, not Redis ``TIME``), so tests drive time on Redis too. Hosts must therefore
keep their clocks synchronized (NTP): a host whose clock is ``d`` seconds ahead lends
its callers about ``d / interval`` extra units.

**Headers** follow draft-ietf-httpapi-ratelimit-headers-11 (23 May 2026), the newest
revision whose text we checked: ``RateLimit-Policy: "read";q=600;w=60`` and
``RateLimit: "read";r=598;t=1``, plus ``Retry-After`` on a refusal (see
``Decision.headers``). A draft -12 (20 November 2026) is listed; a pull request before it
proposed renaming ``r``/``t`` to ``a``/``w``. ``Decision.headers`` is the one place to
change if it did.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError, RedisError

from gateway import metrics

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("gateway.ratelimit")

# How long a worker keeps deciding alone after Redis failed before it tries Redis again.
REDIS_RETRY_SECONDS = 1.0
# Scripts in flight per limiter. redis-py's pool raises MaxConnectionsError at once past
# its max_connections (100 by default, shared with the app's other Redis calls); waiting
# for one of these slots instead keeps a burst of requests on the shared count.
REDIS_CONCURRENCY = 32
_MICROS = 1_000_000
# The longest a key may be held (period, or the debt of one costly hit): keeps every
# TAT below 2**53 microseconds, where Lua's doubles stop being exact integers.
_MAX_SPAN_US = 2**50
_POLICY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_RATE = re.compile(r"\s*(\d{1,12})\s*(?:/|\s+per\s+)\s*(\d{1,9})?\s*([A-Za-z]+)\s*")
_UNITS = (
    dict.fromkeys(("s", "sec", "second", "seconds"), 1)
    | dict.fromkeys(("min", "minute", "minutes"), 60)
    | dict.fromkeys(("h", "hour", "hours"), 3600)
    | dict.fromkeys(("d", "day", "days"), 86400)
)

# KEYS[1]: the key's TAT in microseconds (absent = quota full).
# ARGV: now, interval (both microseconds), limit, cost, mode (1 = hit, 0 = peek,
# -1 = refund: give back ``cost`` units spent earlier, never beyond a full quota).
# Returns {allowed, microseconds until the quota is full, microseconds until allowed}.
# Numbers are written with %.0f, plain integers whatever Lua's number format (stock Lua
# 5.1 prints 14 digits: 1.8e+15, which would lose the microseconds).
_GCRA_LUA = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
if ARGV[5] == '-1' then
  local back = tat - cost * interval
  if back <= now then
    redis.call('DEL', KEYS[1])
    return {1, 0, 0}
  end
  redis.call('SET', KEYS[1], string.format('%.0f', back),
             'PX', string.format('%.0f', math.ceil((back - now) / 1000)))
  return {1, back - now, 0}
end
local allow_at = tat + math.min(cost, limit) * interval - limit * interval
if now < allow_at then
  return {0, tat - now, allow_at - now}
end
if ARGV[5] ~= '1' then
  return {1, tat - now, 0}
end
local new_tat = tat + cost * interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat),
           'PX', string.format('%.0f', math.ceil((new_tat - now) / 1000)))
return {1, new_tat - now, 0}
"""


@dataclass(frozen=True)
class Rate:
    """``limit`` requests (or cost points) per ``period`` seconds; the burst is ``limit``.

    Time is counted in whole microseconds, so a rate above one unit per microsecond is
    counted in blocks of ``_scale`` units (a cost is rounded up to whole blocks); every
    rate of at most one per microsecond has ``_scale`` 1 and exact edges.
    """

    limit: int
    period: float
    _interval_us: int = field(init=False, repr=False, compare=False)
    _scale: int = field(init=False, repr=False, compare=False)
    _units: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise ValueError(f"a rate's limit must be a whole number >= 1, not {self.limit!r}")
        if not 0 < self.period <= 366 * 86400:
            raise ValueError(
                f"a rate's period must be more than 0 seconds and at most a year, "
                f"not {self.period!r}"
            )
        period_us = round(self.period * _MICROS)
        scale = -(-self.limit // period_us)
        units = self.limit // scale
        object.__setattr__(self, "_scale", scale)
        object.__setattr__(self, "_units", units)
        object.__setattr__(self, "_interval_us", -(-period_us // units))

    @classmethod
    def parse(cls, text: str) -> Rate:
        """Read ``"600/minute"``, ``"10/second"``, ``"5000/hour"``, ``"100/15minutes"``
        or ``"10 per second"``; units: second, minute, hour, day (or s, min, h, d)."""
        shown = repr(text[:80])
        match = _RATE.fullmatch(text)
        if match is None:
            raise ValueError(
                f"rate {shown} is not understood: write COUNT/PERIOD, "
                "e.g. '600/minute', '10/second' or '5000/hour'"
            )
        count, multiple, unit = match.groups()
        seconds = _UNITS.get(unit.lower())
        if seconds is None:
            raise ValueError(
                f"rate {shown} has an unknown period unit {unit[:20]!r}: "
                "use second, minute, hour or day"
            )
        limit, periods = int(count), int(multiple or 1)
        if limit < 1 or periods < 1:
            raise ValueError(f"rate {shown} must allow at least 1 per at least 1 {unit}")
        return cls(limit=limit, period=float(periods * seconds))


@dataclass(slots=True)
class Decision:
    """The answer to one hit (or peek) under one policy (treat it as immutable: not
    frozen only because a frozen dataclass takes five times as long to make, and one
    is made per request)."""

    allowed: bool
    policy: str
    limit: int
    period: float
    remaining: int  # units that could be spent now (0 while in debt)
    reset: float  # seconds until the quota is full again (>= 0)
    retry_after: float  # seconds until this request would be allowed (0 when allowed)

    def headers(self) -> dict[str, str]:
        """``RateLimit-Policy`` and ``RateLimit`` (draft-ietf-httpapi-ratelimit-headers-11),
        plus ``Retry-After`` when refused.

        ``t`` is the whole seconds until the quota is full, rounded up. On a refusal it is
        the ``Retry-After`` value instead: the draft says ``Retry-After`` should not point
        before the end of the effective window, and ``r=0`` holds only until then.
        To send several policies, join each field's values with ``", "`` (a List).
        """
        fields = {"RateLimit-Policy": _policy_field(self.policy, self.limit, self.period)}
        if self.allowed:
            fields["RateLimit"] = f'"{self.policy}";r={self.remaining};t={math.ceil(self.reset)}'
        else:
            retry = max(1, math.ceil(self.retry_after))
            fields["RateLimit"] = f'"{self.policy}";r={self.remaining};t={retry}'
            fields["Retry-After"] = str(retry)
        return fields


def raise_if_cancelled() -> None:
    """Raise the cancellation a Redis command swallowed.

    redis-py 8.1 lets a command it was cancelled in finish and returns its reply as if
    nothing happened (the task stays marked as cancelling): a caller that should stop
    (a GraphQL operation the client stopped, a request whose client left) would carry
    on. Call this after awaiting Redis where carrying on matters.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


@functools.lru_cache(maxsize=1024)
def _policy_field(policy: str, limit: int, period: float) -> str:
    return f'"{policy}";q={limit};w={max(1, math.ceil(period))}'


class RateLimiter:
    """GCRA limits, shared through Redis when it is given and reachable.

    ``clock`` gives seconds since the epoch (every host's clock must agree: see the
    module docstring). ``max_local_keys`` bounds the in-process counters, used without
    Redis and while it is down. ``redis_timeout`` bounds the wait for Redis per call.
    """

    def __init__(
        self,
        redis: Redis | None,
        *,
        clock: Callable[[], float] = time.time,
        prefix: str = "gateway:rl2:",
        max_local_keys: int = 100_000,
        redis_timeout: float = 0.5,
    ) -> None:
        self._redis = redis
        self._script = redis.register_script(_GCRA_LUA) if redis is not None else None
        self._clock = clock
        self._prefix = prefix
        self._redis_timeout = redis_timeout
        self._local = _LocalCounters(max_local_keys)
        self._policies: set[str] = set()  # names already checked
        self._redis_slots = asyncio.Semaphore(REDIS_CONCURRENCY)
        self._redis_up = True
        self._retry_at = 0.0

    @property
    def shared(self) -> bool:
        """Whether decisions go through Redis (configured, and up at the last try)."""
        return self._redis is not None and self._redis_up

    async def hit(self, policy: str, key: str, rate: Rate, cost: int = 1) -> Decision:
        """Spend ``cost`` units of ``key``'s quota under ``policy``, if they are there.

        A refused hit spends nothing. ``policy`` is a short name (letters, digits,
        ``_.-``) shown to clients; ``key`` is any string (a client id, an address).
        """
        return await self._decide(policy, key, rate, cost, mode=1)

    async def peek(self, policy: str, key: str, rate: Rate, cost: int = 1) -> Decision:
        """What ``hit`` would answer, without spending anything: ``remaining`` and
        ``reset`` describe the quota as it is now."""
        return await self._decide(policy, key, rate, cost, mode=0)

    async def refund(self, policy: str, key: str, rate: Rate, cost: int = 1) -> Decision:
        """Give back ``cost`` units a ``hit`` spent (never beyond a full quota).

        Charging first and refunding what turns out free (a sign-in that succeeded)
        is atomic where "check, then charge on failure" is not: concurrent attempts
        each take a unit before any is checked, so at most ``limit`` are checked.
        """
        return await self._decide(policy, key, rate, cost, mode=-1)

    async def _decide(self, policy: str, key: str, rate: Rate, cost: int, mode: int) -> Decision:
        if policy not in self._policies and _POLICY_NAME.fullmatch(policy) is None:
            raise ValueError(
                f"rate-limit policy name {policy[:80]!r} must be 1-64 letters, digits, "
                "'_', '.' or '-' (it is sent to clients in a quoted header value)"
            )
        if isinstance(cost, bool) or not isinstance(cost, int) or cost < 1:
            raise ValueError(f"a rate-limit cost must be a whole number >= 1, not {cost!r}")
        if len(self._policies) < MAX_LEASES:
            self._policies.add(policy)
        units = -(-cost // rate._scale)
        if units * rate._interval_us > _MAX_SPAN_US:
            raise ValueError(f"a cost of {cost} under {rate} would hold the key for decades")
        now = self._clock()
        now_us = round(now * _MICROS)
        digest = hashlib.blake2b(
            key.encode("utf-8", "surrogatepass"), digest_size=16, person=b"gateway-rl"
        )
        result = None
        if self._script is not None and self._should_try_redis(now):
            result = await self._redis_decide(
                f"{self._prefix}{policy}:{digest.hexdigest()}", now_us, rate, units, mode
            )
        if result is None:
            local_key = policy.encode() + b":" + digest.digest()
            result = self._local.decide(local_key, now_us, rate, units, mode)
        allowed, reset_us, retry_us = result
        burst_us = rate._interval_us * rate._units
        return Decision(
            allowed=allowed,
            policy=policy,
            limit=rate.limit,
            period=rate.period,
            remaining=max(0, (burst_us - reset_us) // rate._interval_us) * rate._scale,
            reset=reset_us / _MICROS,
            retry_after=retry_us / _MICROS,
        )

    def _should_try_redis(self, now: float) -> bool:
        if self._redis_up:
            return True
        # While Redis is down, one call per REDIS_RETRY_SECONDS tries it; the others
        # decide locally at once. A clock that stepped back also tries (not stuck).
        if self._retry_at - REDIS_RETRY_SECONDS <= now < self._retry_at:
            return False
        self._retry_at = now + REDIS_RETRY_SECONDS
        return True

    async def _redis_decide(
        self, name: str, now_us: int, rate: Rate, cost: int, mode: int
    ) -> tuple[bool, int, int] | None:
        assert self._script is not None
        args = (now_us, rate._interval_us, rate._units, cost, mode)
        try:
            async with asyncio.timeout(self._redis_timeout), self._redis_slots:
                try:
                    reply: Any = await self._script(keys=[name], args=args)
                except RedisConnectionError as exc:
                    if isinstance(exc, MaxConnectionsError):
                        raise
                    # A pooled connection that Redis closed (a restart, an idle timeout)
                    # fails the first command sent on it; redis-py has dropped it, so a
                    # second try gets a fresh connection. (If the lost connection had run
                    # the script, this charges twice: rare, and errs on the strict side.)
                    reply = await self._script(keys=[name], args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            metrics.redis_error("ratelimit")
            if self._redis_up:
                self._redis_up = False
                self._retry_at = self._clock() + REDIS_RETRY_SECONDS
                log.warning(
                    "Redis failed (%s: %s): rate limits are counted per worker until it "
                    "answers again",
                    type(exc).__name__,
                    str(exc) or f"no answer within {self._redis_timeout} s",
                )
            return None
        raise_if_cancelled()
        if not self._redis_up:
            self._redis_up = True
            log.warning("Redis answers again: rate limits are shared by every worker again")
        return bool(reply[0]), int(reply[1]), int(reply[2])


# A lease lasts this long, and holds at most this share of a quota.
LEASE_SECONDS = 0.1
LEASE_SHARE = 20
MAX_LEASES = 10_000


@dataclass
class _Lease:
    rate: Rate
    units: int = 0  # taken from the shared quota, not spent yet
    expires: float = 0.0
    decision: Decision | None = None  # what the shared quota said when they were taken
    window_end: float = 0.0
    spent: int = 0  # units spent in the current window
    last_spent: int = 0  # ... and in the window before: the size of the next lease
    refill: asyncio.Future[None] | None = None  # a lease being taken from Redis now


class LeasedLimiter:
    """Leases on shared quotas, so busy keys do not ask Redis on every request.

    One Redis round trip costs more than a small request (about 230 µs of CPU through
    redis-py). A worker therefore takes units in advance: as many as it spent on the
    key in the last ``LEASE_SECONDS`` (or so far in this one), never more than
    ``1/LEASE_SHARE`` of the quota,
    and spends them locally until they run out or the lease expires. Near the edge of a
    quota the advance is refused and the worker asks for exactly what the request
    costs, so limits stay exact where they bite; units of a lease that expires unspent
    are lost (at most one window's worth of the key's own use). Without Redis, or while
    it is down, every hit goes to the in-process counters, which are cheap and exact.
    """

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter
        self._leases: dict[tuple[str, str], _Lease] = {}

    async def hit(self, policy: str, key: str, rate: Rate, cost: int = 1) -> Decision:
        limiter = self.limiter
        if not limiter.shared:
            return await limiter.hit(policy, key, rate, cost)
        now = limiter._clock()
        lease = self._leases.get((policy, key))
        if lease is None or lease.rate != rate:
            if len(self._leases) >= MAX_LEASES:
                self._leases = {k: v for k, v in self._leases.items() if v.window_end > now}
            lease = self._leases[(policy, key)] = _Lease(rate)
        if now >= lease.window_end:
            lease.last_spent = lease.spent if now < lease.window_end + LEASE_SECONDS else 0
            lease.spent, lease.window_end = 0, now + LEASE_SECONDS
        lease.spent += cost
        while True:
            if now < lease.expires and lease.units >= cost and lease.decision is not None:
                lease.units -= cost
                d = lease.decision  # positional: dataclasses.replace costs more than the rest
                return Decision(
                    True, d.policy, d.limit, d.period, d.remaining + lease.units, d.reset, 0.0
                )
            if lease.refill is None:
                break
            # One request takes the next lease; the others that arrive meanwhile wait
            # for it rather than each asking Redis (64 concurrent clients made 145
            # round trips a second instead of 10). Shielded: a waiter that is
            # cancelled must not cancel the others' wait.
            await asyncio.shield(lease.refill)
            now = limiter._clock()
        refill = lease.refill = asyncio.get_running_loop().create_future()
        try:
            # Demand so far in this window, or in the last: a burst grows its leases
            # geometrically instead of asking once per hit until the window turns.
            demand = max(lease.last_spent, lease.spent)
            size = max(cost, min(demand, rate.limit // LEASE_SHARE))
            decision = await limiter.hit(policy, key, rate, size)
            if not decision.allowed and size > cost:
                size = cost
                decision = await limiter.hit(policy, key, rate, cost)
            if not decision.allowed:
                lease.units = 0
                return decision
            lease.units, lease.expires, lease.decision = size - cost, now + LEASE_SECONDS, decision
            return replace(decision, remaining=decision.remaining + lease.units)
        finally:
            lease.refill = None
            if not refill.done():
                refill.set_result(None)


class _LocalCounters:
    """The same GCRA over a dict of TATs, bounded to ``max_keys`` entries.

    A dict keeps insertion order, and a key is re-inserted whenever it is charged or
    refused, so the first entries are the least recently used. When the dict is full,
    entries whose quota is full again (TAT passed) are dropped, then the least recently
    used, down to nine tenths of the cap: one O(n) sweep per n/10 new keys.
    """

    def __init__(self, max_keys: int) -> None:
        if max_keys < 1:
            raise ValueError(f"max_local_keys must be at least 1, not {max_keys}")
        self._max_keys = max_keys
        self._tats: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self._tats)

    def decide(
        self, key: bytes, now: int, rate: Rate, cost: int, mode: int
    ) -> tuple[bool, int, int]:
        interval = rate._interval_us
        tat = self._tats.pop(key, now)
        if tat < now:
            tat = now
        if mode == -1:
            back = tat - cost * interval
            self._store(key, back, now)
            return True, max(0, back - now), 0
        allow_at = tat + min(cost, rate._units) * interval - rate._units * interval
        if now < allow_at:
            self._store(key, tat, now)  # kept, and marked as recently used
            return False, tat - now, allow_at - now
        new_tat = tat + cost * interval if mode == 1 else tat
        self._store(key, new_tat, now)
        return True, new_tat - now, 0

    def _store(self, key: bytes, tat: int, now: int) -> None:
        if tat <= now:
            return  # a full quota needs no entry
        if len(self._tats) >= self._max_keys:
            keep = self._max_keys * 9 // 10
            live = [(k, t) for k, t in self._tats.items() if t > now]
            self._tats = dict(live[len(live) - keep :] if len(live) > keep else live)
        self._tats[key] = tat
