"""Revocation through Redis faults, with real gateway processes (PostgreSQL + a Redis of
the test's own, never the shared one).

- Revoking while Redis is down answers 200; the revoking host refuses the token at
  once, the other host refuses it and closes its open socket (it reads the database
  while Redis is away, and again when Redis is back).
- The first revocation and the first stream ticket after a Redis restart succeed
  (the client reconnects instead of failing once); a ticket while Redis is down is a
  503 ``UNAVAILABLE`` problem, not a 500.
- A host started after Redis restarted empty refuses a token revoked before.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.factories import assert_problem
from tests.private_redis import PrivateRedis, private_redis, proxy_to
from tests.processes import clean_env, free_port, gateway

pytestmark = pytest.mark.postgres_only

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
PROBE = "/api/v1/products"
BURST = 8


@dataclass
class Hosts:
    """A database of its own, one organization and client, and the gateways started."""

    root: Path
    database_url: str
    redis: PrivateRedis
    redis_url: str  # the gateways reach Redis through a proxy, as through a container port
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    client: tuple[str, str] = ("", "")

    def env(self) -> dict[str, str]:
        # Hosts share AUTH_ISSUER, or they refuse each other's tokens.
        return clean_env(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            AUTO_MIGRATE="false",
            SEED_DEMO="false",
            LOG_LEVEL="WARNING",
            ACCESS_LOG="false",
            AUTH_ISSUER="http://gateway.test",
            ACCESS_TOKEN_TTL_SECONDS="3600",
        )

    def start(self) -> str:
        """A ``gateway serve`` host; its base URL once it is ready."""
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--port", str(port)],
            env=self.env(),
            cwd=self.root,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError, ValueError):
                if httpx.get(f"{url}/readyz", timeout=3).json().get("status") == "ok":
                    return url
            assert proc.poll() is None, "the gateway exited at startup"
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.2)

    def token(self, host: str) -> str:
        reply = httpx.post(
            f"{host}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=self.client,
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
        token: str = reply.json()["access_token"]
        return token

    def revoke(self, host: str, token: str) -> httpx.Response:
        return httpx.post(
            f"{host}/oauth/revoke", data={"token": token}, auth=self.client, timeout=30
        )


@pytest.fixture
def hosts(repo_root: Path, tmp_path: Path) -> Iterator[Hosts]:
    name = f"gateway_revocations_{uuid.uuid4().hex[:10]}"
    admin = POSTGRES_URL.rsplit("/", 1)[0] + "/postgres"
    subprocess.run(["psql", "-q", admin, "-c", f'CREATE DATABASE "{name}"'], check=True)
    with private_redis(tmp_path) as redis, proxy_to(redis) as proxy:
        base = POSTGRES_URL.rsplit("/", 1)[0]
        them = Hosts(repo_root, f"{base}/{name}", redis, proxy.url)
        env = them.env()
        for command in (("migrate",), ("create-org", "acme")):
            done = gateway(*command, env=env, cwd=repo_root)
            assert done.returncode == 0, done.stderr
        made = gateway(
            "create-client", "acme", "dashboards", "--role", "owner", env=env, cwd=repo_root
        )
        assert made.returncode == 0, made.stderr
        fields = dict(line.split("=", 1) for line in made.stdout.splitlines() if "=" in line)
        them.client = (fields["client_id"], fields["client_secret"])
        try:
            yield them
        finally:
            for proc in them.procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
    subprocess.run(
        ["psql", "-q", admin, "-c", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], check=False
    )


def status(host: str, token: str) -> int:
    return httpx.get(
        f"{host}{PROBE}", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).status_code


async def stream(host: str, token: str) -> ClientConnection:
    """A JSON-channel socket following ``products`` under ``token``."""
    ws = await websockets.connect(host.replace("http://", "ws://") + "/api/v1/realtime")
    await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
    assert orjson.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "authenticated"
    await ws.send(orjson.dumps({"type": "subscribe", "id": "p", "topics": ["products"]}).decode())
    assert orjson.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "subscribed"
    return ws


async def refused_on_socket(host: str, token: str) -> int | None:
    """The close code a new socket gets for ``token`` (None: it was accepted)."""
    async with websockets.connect(host.replace("http://", "ws://") + "/api/v1/realtime") as ws:
        await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
        with contextlib.suppress(websockets.ConnectionClosed):
            reply = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
            if reply["type"] == "authenticated":
                return None
        await asyncio.wait_for(ws.wait_closed(), 10)
        return ws.close_code


def ticket(host: str, token: str) -> httpx.Response:
    return httpx.post(
        f"{host}/api/v1/events/tickets", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


async def test_revoking_while_redis_is_down_answers_200_and_every_host_refuses_the_token(hosts):
    revoking, holding = hosts.start(), hosts.start()
    doomed, spared = hosts.token(revoking), hosts.token(revoking)
    ws = await stream(holding, doomed)
    try:
        hosts.redis.stop()
        reply = hosts.revoke(revoking, doomed)
        assert reply.status_code == 200, reply.text
        assert status(revoking, doomed) == 401  # at once, on the host that revoked it
        assert status(revoking, spared) == 200
        assert_problem(ticket(revoking, spared), 503, "UNAVAILABLE")
        hosts.redis.start()  # empty: it never heard of the revocation
        # The other host closes the socket: from the database (read while Redis was
        # away, and again once its subscription is back). The deadline only guards a hang.
        await asyncio.wait_for(ws.wait_closed(), 30)
        assert ws.close_code == 4403
        assert status(holding, doomed) == 401
        assert await refused_on_socket(holding, doomed) == 4403
        assert status(holding, spared) == 200
    finally:
        await ws.close()
    # and the next revocation travels through Redis again
    ws = await stream(holding, spared)
    try:
        assert hosts.revoke(revoking, spared).status_code == 200
        await asyncio.wait_for(ws.wait_closed(), 30)
        assert ws.close_code == 4403
    finally:
        await ws.close()


async def burst(urls: list[str], token: str, **form: str) -> set[int]:
    """POST to every URL at once (with Basic client auth when ``form`` is given)."""
    async with httpx.AsyncClient(timeout=30) as http:
        bearer = {"Authorization": f"Bearer {token}"}
        replies = await asyncio.gather(
            *(http.post(url, headers=bearer, data=form or None) for url in urls)
        )
    for reply in replies:
        assert reply.status_code < 500, reply.text
    return {reply.status_code for reply in replies}


async def test_after_redis_restarts_empty_first_calls_succeed_and_new_hosts_refuse(hosts):
    first = hosts.start()
    revoked, streaming = hosts.token(first), hosts.token(first)
    laters = [hosts.token(first) for _ in range(BURST)]
    assert hosts.revoke(first, revoked).status_code == 200
    tickets = [f"{first}/api/v1/events/tickets"] * BURST
    # A burst: the pool now holds several connections to Redis ...
    assert await burst(tickets, streaming) == {201}
    hosts.redis.stop()
    hosts.redis.start()  # ... that a restart (without persistence: it holds nothing) closed.
    # The first commands on them fail; the client reconnects and sends them again.
    assert await burst(tickets, streaming) == {201}
    async with httpx.AsyncClient(timeout=30, auth=hosts.client) as http:
        replies = await asyncio.gather(
            *(http.post(f"{first}/oauth/revoke", data={"token": t}) for t in laters)
        )
    assert {reply.status_code for reply in replies} == {200}, [r.text for r in replies]

    started_after = hosts.start()
    for host in (first, started_after):
        for token in (revoked, *laters):
            assert status(host, token) == 401
    for token in (revoked, laters[0]):
        assert await refused_on_socket(started_after, token) == 4403
    assert status(started_after, streaming) == 200
