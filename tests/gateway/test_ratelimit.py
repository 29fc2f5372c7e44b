"""The shared rate limiter (``gateway.ratelimit``): GCRA on Redis and in process.

The behaviour tests run on both backends: in process always, on Redis whenever one
answers at ``TEST_REDIS_URL`` (required in the services pass, where it must answer).
Time is a fake clock on both; nothing sleeps. Redis outages use a private
``redis-server`` on a spare port (killed and restarted) or a socket that never answers;
the shared Redis is never stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import subprocess
import sys
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from gateway.ratelimit import REDIS_RETRY_SECONDS, Decision, Rate, RateLimiter
from tests.conftest import BACKEND, REDIS_URL
from tests.gateway.test_health import start_redis
from tests.processes import free_port

START = 1_800_000_000_000_000  # microseconds since the epoch (January 2027)
RATE = Rate(limit=5, period=5.0)  # one unit a second, a burst of five


class FakeClock:
    """Seconds since the epoch, moved by hand in whole microseconds."""

    def __init__(self) -> None:
        self.micros = START

    def __call__(self) -> float:
        return self.micros / 1_000_000

    def advance(self, seconds: float = 0, *, micros: int = 0) -> None:
        self.micros += round(seconds * 1_000_000) + micros


def _redis_answers() -> bool:
    url = urlsplit(REDIS_URL)
    with (
        contextlib.suppress(OSError),
        socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379), timeout=1),
    ):
        return True
    return False


# In the services pass Redis must answer (a failure, never a skip); elsewhere it is used
# when it happens to be there.
REDIS_TESTED = BACKEND == "services" or _redis_answers()
needs_redis = pytest.mark.skipif(not REDIS_TESTED, reason=f"no Redis answers at {REDIS_URL}")


async def _delete_keys(redis: Redis, prefix: str) -> None:
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", pytest.param("redis", marks=needs_redis)])
async def limiter(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[RateLimiter]:
    """A limiter on one backend, with its own key prefix on the shared Redis."""
    if request.param == "memory":
        yield RateLimiter(None, clock=clock)
        return
    redis = Redis.from_url(REDIS_URL)
    prefix = f"test:rl:{uuid.uuid4().hex}:"
    # A generous wait for Redis: on a busy machine a call can take longer than the
    # production bound (0.5 s), and a fallback would change what these tests count. The
    # bound itself is tested with a limiter of its own.
    limiter = RateLimiter(redis, clock=clock, prefix=prefix, redis_timeout=30)
    try:
        yield limiter
        # a silent fallback to the in-process counters would hide a broken script
        assert limiter.shared, "the limiter fell back from Redis during the test"
    finally:
        await _delete_keys(redis, prefix)
        await redis.aclose()


@contextlib.contextmanager
def warnings_logged() -> Iterator[list[str]]:
    """Messages the limiter logs, caught on its own logger (whatever the app set up)."""
    messages: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logger = logging.getLogger("gateway.ratelimit")
    handler = Catch(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


# --- Structured fields (RFC 9651), strictly enough to refuse anything malformed --------

_SF_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_SF_INTEGER = re.compile(r"-?[0-9]{1,15}")
_SF_STRING = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"')
_SF_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")


def _bare_item(text: str, pos: int) -> tuple[Any, int]:
    for pattern, convert in (
        (_SF_STRING, lambda m: re.sub(r"\\(.)", r"\1", m.group(1))),
        (_SF_INTEGER, lambda m: int(m.group(0))),
        (_SF_TOKEN, lambda m: ("token", m.group(0))),
    ):
        match = pattern.match(text, pos)
        if match:
            return convert(match), match.end()
    raise AssertionError(f"no bare item at {pos} in {text!r}")


def parse_sf_list(text: str) -> list[tuple[Any, dict[str, Any]]]:
    """An RFC 9651 List of Items (no Inner Lists), as [(bare item, parameters)]."""
    items: list[tuple[Any, dict[str, Any]]] = []
    pos = 0
    while True:
        value, pos = _bare_item(text, pos)
        params: dict[str, Any] = {}
        while pos < len(text) and text[pos] == ";":
            pos += 1
            while pos < len(text) and text[pos] == " ":
                pos += 1
            key = _SF_KEY.match(text, pos)
            assert key, f"bad parameter key at {pos} in {text!r}"
            assert key.group(0) not in params, f"repeated parameter in {text!r}"
            pos = key.end()
            params[key.group(0)] = True
            if pos < len(text) and text[pos] == "=":
                params[key.group(0)], pos = _bare_item(text, pos + 1)
        items.append((value, params))
        separator = re.compile(r"[ \t]*,[ \t]*").match(text, pos)
        if pos == len(text):
            return items
        assert separator, f"bad list at {pos} in {text!r}"
        assert separator.end() < len(text), f"a list may not end with a comma: {text!r}"
        pos = separator.end()


# --- Rates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "period"),
    [
        ("600/minute", 600, 60.0),
        ("10/second", 10, 1.0),
        ("5000/hour", 5000, 3600.0),
        ("1/day", 1, 86400.0),
        ("100/15minutes", 100, 900.0),
        ("10 per second", 10, 1.0),
        (" 3 / 2 h ", 3, 7200.0),
        ("7/MIN", 7, 60.0),
    ],
)
def test_rates_are_read_from_text(text, limit, period):
    assert Rate.parse(text) == Rate(limit=limit, period=period)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "not understood: write COUNT/PERIOD"),
        ("600", "not understood"),
        ("600/", "not understood"),
        ("-5/minute", "not understood"),
        ("1.5/second", "not understood"),
        ("ten/second", "not understood"),
        ("5/fortnight", "unknown period unit 'fortnight': use second, minute, hour or day"),
        ("0/minute", "at least 1"),
        ("10/0seconds", "at least 1"),
        ("1/400days", "at most a year"),
        ("9" * 40 + "/second", "not understood"),
    ],
)
def test_a_bad_rate_says_what_to_write(text, error):
    with pytest.raises(ValueError, match=re.escape(error)):
        Rate.parse(text)


@pytest.mark.parametrize(("limit", "period"), [(0, 1.0), (-1, 1.0), (1, 0.0), (1, -5.0)])
def test_a_rate_refuses_impossible_numbers(limit, period):
    with pytest.raises(ValueError, match="a rate's"):
        Rate(limit=limit, period=period)


# --- GCRA on each backend ------------------------------------------------------------


async def test_the_limit_th_hit_is_allowed_and_the_next_refused(limiter):
    decisions = [await limiter.hit("read", "client-1", RATE) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    assert [d.reset for d in decisions] == [1.0, 2.0, 3.0, 4.0, 5.0, 5.0]
    assert [d.retry_after for d in decisions] == [0.0] * 5 + [1.0]
    assert {(d.policy, d.limit, d.period) for d in decisions} == {("read", 5, 5.0)}


@pytest.mark.parametrize("text", ["600/minute", "7/minute", "3/second", "1000/hour"])
async def test_the_edge_is_exact_for_any_rate(limiter, text):
    rate = Rate.parse(text)
    allowed = [(await limiter.hit("read", "edge", rate)).allowed for _ in range(rate.limit + 1)]
    assert allowed == [True] * rate.limit + [False]


async def test_a_unit_comes_back_every_period_over_limit(limiter, clock):
    for _ in range(5):
        await limiter.hit("read", "client-1", RATE)
    clock.advance(1.0, micros=-1)
    early = await limiter.hit("read", "client-1", RATE)
    assert (early.allowed, early.retry_after) == (False, 0.000001)
    clock.advance(micros=1)
    on_time = await limiter.hit("read", "client-1", RATE)
    assert (on_time.allowed, on_time.remaining, on_time.reset) == (True, 0, 5.0)
    assert not (await limiter.hit("read", "client-1", RATE)).allowed
    clock.advance(5.0)  # a whole period: the whole burst is back
    decision = await limiter.peek("read", "client-1", RATE)
    assert (decision.allowed, decision.remaining, decision.reset) == (True, 5, 0.0)


async def test_refused_hits_spend_nothing(limiter, clock):
    for _ in range(5):
        await limiter.hit("read", "client-1", RATE)
    for _ in range(50):
        assert not (await limiter.hit("read", "client-1", RATE)).allowed
    clock.advance(1.0)
    assert (await limiter.hit("read", "client-1", RATE)).allowed  # not pushed back


async def test_a_cost_spends_that_many_units(limiter, clock):
    rate = Rate(limit=10, period=10.0)
    first = await limiter.hit("graphql", "client-1", rate, cost=3)
    assert (first.allowed, first.remaining, first.reset) == (True, 7, 3.0)
    second = await limiter.hit("graphql", "client-1", rate, cost=7)
    assert (second.allowed, second.remaining, second.reset) == (True, 0, 10.0)
    clock.advance(1.0)
    short = await limiter.hit("graphql", "client-1", rate, cost=2)
    assert (short.allowed, short.remaining, short.reset, short.retry_after) == (
        False,
        1,
        9.0,
        1.0,
    )
    assert (await limiter.hit("graphql", "client-1", rate, cost=1)).allowed


async def test_a_cost_above_the_limit_waits_for_a_full_quota_then_goes_into_debt(limiter, clock):
    rate = Rate(limit=10, period=10.0)
    await limiter.hit("graphql", "client-1", rate)
    refused = await limiter.hit("graphql", "client-1", rate, cost=25)
    # refused while the quota is not full, with the time until it is
    assert (refused.allowed, refused.remaining, refused.retry_after) == (False, 9, 1.0)
    clock.advance(refused.retry_after)
    costly = await limiter.hit("graphql", "client-1", rate, cost=25)
    assert (costly.allowed, costly.remaining, costly.reset) == (True, 0, 25.0)
    after = await limiter.hit("graphql", "client-1", rate)
    assert (after.allowed, after.retry_after) == (False, 16.0)  # the debt is paid first
    clock.advance(16.0)
    assert (await limiter.hit("graphql", "client-1", rate)).allowed


async def test_peek_answers_like_hit_and_spends_nothing(limiter):
    await limiter.hit("read", "client-1", RATE, cost=2)
    look = await limiter.peek("read", "client-1", RATE)
    assert (look.allowed, look.remaining, look.reset, look.retry_after) == (True, 3, 2.0, 0.0)
    too_much = await limiter.peek("read", "client-1", RATE, cost=4)
    assert (too_much.allowed, too_much.remaining, too_much.retry_after) == (False, 3, 1.0)
    assert (await limiter.hit("read", "client-1", RATE)).remaining == 2


async def test_concurrent_hits_never_pass_the_limit(limiter):
    rate = Rate(limit=50, period=60.0)
    decisions = await asyncio.gather(*(limiter.hit("write", "busy", rate) for _ in range(200)))
    assert sum(d.allowed for d in decisions) == 50
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(50))


async def test_keys_and_policies_are_counted_apart(limiter):
    rate = Rate(limit=1, period=60.0)
    keys = ["client:1", "client:1 ", "Client:1", "client:2", "client:1\x00", "", "client"]
    assert [(await limiter.hit("read", key, rate)).allowed for key in keys] == [True] * 7
    assert not (await limiter.hit("read", "client:1", rate)).allowed
    assert (await limiter.hit("write", "client:1", rate)).allowed
    assert (await limiter.hit("read.v2", "client:1", rate)).allowed


HOSTILE_KEYS = [
    "x" * 1_000_000,
    "a\r\n*3\r\n$3\r\nDEL\r\n$1\r\n*\r\n",
    "*",
    "gateway:rl2:*",
    "\x00\xff\x7f",
    "\ud800 lone surrogate",
    "ключ🔑",
    "../../etc/passwd",
    "' OR 1=1 --",
    "{hash-tag}",
    "read:" + "0" * 32,
]


async def test_hostile_keys_are_counted_like_any_other(limiter):
    rate = Rate(limit=1, period=60.0)
    first = [await limiter.hit("read", key, rate) for key in HOSTILE_KEYS]
    again = [await limiter.hit("read", key, rate) for key in HOSTILE_KEYS]
    assert [d.allowed for d in first] == [True] * len(HOSTILE_KEYS)
    assert [d.allowed for d in again] == [False] * len(HOSTILE_KEYS)


@pytest.mark.parametrize("policy", ["", 'read"', "read write", "x" * 65, "lecture-é", "a\nb", "-x"])
async def test_a_policy_name_must_be_safe_in_a_header(limiter, policy):
    with pytest.raises(ValueError, match="policy name"):
        await limiter.hit(policy, "client-1", RATE)


@pytest.mark.parametrize("cost", [0, -1, True, 1.5])
async def test_a_cost_must_be_a_positive_whole_number(limiter, cost):
    with pytest.raises(ValueError, match="cost must be a whole number"):
        await limiter.hit("read", "client-1", RATE, cost=cost)


# --- Headers -------------------------------------------------------------------------


async def test_headers_parse_as_the_drafts_structured_fields(limiter):
    rate = Rate.parse("600/minute")
    await limiter.hit("read", "client-1", rate)
    fields = (await limiter.hit("read", "client-1", rate)).headers()
    assert set(fields) == {"RateLimit-Policy", "RateLimit"}
    assert parse_sf_list(fields["RateLimit-Policy"]) == [("read", {"q": 600, "w": 60})]
    assert parse_sf_list(fields["RateLimit"]) == [("read", {"r": 598, "t": 1})]
    assert fields["RateLimit"] == '"read";r=598;t=1'

    for _ in range(598):
        await limiter.hit("read", "client-1", rate)
    refused = (await limiter.hit("read", "client-1", rate)).headers()
    assert parse_sf_list(refused["RateLimit"]) == [("read", {"r": 0, "t": 1})]
    assert refused["Retry-After"] == "1"
    # several policies on one response: each field's values joined as one List
    both = ", ".join([fields["RateLimit"], refused["RateLimit"]])
    assert [name for name, _ in parse_sf_list(both)] == ["read", "read"]


@pytest.mark.parametrize(
    ("retry_after", "reset", "retry_header", "t"),
    [(0.000001, 5.0, "1", 1), (1.0, 5.0, "1", 1), (1.5, 30.0, "2", 2), (59.2, 59.2, "60", 60)],
)
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(
    retry_after, reset, retry_header, t
):
    refused = Decision(
        allowed=False,
        policy="write",
        limit=60,
        period=60.0,
        remaining=0,
        reset=reset,
        retry_after=retry_after,
    )
    fields = refused.headers()
    assert fields["Retry-After"] == retry_header
    # the effective window ends no later than Retry-After points (draft -11, section 6)
    assert parse_sf_list(fields["RateLimit"]) == [("write", {"r": 0, "t": t})]
    assert parse_sf_list(fields["RateLimit-Policy"]) == [("write", {"q": 60, "w": 60})]


def test_an_allowed_decision_rounds_its_reset_up_and_sends_no_retry_after():
    allowed = Decision(
        allowed=True,
        policy="read",
        limit=10,
        period=0.5,
        remaining=9,
        reset=0.05,
        retry_after=0.0,
    )
    assert allowed.headers() == {
        "RateLimit-Policy": '"read";q=10;w=1',
        "RateLimit": '"read";r=9;t=1',
    }


# --- The in-process backend's memory ----------------------------------------------------


async def test_in_process_counters_stay_within_their_cap(clock):
    limiter = RateLimiter(None, clock=clock, max_local_keys=500)
    rate = Rate(limit=10, period=3600.0)  # nothing expires during the test
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(10_000):
            await limiter.hit("read", f"{i:06d}" + "x" * 10_000, rate)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(limiter._local) <= 500
    # 500 entries of a 16-byte digest and a number; not 10,000 keys of 10 KB
    assert after - before < 150_000, after - before


async def test_full_quotas_are_dropped_first_then_the_least_recently_used(clock):
    limiter = RateLimiter(None, clock=clock, max_local_keys=100)
    hour, second = Rate(limit=1, period=3600.0), Rate(limit=1, period=1.0)
    assert (await limiter.hit("read", "abuser", hour)).allowed
    for i in range(60):
        await limiter.hit("read", f"brief-{i}", second)
    clock.advance(2.0)  # the brief ones are full again; the abuser is not
    for i in range(39):
        await limiter.hit("read", f"steady-{i}", hour)
    assert len(limiter._local) == 100
    await limiter.hit("read", "steady-39", hour)  # the cap: full quotas go first
    assert len(limiter._local) == 41
    assert not (await limiter.hit("read", "abuser", hour)).allowed

    for i in range(100):  # churning new keys evicts the least recently used...
        await limiter.hit("read", f"churn-{i}", hour)
        if i % 10 == 0:  # ...and a refused hit counts as a use
            assert not (await limiter.hit("read", "abuser", hour)).allowed
    assert len(limiter._local) <= 100
    assert not (await limiter.hit("read", "abuser", hour)).allowed
    assert (await limiter.hit("read", "steady-0", hour)).allowed  # forgotten: a fresh quota


# --- Redis: shared by processes, bounded keys -------------------------------------------

_WORKER = """
import asyncio, sys
from redis.asyncio import Redis
from gateway.ratelimit import Rate, RateLimiter

async def main(url, prefix, hits):
    redis = Redis.from_url(url)
    rate = Rate(limit=50, period=60.0)
    limiter = RateLimiter(redis, clock=lambda: 1_800_000_000.0, prefix=prefix)
    await limiter.peek("write", "warm-up", rate)  # connected, script loaded
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    decisions = await asyncio.gather(*(limiter.hit("write", "shared", rate) for _ in range(hits)))
    print(sum(d.allowed for d in decisions), limiter.shared, flush=True)
    await redis.aclose()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


@needs_redis
class TestRedis:
    @pytest.fixture
    async def redis(self) -> AsyncIterator[Redis]:
        client = Redis.from_url(REDIS_URL)
        yield client
        await client.aclose()

    @pytest.fixture
    async def prefix(self, redis: Redis) -> AsyncIterator[str]:
        prefix = f"test:rl:{uuid.uuid4().hex}:"
        yield prefix
        await _delete_keys(redis, prefix)

    async def test_two_processes_share_one_count(self, prefix, repo_root: Path):
        env = {**os.environ, "PYTHONPATH": str(repo_root)}
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", _WORKER, REDIS_URL, prefix, "100"],
                env=env,
                cwd=repo_root,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        try:
            for worker in workers:
                assert worker.stdout is not None
                assert worker.stdout.readline().strip() == "ready"
            for worker in workers:  # both are connected: go together
                assert worker.stdin is not None
                worker.stdin.write("go\n")
                worker.stdin.flush()
            answers = [worker.communicate(timeout=60)[0].split() for worker in workers]
        finally:
            for worker in workers:
                worker.kill()
                worker.wait()
        assert [shared for _, shared in answers] == ["True", "True"]
        assert sum(int(allowed) for allowed, _ in answers) == 50  # of 200, from two processes

    async def test_stored_keys_are_fixed_size_and_expire_with_the_quota(self, redis, prefix, clock):
        limiter = RateLimiter(redis, clock=clock, prefix=prefix)
        rate = Rate(limit=1, period=60.0)
        for key in HOSTILE_KEYS:
            await limiter.hit("read", key, rate)
        names = sorted([name async for name in redis.scan_iter(match=f"{prefix}*")])
        assert len(names) == len(HOSTILE_KEYS)
        for name in names:
            assert re.fullmatch(rb"read:[0-9a-f]{32}", name.removeprefix(prefix.encode()))
            assert 0 < await redis.pttl(name) <= 60_000  # gone when the quota is full
        assert limiter.shared

    async def test_the_script_is_loaded_again_after_a_script_flush(self, redis, prefix, clock):
        limiter = RateLimiter(redis, clock=clock, prefix=prefix)
        await limiter.hit("read", "client-1", RATE)
        await redis.script_flush()  # what a Redis restart or failover does to scripts
        with warnings_logged() as warnings:
            decision = await limiter.hit("read", "client-1", RATE)
        assert (decision.allowed, decision.remaining, limiter.shared) == (True, 3, True)
        assert warnings == []


# --- Redis failures: a private redis-server, or a socket that never answers -------------


class PrivateRedis:
    """A ``redis-server`` of this test's own on a spare port, to kill and start again."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.process = start_redis(self.port, directory)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def start(self) -> None:
        self.process = start_redis(self.port, self.directory)


class TestRedisFailure:
    @pytest.fixture
    def private_redis(self, tmp_path: Path) -> Iterator[PrivateRedis]:
        server = PrivateRedis(tmp_path)
        try:
            yield server
        finally:
            server.kill()

    async def test_an_outage_falls_back_quietly_and_redis_is_used_again(self, private_redis, clock):
        redis = Redis.from_url(private_redis.url)  # as the app builds it
        admin = Redis.from_url(private_redis.url)
        limiter = RateLimiter(redis, clock=clock)
        try:
            with warnings_logged() as warnings:
                assert (await limiter.hit("read", "client-1", RATE)).allowed
                assert (limiter.shared, warnings) == (True, [])

                private_redis.kill()
                down = [await limiter.hit("read", "client-1", RATE) for _ in range(5)]
                assert [d.allowed for d in down] == [True] * 5  # this worker's own count
                assert not limiter.shared
                assert len(warnings) == 1
                assert "Redis failed (ConnectionError" in warnings[0]
                assert "counted per worker" in warnings[0]
                clock.advance(REDIS_RETRY_SECONDS)  # tried again: still down, no new warning
                await limiter.hit("read", "client-1", RATE)
                assert (limiter.shared, len(warnings)) == (False, 1)

                private_redis.start()
                clock.advance(REDIS_RETRY_SECONDS)
                back = await limiter.hit("read", "client-2", RATE)
                assert (back.allowed, limiter.shared) == (True, True)
                assert len(warnings) == 2
                assert "answers again" in warnings[1]
                assert len(await admin.keys("gateway:rl2:read:*")) == 1  # counted in Redis
                assert (await limiter.hit("read", "client-2", RATE)).remaining == 3
        finally:
            await redis.aclose()
            await admin.aclose()

    async def test_the_first_call_after_a_restart_goes_to_redis(self, private_redis, clock):
        redis = Redis.from_url(private_redis.url)
        admin = Redis.from_url(private_redis.url)
        limiter = RateLimiter(redis, clock=clock)
        try:
            with warnings_logged() as warnings:
                assert (await limiter.hit("read", "client-1", RATE)).allowed
                private_redis.kill()
                private_redis.start()  # no call while it was away: the pool's socket is stale
                decision = await limiter.hit("read", "client-1", RATE)
            assert (decision.allowed, decision.remaining, limiter.shared) == (True, 4, True)
            assert warnings == []
            assert len(await admin.keys("gateway:rl2:read:*")) == 1
        finally:
            await redis.aclose()
            await admin.aclose()

    async def test_a_redis_that_never_answers_is_given_up_after_the_timeout(self, clock):
        received: list[bytes] = []
        silent: set[asyncio.StreamWriter] = set()

        async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            silent.add(writer)
            while data := await reader.read(65536):
                received.append(data)

        server = await asyncio.start_server(swallow, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        redis = Redis.from_url(f"redis://127.0.0.1:{port}/0")
        limiter = RateLimiter(redis, clock=clock, redis_timeout=0.2)
        try:
            with warnings_logged() as warnings:
                decision = await limiter.hit("read", "client-1", RATE)
                assert (decision.allowed, limiter.shared) == (True, False)
                assert len(warnings) == 1
                assert "no answer within 0.2 s" in warnings[0]
                asked = len(received)
                # until REDIS_RETRY_SECONDS have passed, calls do not wait for Redis at all
                for _ in range(4):
                    assert (await limiter.hit("read", "client-1", RATE)).allowed
                assert len(received) == asked
                assert not (await limiter.hit("read", "client-1", RATE)).allowed
                clock.advance(REDIS_RETRY_SECONDS)
                await limiter.hit("read", "client-1", RATE)
                assert len(received) > asked  # tried again, timed out again, said nothing
                assert len(warnings) == 1
        finally:
            await redis.aclose()
            for writer in silent:
                writer.close()
            server.close()
            await server.wait_closed()


# --- Refunds: charge first, give back what turned out free ------------------------------


async def test_a_refund_gives_back_what_a_hit_spent(limiter: RateLimiter, clock: FakeClock):
    for _ in range(RATE.limit):
        assert (await limiter.hit("signin", "k", RATE)).allowed
    assert not (await limiter.hit("signin", "k", RATE)).allowed
    await limiter.refund("signin", "k", RATE)
    assert (await limiter.hit("signin", "k", RATE)).allowed
    assert not (await limiter.hit("signin", "k", RATE)).allowed


async def test_a_refund_never_goes_beyond_a_full_quota(limiter: RateLimiter):
    await limiter.hit("signin", "k", RATE)
    for _ in range(10):
        await limiter.refund("signin", "k", RATE)
    allowed = [(await limiter.hit("signin", "k", RATE)).allowed for _ in range(RATE.limit + 3)]
    assert allowed == [True] * RATE.limit + [False] * 3


async def test_concurrent_attempts_charged_first_check_at_most_the_limit(limiter: RateLimiter):
    """Sign-in's pattern: 40 guesses at once, each charged before its password is checked."""
    results = await asyncio.gather(*(limiter.hit("signin", "k", RATE) for _ in range(40)))
    assert sum(d.allowed for d in results) == RATE.limit


# --- Leases: busy keys spend units taken in advance --------------------------------------


class CountingLimiter(RateLimiter):
    """Counts the calls that reach the shared quota."""

    calls = 0

    async def hit(self, policy: str, key: str, rate: Rate, cost: int = 1) -> Decision:
        self.calls += 1
        return await super().hit(policy, key, rate, cost)


@pytest.fixture(params=[pytest.param("redis", marks=needs_redis)])
async def counted(clock: FakeClock) -> AsyncIterator[CountingLimiter]:
    redis = Redis.from_url(REDIS_URL)
    prefix = f"test:rl:{uuid.uuid4().hex}:"
    limiter = CountingLimiter(redis, clock=clock, prefix=prefix)
    try:
        yield limiter
    finally:
        await _delete_keys(redis, prefix)
        await redis.aclose()


async def test_a_busy_key_asks_redis_a_few_times_a_window_not_per_hit(counted, clock):
    from gateway.ratelimit import LEASE_SECONDS, LeasedLimiter

    leased = LeasedLimiter(counted)
    rate = Rate.parse("600000/minute")
    # 1,000 hits a window, for five windows
    for _ in range(5):
        for _ in range(1000):
            assert (await leased.hit("read", "busy", rate)).allowed
            clock.advance(micros=round(LEASE_SECONDS * 1_000_000 / 1000))
    assert counted.calls < 60, counted.calls


async def test_concurrent_hits_wait_for_one_lease_instead_of_each_asking_redis(counted, clock):
    """64 clients at once on one key: one takes the lease, the others wait for it."""
    from gateway.ratelimit import LEASE_SECONDS, LeasedLimiter

    leased = LeasedLimiter(counted)
    rate = Rate.parse("600000/minute")
    for _ in range(5):
        decisions = await asyncio.gather(*(leased.hit("read", "busy", rate) for _ in range(64)))
        assert all(d.allowed for d in decisions)
        clock.advance(micros=round(LEASE_SECONDS * 1_000_000))
    # the first burst needs a second lease (the first was sized before demand was
    # known); each later window's lease covers its burst
    assert counted.calls <= 7, counted.calls


async def test_the_edge_stays_exact_when_hits_wait_for_a_lease(counted):
    from gateway.ratelimit import LeasedLimiter

    first, second = LeasedLimiter(counted), LeasedLimiter(counted)
    rate = Rate.parse("100/minute")
    decisions = await asyncio.gather(
        *((first if i % 2 else second).hit("read", "edge", rate) for i in range(300))
    )
    assert sum(d.allowed for d in decisions) == rate.limit


async def test_leases_keep_the_limit_exact_at_its_edge(counted, clock):
    """Two workers sharing one quota: exactly ``limit`` hits pass in all, however they
    are spread, because near the edge each worker asks for exactly one unit."""
    from gateway.ratelimit import LeasedLimiter

    first, second = LeasedLimiter(counted), LeasedLimiter(counted)
    rate = Rate.parse("400/minute")
    allowed = 0
    for i in range(1000):
        decision = await (first if i % 3 else second).hit("read", "shared", rate)
        allowed += decision.allowed
        assert decision.remaining >= 0
    assert allowed == rate.limit


async def test_a_lease_falls_back_to_exact_counts_when_redis_is_not_configured(clock):
    from gateway.ratelimit import LeasedLimiter

    leased = LeasedLimiter(RateLimiter(None, clock=clock))
    results = [(await leased.hit("read", "k", RATE)).allowed for _ in range(RATE.limit + 2)]
    assert results == [True] * RATE.limit + [False, False]


@needs_redis
async def test_a_hit_cancelled_in_flight_is_cancelled_not_completed(clock):
    """redis-py finishes a command it was cancelled in and returns as if nothing happened;
    the limiter raises the cancellation, so a stopped operation does not carry on."""
    redis = Redis.from_url(REDIS_URL)
    prefix = f"test:rl:{uuid.uuid4().hex}:"
    limiter = RateLimiter(redis, clock=clock, prefix=prefix)
    carried_on = cancelled = 0
    try:
        for i in range(200):
            task = asyncio.create_task(limiter.hit("read", "k", Rate.parse("100000/minute")))
            for _ in range(i % 7):  # cancel at different points of the round trip
                await asyncio.sleep(0)
            if not task.cancel():
                await task
                continue
            try:
                await task
            except asyncio.CancelledError:
                cancelled += 1
            else:
                carried_on += 1
    finally:
        await _delete_keys(redis, prefix)
        await redis.aclose()
    assert cancelled > 0
    assert carried_on == 0


async def test_a_rate_above_one_per_microsecond_counts_in_blocks(limiter: RateLimiter):
    """GraphQL cost points can run into millions a second; time is whole microseconds,
    so such a rate counts in blocks (here of 2 points) and costs round up to them."""
    rate = Rate.parse("2000000/second")
    first = await limiter.hit("graphql", "k", rate, cost=3)
    assert first.allowed
    assert first.limit == 2_000_000
    assert first.remaining == 2_000_000 - 4
    spent = 4
    while (await limiter.hit("graphql", "k", rate, cost=100_000)).allowed:
        spent += 100_000
    assert 2_000_000 - 100_000 < spent <= 2_000_000
