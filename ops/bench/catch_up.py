# Run from the checkout: .venv/bin/python ops/bench/catch_up.py [--events N]
"""Catch-up rate: events per second replayed to one client that resumes far behind.

Starts ``gateway serve`` (one worker, PostgreSQL database ``gateway_catchup``, Redis)
as an operator does, writes one customer through REST and copies its change event
``--events`` times in SQL, lets the relay number them, then, for each transport,
resumes from before them with one client and times the replay. Prints events/s and
the server's RSS and peak RSS (``VmHWM``) after each transport.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests import factories  # noqa: E402
from tests.processes import clean_env, free_port  # noqa: E402
from tests.realtime.test_long_catch_up import TRANSPORTS  # noqa: E402

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
DB = f"{PG}/gateway_catchup"


def memory(pid: int) -> str:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return f"RSS {fields['VmRSS'].strip()}, peak {fields['VmHWM'].strip()}"


def run(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


SETTINGS = {
    "DATABASE_URL": DB,
    "REDIS_URL": REDIS,
    "AUTO_MIGRATE": "true",
    "SEED_DEMO": "false",
    "LOG_LEVEL": "WARNING",
    "ACCESS_LOG": "false",
    "ACCESS_TOKEN_TTL_SECONDS": "3600",
    "RATE_LIMITS_ENABLED": "false",
}


async def fresh_database() -> None:
    admin = await asyncpg.connect(f"{PG}/postgres")
    await admin.execute("DROP DATABASE IF EXISTS gateway_catchup WITH (FORCE)")
    await admin.execute("CREATE DATABASE gateway_catchup")
    await admin.close()


async def all_numbered(db: asyncpg.Connection) -> None:
    for _ in range(100_000):
        if not await db.fetchval("SELECT count(*) FROM events WHERE position IS NULL"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the relay did not number the events")


async def copy_events(count: int) -> tuple[int, int]:
    """``count`` copies of the newest event, numbered; (position before them, organization)."""
    db = await asyncpg.connect(DB)
    try:
        await all_numbered(db)
        after = await db.fetchval("SELECT max(position) FROM events")
        template = await db.fetchval("SELECT max(id) FROM events")
        org_id = await db.fetchval("SELECT organization_id FROM events WHERE id = $1", template)
        await db.execute(
            "INSERT INTO events (organization_id, type, resource, resource_id, actor, snapshot,"
            " created_at) SELECT organization_id, type, resource, resource_id, actor, snapshot,"
            " created_at FROM events, generate_series(1, $1) WHERE id = $2",
            count,
            template,
        )
        await all_numbered(db)
        return int(after), int(org_id)
    finally:
        await db.close()


def start_gateway(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return server, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the gateway did not start")


async def replay(base: str, token: str, org_id: int, after: int, count: int, pid: int) -> None:
    factories.TOKENS.mint = lambda *_, **__: token  # type: ignore[method-assign]
    fake_server = SimpleNamespace(base_url=base)
    tenant = SimpleNamespace(id=org_id)

    async def nothing() -> None:
        return None

    for name, read in TRANSPORTS.items():
        began = time.perf_counter()
        got = await read(fake_server, tenant, after, count, nothing)
        took = time.perf_counter() - began
        assert got == list(range(after + 1, after + count + 1)), name
        print(f"  {name:22s} {count / took:9,.0f} events/s  ({took:5.1f} s)  server {memory(pid)}")


def main(count: int) -> None:
    asyncio.run(fresh_database())
    env = clean_env(**SETTINGS)
    run("migrate", env=env)
    run("create-org", "bench", "--name", "Bench", env=env)
    made = run("create-client", "bench", "catch-up", "--role", "owner", env=env)
    fields = dict(line.split("=", 1) for line in made.splitlines() if "=" in line)
    server, base = start_gateway(env)
    try:
        token = httpx.post(
            f"{base}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(fields["client_id"], fields["client_secret"]),
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        body = {"name": "template", "email": "template@example.com"}
        assert httpx.post(f"{base}/api/v1/customers", json=body, headers=headers).is_success
        after, org_id = asyncio.run(copy_events(count))
        print(f"gateway {base} (pid {server.pid}): {count:,} events")
        print(f"  before: {memory(server.pid)}")
        asyncio.run(replay(base, token, org_id, after, count, server.pid))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    main(parser.parse_args().events)
