"""The delivery contract under faults, with real gateway processes (PostgreSQL + Redis).

Each test starts its own gateways (``gateway serve``, as an operator does) on a
database of its own, with dashboards that follow the change stream over the JSON
WebSocket channel and, like a real client, reconnect and resume from the last
position they hold whenever the socket goes away. Writes go through REST with an
``Idempotency-Key``, retried on another gateway when one fails, so each write
commits exactly once. After the fault, every dashboard must hold exactly the
committed events of its organization, in position order: no gaps, no repeats.

Faults: a client dropping its socket while writes go on; a worker killed with
SIGKILL; Redis restarted (a private ``redis-server`` on a spare port, never the
shared one); the relay's process killed; SIGTERM (sockets close with 1001).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import websockets

from tests.processes import clean_env, free_port, gateway
from tests.served import migrated_postgres

pytestmark = pytest.mark.postgres_only

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
_keys = itertools.count()


@dataclass
class Node:
    """One ``gateway serve`` process (one or more workers) on its own port."""

    proc: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/realtime"

    def readyz(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.url}/readyz", timeout=3).json()
        return body


@dataclass
class Stage:
    """A database of its own, its gateways, and a client of its organization."""

    root: Path
    database_url: str
    nodes: list[Node] = field(default_factory=list)
    token: str = ""
    client: tuple[str, str] = ("", "")

    def env(self, redis_url: str) -> dict[str, str]:
        return clean_env(
            DATABASE_URL=self.database_url,
            REDIS_URL=redis_url,
            AUTO_MIGRATE="false",
            SEED_DEMO="false",
            LOG_LEVEL="WARNING",
            ACCESS_LOG="false",
            AUTH_ISSUER="http://gateway.test",
            ACCESS_TOKEN_TTL_SECONDS="3600",
        )

    def start(
        self, *, workers: int = 1, redis_url: str = REDIS_URL, log: Path | None = None
    ) -> Node:
        port = free_port()
        with contextlib.ExitStack() as files:
            out = files.enter_context(log.open("wb")) if log else subprocess.DEVNULL
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gateway",
                    "serve",
                    "--port",
                    str(port),
                    "--workers",
                    str(workers),
                ],
                env=self.env(redis_url),
                cwd=self.root,
                start_new_session=True,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        node = Node(proc, port)
        self.nodes.append(node)
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError, ValueError):
                if node.readyz().get("status") == "ok":
                    break
            assert proc.poll() is None, "the gateway exited at startup"
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.05)
        if workers > 1:  # every worker answers before the test goes on
            seen: set[int] = set()
            while len(seen) < workers:
                seen.add(node.readyz()["worker"]["pid"])
                assert time.monotonic() < deadline, "not every worker started"
        return node

    def login(self, node: Node) -> None:
        made = gateway(
            "create-client",
            "acme",
            "dashboards",
            "--role",
            "owner",
            env=self.env(REDIS_URL),
            cwd=self.root,
        )
        assert made.returncode == 0, made.stderr
        fields = dict(line.split("=", 1) for line in made.stdout.splitlines() if "=" in line)
        self.client = (fields["client_id"], fields["client_secret"])
        self.token = self.new_token(node)

    def new_token(self, node: Node) -> str:
        reply = httpx.post(
            f"{node.url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=self.client,
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
        token: str = reply.json()["access_token"]
        return token

    async def committed(self, timeout: float = 10) -> list[int]:
        """Positions of every committed event, in order (the truth to compare with).

        Waits until a relay has numbered everything committed (after a takeover
        that takes up to a second or two).
        """
        conn = await asyncpg.connect(self.database_url.replace("postgres://", "postgresql://"))
        try:
            deadline = time.monotonic() + timeout
            while await conn.fetchval("SELECT count(*) FROM events WHERE position IS NULL"):
                assert time.monotonic() < deadline, "the relay left committed events unnumbered"
                await asyncio.sleep(0.05)
            rows = await conn.fetch(
                "SELECT position FROM events WHERE resource = 'customer' ORDER BY position"
            )
        finally:
            await conn.close()
        return [row["position"] for row in rows]


@pytest.fixture
def stage(repo_root: Path) -> Iterator[Stage]:
    # A copy of the run's migrated template (what ``gateway migrate`` makes, with an
    # installation key of its own): a tenth of a second instead of a migration.
    with migrated_postgres() as database_url:
        the_stage = Stage(repo_root, database_url)
        done = gateway("create-org", "acme", env=the_stage.env(REDIS_URL), cwd=repo_root)
        assert done.returncode == 0, done.stderr
        try:
            yield the_stage
        finally:
            for node in the_stage.nodes:
                # The whole process group: with --workers 2, Sanic's workers are children
                # that would outlive a SIGKILL of their manager.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(node.proc.pid, signal.SIGKILL)
                node.proc.wait(timeout=10)


class Dashboard:
    """A JSON-channel client that reconnects (rotating over ``urls``) and resumes."""

    def __init__(self, urls: list[str], token: str) -> None:
        self.urls = urls
        self.token = token
        self.events: list[dict[str, Any]] = []
        self.closes: list[int | None] = []
        self.connections = 0
        self.ws: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def positions(self) -> list[int]:
        return [event["position"] for event in self.events]

    @property
    def last(self) -> int | None:
        return self.events[-1]["position"] if self.events else None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def subscribed(self, timeout: float = 15) -> None:
        """Wait until the current connection's stream is open."""
        deadline = time.monotonic() + timeout
        while self.ws is None:
            assert time.monotonic() < deadline, "the dashboard never subscribed"
            await asyncio.sleep(0.02)

    async def _run(self) -> None:
        for n in itertools.count():
            url = self.urls[n % len(self.urls)]
            try:
                self.closes.append(await self._follow(url))
            except websockets.ConnectionClosed as exc:
                self.closes.append(exc.rcvd.code if exc.rcvd else None)
            except (OSError, websockets.InvalidHandshake):
                self.closes.append(None)
            self.ws = None
            await asyncio.sleep(0.05)

    async def _follow(self, url: str) -> int | None:
        async with websockets.connect(url, open_timeout=5, close_timeout=1) as ws:
            await ws.send(orjson.dumps({"type": "auth", "token": self.token}).decode())
            assert orjson.loads(await ws.recv())["type"] == "authenticated"
            request = {"type": "subscribe", "id": "d", "topics": ["customers"]}
            if self.last is not None:
                request["after"] = self.last
            await ws.send(orjson.dumps(request).decode())
            self.connections += 1
            async for raw in ws:
                message = orjson.loads(raw)
                if message["type"] == "subscribed":
                    self.ws = ws
                elif message["type"] == "event":
                    self.events.append(message["event"])
                elif message["type"] == "error":
                    raise AssertionError(f"the stream refused to resume: {message}")
        return ws.close_code

    async def holds(self, positions: list[int], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while self.positions[: len(positions)] != positions or len(self.positions) < len(positions):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        # Exactly the committed events, in position order: no gap, no repeat.
        assert self.positions == positions, _diff(self.positions, positions)

    async def reaches(self, positions: list[int], timeout: float = 20) -> None:
        """Like ``holds`` while writes go on: ``positions`` (what was committed a moment
        ago) first, exactly, then only later positions, in order, none repeated."""
        deadline = time.monotonic() + timeout
        while self.positions[: len(positions)] != positions:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        seen = list(self.positions)
        assert seen[: len(positions)] == positions, _diff(seen[: len(positions)], positions)
        later = seen[len(positions) :]
        assert later == sorted(set(later)), _diff(seen, positions)
        assert not later or not positions or later[0] > positions[-1], _diff(seen, positions)


def _diff(got: list[int], want: list[int]) -> str:
    repeats = sorted({p for p in got if got.count(p) > 1})
    missing = sorted(set(want) - set(got))
    return f"got {len(got)} want {len(want)}; repeated {repeats[:10]} missing {missing[:10]}"


class Writer:
    """Creates customers through REST, each once (Idempotency-Key), on any live gateway."""

    def __init__(self, stage: Stage, nodes: list[Node]) -> None:
        self.stage = stage
        self.nodes = nodes
        self.done = 0

    async def write(self, count: int, pause: float = 0.02) -> None:
        headers = {"Authorization": f"Bearer {self.stage.token}"}
        async with httpx.AsyncClient(timeout=5, headers=headers) as client:
            for _ in range(count):
                key = f"w{next(_keys)}-{uuid.uuid4().hex[:6]}"
                body = {"name": key, "email": f"{key}@example.com"}
                for attempt in itertools.count():
                    node = self.nodes[attempt % len(self.nodes)]
                    try:
                        r = await client.post(
                            f"{node.url}/api/v1/customers",
                            json=body,
                            headers={"Idempotency-Key": key},
                        )
                    except httpx.TransportError:
                        r = None
                    if r is not None and r.status_code == 201:
                        break
                    assert attempt < 200, "no gateway accepted the write"
                    await asyncio.sleep(0.05)
                self.done += 1
                await asyncio.sleep(pause)


async def wait_until(check: Any, timeout: float, what: str) -> float:
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < timeout, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return time.monotonic() - began


@contextlib.asynccontextmanager
async def dashboards(urls: list[list[str]], token: str) -> AsyncIterator[list[Dashboard]]:
    them = [Dashboard(u, token) for u in urls]
    for dashboard in them:
        dashboard.start()
    try:
        for dashboard in them:
            await dashboard.subscribed()
        yield them
    finally:
        for dashboard in them:
            await dashboard.stop()


async def test_a_write_on_one_host_reaches_subscribers_on_the_other_and_every_worker(stage):
    two_workers = stage.start(workers=2)
    other_host = stage.start()
    stage.login(other_host)
    urls = [[two_workers.ws]] * 4 + [[other_host.ws]] * 2
    async with dashboards(urls, stage.token) as them:
        writer = Writer(stage, [two_workers, other_host])
        await writer.write(20, pause=0)
        committed = await stage.committed()
        assert len(committed) == 20
        for dashboard in them:
            await dashboard.holds(committed)


async def test_a_client_that_keeps_dropping_its_socket_misses_nothing(stage):
    node = stage.start()
    stage.login(node)
    async with dashboards([[node.ws]], stage.token) as (dashboard,):
        writer = Writer(stage, [node])
        writing = asyncio.create_task(writer.write(60, pause=0.01))
        while not writing.done():
            await asyncio.sleep(0.15)
            if dashboard.ws is not None:
                await dashboard.ws.close()  # the client side goes away mid-stream
        await writing
        await dashboard.holds(await stage.committed())
        assert dashboard.connections > 3


async def test_a_worker_killed_mid_stream_its_clients_resume_on_the_survivor(stage):
    node = stage.start(workers=2)
    stage.login(node)
    async with dashboards([[node.ws]] * 6, stage.token) as them:
        writer = Writer(stage, [node])
        writing = asyncio.create_task(writer.write(80, pause=0.01))
        await wait_until(lambda: writer.done >= 20, 30, "the first writes")
        os.kill(_a_worker_with_sockets(node), signal.SIGKILL)
        await writing
        committed = await stage.committed()
        assert len(committed) == 80
        for dashboard in them:
            await dashboard.holds(committed, timeout=30)
        assert any(d.connections > 1 for d in them), "no dashboard was on the killed worker"


def _a_worker_with_sockets(node: Node) -> int:
    for _ in range(50):
        ready = node.readyz()
        if ready["realtime"]["connections"]:
            pid: int = ready["worker"]["pid"]
            return pid
    raise AssertionError("no worker reported a connection")


async def test_redis_restarted_mid_stream_loses_nothing(stage, tmp_path):
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        pytest.fail("redis-server is needed for this test (it is on the services machines)")
    port = free_port()
    command = [
        redis_server,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(tmp_path),
    ]
    redis = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        private = f"redis://127.0.0.1:{port}/0"
        await wait_until(lambda: _answers(port), 10, "the private Redis")
        writes_on, reads_on = stage.start(redis_url=private), stage.start(redis_url=private)
        stage.login(writes_on)
        urls = [[reads_on.ws]] * 3 + [[writes_on.ws]]
        async with dashboards(urls, stage.token) as them:
            writer = Writer(stage, [writes_on])
            writing = asyncio.create_task(writer.write(60, pause=0.02))
            await wait_until(lambda: writer.done >= 20, 30, "the first writes")
            redis.kill()
            redis.wait()
            # Writes go on while Redis is away, and each host delivers them from its
            # own change log meanwhile, this one and the other.
            await wait_until(lambda: writer.done >= 35, 30, "writes while Redis is away")
            during = await stage.committed()
            for dashboard in them:  # the writer goes on meanwhile: more may have arrived
                await dashboard.reaches(during, timeout=10)
            redis = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            await writing  # and across hosts again once Redis is back
            committed = await stage.committed()
            assert len(committed) == 60
            for dashboard in them:
                await dashboard.holds(committed, timeout=30)
    finally:
        redis.kill()
        redis.wait()


def _answers(port: int) -> bool:
    import socket

    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


async def test_the_relay_s_process_dies_and_another_takes_over(stage):
    first, second = stage.start(), stage.start()
    stage.login(first)
    leaders = [n for n in (first, second) if n.readyz()["realtime"]["relay"] == "leading"]
    assert len(leaders) == 1, "exactly one relay works at a time"
    (leader,) = leaders
    (survivor,) = [n for n in (first, second) if n is not leader]
    async with dashboards([[survivor.ws]] * 2 + [[leader.ws, survivor.ws]], stage.token) as them:
        writer = Writer(stage, [survivor])
        writing = asyncio.create_task(writer.write(50, pause=0.02))
        await wait_until(lambda: writer.done >= 15, 30, "the first writes")
        leader.proc.kill()
        took = await wait_until(
            lambda: survivor.readyz()["realtime"]["relay"] == "leading", 10, "a new relay"
        )
        assert took < 5
        await writing
        committed = await stage.committed()
        for dashboard in them:
            await dashboard.holds(committed, timeout=30)


async def test_sigterm_closes_sockets_with_1001_and_clients_resume_elsewhere(stage, tmp_path):
    logs = {}
    for _ in range(2):
        log = tmp_path / f"gateway-{len(logs)}.log"
        logs[stage.start(log=log).port] = log
    # The host that leaves is the one running the relay: it hands it over.
    (leaving,) = [n for n in stage.nodes if n.readyz()["realtime"]["relay"] == "leading"]
    (staying,) = [n for n in stage.nodes if n is not leaving]
    log = logs[leaving.port]
    stage.login(staying)
    async with dashboards([[leaving.ws, staying.ws]], stage.token) as (dashboard,):
        writer = Writer(stage, [staying])
        await writer.write(5, pause=0)
        leaving.proc.send_signal(signal.SIGTERM)
        await wait_until(lambda: dashboard.closes, 15, "the socket to close")
        assert dashboard.closes[0] == 1001
        took = await wait_until(
            lambda: staying.readyz()["realtime"]["relay"] == "leading", 10, "the relay"
        )
        assert took < 5
        await writer.write(5, pause=0)
        await dashboard.holds(await stage.committed())
        assert leaving.proc.wait(timeout=15) == 0
    # Every step stopped in time: the relay too (redis-py once swallowed its
    # cancellation, and the worker never reached the 1001 closes).
    said = log.read_text()
    for bad in ("did not finish within", "Event loop stopped", "Task was destroyed", "Traceback"):
        assert bad not in said, said


async def test_a_token_revoked_on_one_host_closes_its_sockets_on_another_within_a_second(stage):
    revoking, holding = stage.start(), stage.start()
    stage.login(revoking)
    doomed = stage.new_token(revoking)
    async with dashboards([[holding.ws]], doomed) as (dashboard,):
        began = time.monotonic()
        reply = httpx.post(
            f"{revoking.url}/oauth/revoke", data={"token": doomed}, auth=stage.client, timeout=5
        )
        assert reply.status_code == 200, reply.text
        await wait_until(lambda: dashboard.closes, 5, "the socket to close")
        assert time.monotonic() - began < 1.0
        assert dashboard.closes[0] == 4403
