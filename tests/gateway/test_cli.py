"""The `gateway` command as an operator runs it: real processes, real databases."""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import BACKEND, POSTGRES_URL
from tests.processes import clean_env, free_port, gateway, start_serving

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def demo_token(port: int, cwd: Path) -> str:
    """What the banner tells a newcomer to do: client credentials from the demo file."""
    creds = json.loads((cwd / "var" / "demo-credentials.json").read_text())
    r = httpx.post(
        f"http://127.0.0.1:{port}/oauth/token",
        auth=(creds["client_id"], creds["client_secret"]),
        data={"grant_type": "client_credentials"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PAGE_SIZE_MAX", "lots"),
        ("DATABASE_URL", "mysql://x/y"),
        ("PORT", "99999"),
        ("LOG_LEVEL", "LOUD"),
        ("REDIS_URL", "http://x"),
    ],
)
def test_a_bad_setting_stops_with_one_line_naming_it(tmp_path, name, value):
    result = gateway("migrate", env=clean_env(**{name: value}), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"configuration error: {name}")
    assert "Traceback" not in result.stderr


def test_production_refuses_a_plain_http_token_issuer(tmp_path):
    result = gateway(
        "migrate", env=clean_env(ENVIRONMENT="production", PUBLIC_URL="http://api.example.com"),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "must be an https:// URL" in result.stderr
    assert "Traceback" not in result.stderr


SECRET = "pw-" + uuid.uuid4().hex


@pytest.mark.parametrize(
    "env",
    [
        # a rule across settings fails: production with a plain http issuer
        {
            "ENVIRONMENT": "production",
            "PUBLIC_URL": "http://api.example.com",
            "DATABASE_URL": f"postgres://app:{SECRET}@127.0.0.1:1/app",
            "REDIS_URL": f"redis://:{SECRET}@127.0.0.1:1/0",
            "SENTRY_DSN": f"https://{SECRET}@sentry.test/1",
        },
        # one secret-bearing setting is itself invalid
        {"DATABASE_URL": f"mysql://app:{SECRET}@127.0.0.1/app"},
        {"REDIS_URL": f"http://:{SECRET}@127.0.0.1:1/0"},
        {"BUS_URL": f"kafka://:{SECRET}@127.0.0.1:1"},
        {"EXTERNAL_ISSUERS": f'[{{"issuer": "x", "jwks_uri": "{SECRET}", "audience": 5}}]'},
        # valid settings, but the database refuses: startup fails later
        {"DATABASE_URL": f"postgres://app:{SECRET}@127.0.0.1:1/app"},
    ],
    ids=["cross-setting", "database-url", "redis-url", "bus-url", "issuers", "unreachable"],
)
def test_a_failed_start_never_prints_a_secret(tmp_path, env):
    result = gateway("serve", "--port", str(free_port()), env=clean_env(**env), cwd=tmp_path)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert output.strip(), "a failed start says why"
    assert SECRET not in output


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://"))
    try:
        rows = await conn.fetch("select tablename from pg_tables where schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


@pytest.mark.postgres_only
async def test_migrate_brings_an_empty_postgres_database_to_the_schema(tmp_path):
    admin = await asyncpg.connect(POSTGRES_URL.replace("postgres://", "postgresql://"))
    name = f"gateway_migrate_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
    try:
        assert await _tables(url) == set()
        result = gateway("migrate", env=clean_env(DATABASE_URL=url), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "schema is up to date" in result.stderr
        expected = {
            "organizations",
            "customers",
            "products",
            "orders",
            "order_items",
            "events",
            "idempotency_records",
        }
        assert expected <= await _tables(url)
        again = gateway("migrate", env=clean_env(DATABASE_URL=url), cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        seeded = gateway(
            "seed",
            "--org",
            "cli",
            "--customers",
            "5",
            "--products",
            "5",
            "--orders",
            "20",
            env=clean_env(DATABASE_URL=url),
            cwd=tmp_path,
        )
        assert seeded.returncode == 0, seeded.stderr
        conn = await asyncpg.connect(url.replace("postgres://", "postgresql://"))
        try:
            assert await conn.fetchval("select count(*) from orders") == 20
            assert await conn.fetchval("select count(*) from order_items") >= 20
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def test_migrate_and_seed_on_the_embedded_default(tmp_path):
    result = gateway("migrate", env=clean_env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "var" / "gateway.sqlite3").exists()
    seeded = gateway(
        "seed",
        "--org",
        "cli",
        "--customers",
        "3",
        "--products",
        "4",
        "--orders",
        "10",
        env=clean_env(),
        cwd=tmp_path,
    )
    assert seeded.returncode == 0, seeded.stderr
    assert "'orders': 10" in seeded.stderr


@pytest.mark.skipif(BACKEND != "embedded", reason="the embedded default is what a newcomer runs")
def test_serve_on_the_embedded_default_answers_a_first_request(tmp_path):
    port = free_port()
    proc = start_serving(port, tmp_path, LOG_LEVEL="WARNING")
    try:
        creds_file = tmp_path / "var" / "demo-credentials.json"
        assert creds_file.stat().st_mode & 0o077 == 0  # the secret is readable by its owner only
        token = demo_token(port, tmp_path)
        r = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/orders?page_size=5",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
        assert r.status_code == 200, r.text
        assert len(r.json()["data"]) == 5
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/orders", timeout=5).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert f"http://127.0.0.1:{port}" in stderr
    client_id = json.loads(creds_file.read_text())["client_id"]
    assert f"curl -s -u {client_id}:" in stderr  # the banner's curl example
    assert "/oauth/token" in stderr


def test_access_log_is_one_json_line_per_request_with_its_request_id(tmp_path):
    port = free_port()
    proc = start_serving(port, tmp_path, LOG_LEVEL="INFO", LOG_FORMAT="json")
    try:
        token = demo_token(port, tmp_path)
        r = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/customers?page_size=1",
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "trace-42"},
            timeout=5,
        )
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=30)
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    access = [entry for entry in lines if entry.get("logger") == "gateway.access"]
    mine = [entry for entry in access if entry["request_id"] == "trace-42"]
    assert len(mine) == 1
    entry = mine[0]
    assert entry["method"] == "GET"
    assert entry["path"] == "/api/v1/customers"
    assert entry["status"] == 200
    assert entry["duration_ms"] >= 0
    assert entry["principal"].startswith("client:demo-cli@")
    assert "Authorization" not in stdout  # credentials never reach the logs
    assert token not in stdout
    assert token.split(".")[2] not in stdout
