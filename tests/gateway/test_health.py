"""Liveness and readiness against a private Redis that the test stops and restarts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from db.setup import known_migrations
from gateway.health import LAG_TTL, Readiness
from gateway.settings import Settings, SettingsError, load_settings
from tests.conftest import BACKEND, POSTGRES_URL
from tests.gateway.test_cli import clean_env, free_port
from tests.processes import gateway
from tests.served import GUARD, gateways, own_database

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def start_redis(port: int, directory: Path) -> subprocess.Popen[bytes]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed; the readiness test needs it")
    proc = subprocess.Popen(
        [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail("private redis-server did not start")


def wait_for(url: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer")


@pytest.fixture
def gateway_with_private_redis(tmp_path: Path) -> Iterator[tuple[str, int, Path]]:
    redis_port, port = free_port(), free_port()
    redis = start_redis(redis_port, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--port", str(port)],
        env=clean_env(REDIS_URL=f"redis://127.0.0.1:{redis_port}/0", LOG_LEVEL="WARNING"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", proc)
        yield f"http://127.0.0.1:{port}", redis_port, tmp_path
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        redis.kill()
        redis.wait()


def test_readiness_follows_redis(gateway_with_private_redis):
    base, redis_port, directory = gateway_with_private_redis
    ready = httpx.get(f"{base}/readyz", timeout=5)
    assert ready.status_code == 200
    body = ready.json()
    assert (body["status"], body["checks"]) == (
        "ok",
        {"database": "ok", "redis": "ok", "migrations": "ok", "relay": "ok"},
    )
    assert body["realtime"]["relay"] in {"leading", "standby"}

    subprocess.run(["redis-cli", "-p", str(redis_port), "shutdown", "nosave"], check=False)
    time.sleep(0.3)
    down = httpx.get(f"{base}/readyz", timeout=10)
    assert down.status_code == 503
    assert down.json()["checks"]["database"] == "ok"
    assert down.json()["checks"]["redis"].startswith("error")
    # REST and GraphQL serve without Redis: a probe may say so (Kubernetes' convention)
    partial = httpx.get(f"{base}/readyz?exclude=redis", timeout=10)
    assert partial.status_code == 200, partial.text
    assert partial.json()["excluded"] == ["redis"]
    assert partial.json()["checks"]["redis"].startswith("error")
    assert httpx.get(f"{base}/livez", timeout=5).status_code == 200  # alive all along
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200  # by its old name too

    redis = start_redis(redis_port, directory)
    try:
        deadline = time.monotonic() + 10
        while httpx.get(f"{base}/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "not ready again after Redis came back"
            time.sleep(0.2)
    finally:
        redis.kill()
        redis.wait()


# -- /livez, and /readyz's checks in process (the session's server, injected clocks) ------


async def test_livez_and_its_old_name_answer_without_a_dependency(anon):
    for path in ("/livez", "/healthz"):
        reply = await anon.get(path)
        assert (reply.status_code, reply.json()) == (200, {"status": "ok"}), path


async def test_readyz_reports_every_check_and_stays_compatible(anon):
    reply = await anon.get("/readyz")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "ok"
    assert {"database", "migrations", "relay"} <= set(body["checks"])
    assert set(body["checks"].values()) == {"ok"}
    assert isinstance(body["worker"]["pid"], int)
    assert body["realtime"]["relay"] in {"leading", "standby"}
    assert 0 <= body["relay_lag_seconds"] < 30


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _readiness(server: Any, **kw: Any) -> Readiness:
    async def current() -> list[str]:
        return []

    async def caught_up() -> datetime | None:
        return None

    options: dict[str, Any] = {
        "max_relay_lag": 30.0,
        "pending": current,
        "oldest_unnumbered": caught_up,
        **kw,
    }
    return Readiness(server.app, **options)


async def test_relay_lag_past_the_threshold_makes_the_worker_not_ready(server):
    written = datetime(2026, 1, 1, tzinfo=UTC)
    wall = Clock(written.timestamp() + 10)
    monotonic = Clock(100.0)
    asked: list[int] = []

    async def oldest() -> datetime | None:
        asked.append(1)
        return written

    readiness = _readiness(server, wall=wall, monotonic=monotonic, oldest_unnumbered=oldest)
    ready, body = await readiness.report()
    assert (ready, body["checks"]["relay"], body["relay_lag_seconds"]) == (True, "ok", 10.0)

    wall.now = written.timestamp() + 31  # the same unpublished event, 21 s later
    ready, body = await readiness.report()
    assert not ready
    assert body["status"] == "unavailable"
    assert body["checks"]["relay"] == "error: lag 31.0 s over 30 s"
    assert body["checks"]["database"] == "ok"
    assert len(asked) == 1, "measured again within LAG_TTL"

    monotonic.now += LAG_TTL  # a second later the relay has caught up

    async def caught_up() -> datetime | None:
        asked.append(1)
        return None

    readiness.oldest_unnumbered = caught_up
    ready, body = await readiness.report()
    assert (ready, body["checks"]["relay"], body["relay_lag_seconds"]) == (True, "ok", 0.0)
    assert len(asked) == 2


async def test_pending_migrations_are_asked_until_current_then_never(server):
    answers = [["0008_event_traceparent"], ["0008_event_traceparent"], []]
    asked: list[int] = []

    async def pending() -> list[str]:
        asked.append(1)
        return answers[min(len(asked), len(answers)) - 1]

    readiness = _readiness(server, pending=pending)
    for _ in range(2):
        ready, body = await readiness.report()
        assert not ready
        assert body["checks"]["migrations"] == "error: 1 pending"
        assert "relay" not in body["checks"]  # not measured on a schema behind the code
    for _ in range(3):
        ready, body = await readiness.report()
        assert ready, body
    assert len(asked) == 3


async def test_a_flood_of_probes_shares_one_evaluation(server):
    release = asyncio.Event()
    asked: list[int] = []

    async def pending() -> list[str]:
        asked.append(1)
        await release.wait()
        return ["0001_initial"]

    readiness = _readiness(server, pending=pending)
    probes = [asyncio.create_task(readiness.report()) for _ in range(100)]
    while not asked:
        await asyncio.sleep(0.01)
    release.set()
    answers = await asyncio.gather(*probes)
    assert len(asked) == 1
    assert all(answer == answers[0] for answer in answers)
    assert not answers[0][0]
    # The next probe evaluates again: an outage shows at once, it is not cached.
    await readiness.report()
    assert len(asked) == 2


async def test_draining_shows_on_the_next_probe_even_with_an_evaluation_shared(server):
    release = asyncio.Event()

    async def pending() -> list[str]:
        await release.wait()
        return []

    readiness = _readiness(server, pending=pending)
    before = asyncio.create_task(readiness.report())  # started before the drain
    await asyncio.sleep(0)
    shutdown = server.app.ctx.shutdown
    shutdown.deadline = 0.0  # as Shutdown.run sets it: the worker is draining
    try:
        during = asyncio.create_task(readiness.report())
        release.set()
        for ready, body in await asyncio.gather(before, during):
            assert not ready
            assert body["checks"]["worker"] == "error: shutting down"
            assert body["status"] == "unavailable"
    finally:
        shutdown.deadline = None
    assert (await readiness.report())[0]


def test_the_lag_threshold_is_a_positive_number_of_seconds():
    assert Settings().ready_max_relay_lag_seconds == 30.0
    assert Settings(ready_max_relay_lag_seconds=0.5).ready_max_relay_lag_seconds == 0.5
    with pytest.raises(SettingsError, match="READY_MAX_RELAY_LAG_SECONDS"):
        load_settings(ready_max_relay_lag_seconds=0)


# -- served: migrations, and the relay's lag, against a database of the test's own ------------


def _livez(port: int, proc: subprocess.Popen[bytes], log: Path) -> str:
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + GUARD
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/livez", timeout=2).status_code == 200:
                return base
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


def _until(base: str, status: int, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first /readyz answer with ``status`` whose body passes ``check`` (a failure
    guard only: each waits for something the test did)."""
    deadline = time.monotonic() + GUARD
    while True:
        reply = httpx.get(f"{base}/readyz", timeout=10)
        body: dict[str, Any] = reply.json()
        if reply.status_code == status and check(body):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


@contextlib.contextmanager
def _serving(tmp_path: Path, env: dict[str, str]) -> Iterator[str]:
    """``gateway serve`` on ``env``; its URL once /livez answers (ready or not)."""
    port = free_port()
    log = tmp_path / f"gateway-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--port", str(port)],
            env=clean_env(LOG_LEVEL="INFO", ACCESS_LOG="false", **env),
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield _livez(port, proc, log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=GUARD)


@contextlib.contextmanager
def _empty_database(tmp_path: Path) -> Iterator[str]:
    """The URL of a database with no schema at all."""
    if BACKEND != "services":
        yield f"sqlite://{tmp_path / 'gateway.sqlite3'}"
        return
    name = f"gateway_ready_{uuid.uuid4().hex[:8]}"
    base = POSTGRES_URL.rsplit("/", 1)[0]

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_URL.replace("postgres://", "postgresql://"))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


MIGRATE_TO = """
import asyncio, sys
from tortoise.migrations.api import migrate
from db.config import tortoise_config
from gateway.settings import Settings
url = Settings(database_url=sys.argv[1]).tortoise_url
from tortoise import Tortoise
async def main():
    await migrate(config=tortoise_config(url), target=sys.argv[2])
    await Tortoise.close_connections()
asyncio.run(main())
"""


# "one-behind": every migration but the newest is applied.
@pytest.mark.parametrize("applied", [None, known_migrations()[-2]], ids=["empty", "one-behind"])
def test_not_ready_until_migrations_are_current_then_ready_without_a_restart(tmp_path, applied):
    with _empty_database(tmp_path) as url:
        env = {"DATABASE_URL": url, "AUTO_MIGRATE": "false", "SEED_DEMO": "false"}
        if applied is not None:
            done = subprocess.run(
                [sys.executable, "-c", MIGRATE_TO, url, f"models.{applied}"],
                env=clean_env(),
                cwd=Path(__file__).resolve().parents[2],
                capture_output=True,
                text=True,
                timeout=GUARD,
            )
            assert done.returncode == 0, done.stderr
        missing = len(known_migrations()) if applied is None else 1
        with _serving(tmp_path, env) as base:
            behind = httpx.get(f"{base}/readyz", timeout=10)
            assert behind.status_code == 503
            body = behind.json()
            assert body["status"] == "unavailable"
            assert body["checks"]["database"] == "ok"
            assert body["checks"]["migrations"] == f"error: {missing} pending"
            assert httpx.get(f"{base}/livez", timeout=5).status_code == 200

            migrated = gateway("migrate", env=clean_env(**env), cwd=tmp_path)
            assert migrated.returncode == 0, migrated.stderr
            ready = _until(base, 200, lambda body: True)
            assert ready["checks"]["migrations"] == "ok"
            # What needed the schema started with it: the token endpoint signs.
            made = gateway("create-org", "acme", env=clean_env(**env), cwd=tmp_path)
            assert made.returncode == 0, made.stderr
            client = _client(env, tmp_path)
            assert _token(base, client)


def _client(env: dict[str, str], cwd: Path) -> tuple[str, str]:
    made = gateway("create-client", "acme", "health", "--role", "owner", env=env, cwd=cwd)
    assert made.returncode == 0, made.stderr
    fields = dict(line.split("=", 1) for line in made.stdout.splitlines() if "=" in line)
    return fields["client_id"], fields["client_secret"]


def _token(base: str, client: tuple[str, str]) -> str:
    reply = httpx.post(
        f"{base}/oauth/token", data={"grant_type": "client_credentials"}, auth=client, timeout=10
    )
    assert reply.status_code == 200, reply.text
    token: str = reply.json()["access_token"]
    return token


def test_a_relay_that_falls_behind_makes_every_node_not_ready_until_one_catches_up(tmp_path):
    """Node A runs no relay; a write through it is not published, and A's readiness fails
    once the write is older than the threshold. Node B, with a relay, publishes it: A is
    ready again (the lag is the installation's, whichever node relays)."""
    with own_database(tmp_path) as database:
        env = {**clean_env(**database), "AUTH_ISSUER": "http://gateway.test"}
        made = gateway("create-org", "acme", env=env, cwd=tmp_path)
        assert made.returncode == 0, made.stderr
        client = _client(env, tmp_path)
        quiet = {**database, "AUTH_ISSUER": "http://gateway.test", "RELAY_ENABLED": "false"}
        with _serving(tmp_path, {**quiet, "READY_MAX_RELAY_LAG_SECONDS": "0.2"}) as a:
            _until(a, 200, lambda body: body["checks"]["relay"] == "ok")
            headers = {"Authorization": f"Bearer {_token(a, client)}"}
            wrote = httpx.post(
                f"{a}/api/v1/customers",
                json={"name": "lagging", "email": "lagging@example.com"},
                headers=headers,
                timeout=10,
            )
            assert wrote.status_code == 201, wrote.text
            behind = _until(a, 503, lambda body: body["checks"]["relay"] != "ok")
            assert behind["checks"]["relay"].startswith("error: lag ")
            assert behind["checks"]["relay"].endswith(" s over 0.2 s")
            assert behind["relay_lag_seconds"] > 0.2
            assert {k: v for k, v in behind["checks"].items() if k != "relay"} == {
                "database": "ok",
                "migrations": "ok",
            }
            with gateways(tmp_path, {**database, "AUTH_ISSUER": "http://gateway.test"}) as start:
                start()  # ready only once its relay has published the write
                again = _until(a, 200, lambda body: True)
                assert again["checks"]["relay"] == "ok"


async def test_readiness_may_leave_named_checks_out_of_its_decision(anon):
    both = await anon.get("/readyz?exclude=redis&exclude=relay,migrations")
    assert both.status_code == 200
    assert both.json()["excluded"] == ["migrations", "redis", "relay"]
    assert both.json()["checks"]["database"] == "ok"
    for bad in ("worker", "nope", "x" * 5000):
        r = await anon.get(f"/readyz?exclude={bad}")
        assert r.status_code == 400, r.text
        assert r.json()["code"] == "INVALID_ARGUMENT"
