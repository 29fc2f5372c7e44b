"""The `gateway` command as an operator runs it: real processes, real databases."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from gateway.cli import _parser
from tests.conftest import BACKEND, POSTGRES_URL, REDIS_URL
from tests.processes import clean_env, free_port, gateway, start_serving
from tests.served import migrated_postgres, migrated_sqlite

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
@pytest.mark.backend_independent
def test_a_bad_setting_stops_with_one_line_naming_it(tmp_path, name, value):
    result = gateway("migrate", env=clean_env(**{name: value}), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"configuration error: {name}")
    assert "Traceback" not in result.stderr


@pytest.mark.backend_independent
def test_production_refuses_a_plain_http_token_issuer(tmp_path):
    result = gateway(
        "migrate",
        env=clean_env(ENVIRONMENT="production", PUBLIC_URL="http://api.example.com"),
        cwd=tmp_path,
    )
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
@pytest.mark.backend_independent
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


@pytest.mark.backend_independent
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
    assert "orders=10" in seeded.stdout.splitlines()


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


@pytest.mark.backend_independent
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


# --- a CLI that scripts well: stdout/stderr, --json, exit codes, list/delete, validation ----


@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a fresh, migrated gateway database: an embedded SQLite file,
    or on the services pass a new PostgreSQL database with Redis."""
    if BACKEND != "services":
        migrated_sqlite(tmp_path / "var" / "gateway.sqlite3")  # where the default puts it
        yield clean_env(SEED_DEMO="false")
        return
    with migrated_postgres() as url:
        yield clean_env(SEED_DEMO="false", DATABASE_URL=url, REDIS_URL=REDIS_URL)


def ok(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = gateway(*args, env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def refused(cwd: Path, env: dict[str, str], code: int, *args: str) -> str:
    """The one error line of a command that must fail with ``code`` and print no result."""
    result = gateway(*args, env=env, cwd=cwd)
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    if lines[-1].startswith("error: "):
        assert len(lines) == 1, result.stderr
    else:  # argparse: its usage line, then the error
        assert code == 2
        assert lines[0].startswith("usage: gateway")
        assert ": error: " in lines[-1], result.stderr
    return lines[-1]


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)  # one document, nothing else on stdout


async def count(env: dict[str, str], cwd: Path, sql: str) -> int:
    url = env.get("DATABASE_URL")
    if url is None:
        with sqlite3.connect(cwd / "var" / "gateway.sqlite3") as db:
            return int(db.execute(sql).fetchone()[0])
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://"))
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def execute(env: dict[str, str], cwd: Path, *statements: str) -> None:
    url = env.get("DATABASE_URL")
    if url is None:
        with sqlite3.connect(cwd / "var" / "gateway.sqlite3") as db:
            for statement in statements:
                db.execute(statement)
        return
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://"))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.mark.backend_independent
def test_version_comes_from_the_package_metadata(tmp_path):
    result = gateway("--version", env=clean_env(), cwd=tmp_path, fresh=True)
    assert result.returncode == 0
    assert result.stdout == f"gateway {version('commerce-gateway')}\n"


@pytest.mark.backend_independent
def test_every_option_has_help_and_help_shows_defaults(tmp_path):
    parser = _parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    usage = gateway("--help", env=clean_env(), cwd=tmp_path)
    assert usage.returncode == 0
    for name in commands.choices:
        assert name in usage.stdout
    assert "Exit codes: 0 done, 1 failed, 2 usage" in " ".join(usage.stdout.split())
    seed = " ".join(gateway("seed", "--help", env=clean_env(), cwd=tmp_path).stdout.split())
    assert "(default: bench)" in seed
    assert "(default: 20000)" in seed
    user = " ".join(gateway("create-user", "--help", env=clean_env(), cwd=tmp_path).stdout.split())
    assert "(default: staff)" in user
    assert "--json" in user


def test_results_go_to_stdout_and_messages_to_stderr(tmp_path, site):
    made = ok(tmp_path, site, "create-org", "acme", "--name", "Acme Inc")
    assert made.stdout == "acme\n"  # ORG=$(gateway create-org acme) captures the slug
    assert "created organization acme" in made.stderr
    made = ok(tmp_path, site, "create-org", "globex", "--json")
    org = as_json(made)
    assert org["slug"] == "globex"
    assert isinstance(org["id"], int)

    listed = ok(tmp_path, site, "list-orgs")
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["ID", "SLUG", "NAME", "CREATED_AT"]
    assert [row.split()[1] for row in rows] == ["acme", "globex"]
    assert "Acme Inc" in rows[0]
    assert [o["slug"] for o in as_json(ok(tmp_path, site, "list-orgs", "--json"))] == [
        "acme",
        "globex",
    ]

    env = {**site, "GATEWAY_PASSWORD": "a long enough password"}
    assert ok(tmp_path, env, "create-user", "acme", "Ana@Acme.test").stdout == "ana@acme.test\n"
    user = as_json(ok(tmp_path, env, "create-user", "acme", "bo@acme.test", "--json"))
    assert (user["email"], user["role"]) == ("bo@acme.test", "staff")
    client = as_json(ok(tmp_path, site, "create-client", "acme", "erp", "--json"))
    assert client["client_id"].startswith("gw-")
    assert len(client["client_secret"]) >= 40
    key = as_json(
        ok(tmp_path, site, "create-api-key", "acme", "k", "--scope", "products:read", "--json")
    )
    assert key["key"].startswith(f"gwk_{key['key_id']}_")
    rotated = ok(tmp_path, site, "rotate-signing-key")
    kid = rotated.stdout.strip()
    assert f"new signing key {kid}" in rotated.stderr
    assert as_json(ok(tmp_path, site, "rotate-signing-key", "--json"))["kid"] != kid
    seeded = as_json(
        ok(
            tmp_path,
            site,
            "seed",
            "--org",
            "globex",
            "--customers",
            "2",
            "--products",
            "3",
            "--orders",
            "4",
            "--json",
        )
    )
    assert seeded["orders"] == 4
    assert seeded["items"] >= 4


def test_exit_codes_tell_usage_from_failure(tmp_path, site):
    ok(tmp_path, site, "create-org", "acme")
    # 2: the command line or its input is wrong
    assert "invalid choice" in refused(tmp_path, site, 2, "create-orgs", "x")
    assert "required" in refused(tmp_path, site, 2, "create-api-key", "acme", "k")
    assert "slug" in refused(tmp_path, site, 2, "create-org", "Bad Slug!")
    # 1: well formed, but it cannot be done
    assert "no organization 'nope'" in refused(tmp_path, site, 1, "list-users", "nope")
    assert "already exists" in refused(tmp_path, site, 1, "create-org", "acme")
    assert "no client 'gw-nope'" in refused(tmp_path, site, 1, "delete-client", "acme", "gw-nope")
    assert "no user" in refused(tmp_path, site, 1, "delete-user", "acme", "x@acme.test")
    assert "no API key" in refused(tmp_path, site, 1, "delete-api-key", "acme", "abc")
    assert "no organization" in refused(tmp_path, site, 1, "delete-org", "nope")


@pytest.mark.backend_independent
def test_a_database_without_schema_is_one_line_not_a_traceback(tmp_path):
    env = clean_env(SEED_DEMO="false", AUTO_MIGRATE="false")
    (tmp_path / "var").mkdir()
    line = refused(tmp_path, env, 1, "list-orgs")
    assert "gateway migrate" in line


def test_list_and_delete_every_kind(tmp_path, site):
    env = {**site, "GATEWAY_PASSWORD": "a long enough password"}
    ok(tmp_path, env, "create-org", "acme")
    ok(tmp_path, env, "create-org", "empty")
    ok(tmp_path, env, "create-user", "acme", "ana@acme.test", "--role", "admin")
    client = as_json(ok(tmp_path, env, "create-client", "acme", "erp", "--json"))["client_id"]
    key = as_json(
        ok(tmp_path, env, "create-api-key", "acme", "k", "--scope", "products:read", "--json")
    )

    users = as_json(ok(tmp_path, env, "list-users", "acme", "--json"))
    assert [(u["email"], u["role"]) for u in users] == [("ana@acme.test", "admin")]
    assert "password" not in json.dumps(users)
    clients = as_json(ok(tmp_path, env, "list-clients", "acme", "--json"))
    assert [(c["client_id"], c["type"]) for c in clients] == [(client, "confidential")]
    assert "secret" not in json.dumps(clients)
    keys = as_json(ok(tmp_path, env, "list-api-keys", "acme", "--json"))
    assert [(k["key_id"], k["revoked_at"]) for k in keys] == [(key["key_id"], None)]
    assert "secret" not in json.dumps(keys)
    assert ok(tmp_path, env, "list-users", "empty").stdout == ""  # nothing, said on stderr

    # an organization that holds anything is kept unless --force
    held = refused(tmp_path, env, 1, "delete-org", "acme")
    assert "1 users" in held
    assert "--force" in held
    assert ok(tmp_path, env, "delete-org", "empty").stdout == "empty\n"

    assert ok(tmp_path, env, "delete-user", "acme", "ANA@acme.test").stdout == "ana@acme.test\n"
    assert as_json(ok(tmp_path, env, "list-users", "acme", "--json")) == []
    assert ok(tmp_path, env, "delete-client", "acme", client).stdout == f"{client}\n"
    assert as_json(ok(tmp_path, env, "list-clients", "acme", "--json")) == []
    # an API key is revoked, and stays listed as such (as DELETE /api/v1/api-keys/{id} does)
    revoked = as_json(ok(tmp_path, env, "delete-api-key", "acme", key["key"], "--json"))
    assert revoked["revoked_at"] is not None
    keys = as_json(ok(tmp_path, env, "list-api-keys", "acme", "--json"))
    assert keys[0]["revoked_at"] is not None

    ok(
        tmp_path,
        env,
        "seed",
        "--org",
        "acme",
        "--customers",
        "2",
        "--products",
        "2",
        "--orders",
        "3",
    )
    deleted = as_json(ok(tmp_path, env, "delete-org", "acme", "--force", "--json"))
    assert deleted["deleted"]["orders"] == 3
    assert as_json(ok(tmp_path, env, "list-orgs", "--json")) == []
    for table in ("customers", "products", "orders", "order_items", "api_keys", "users"):
        assert await_count(env, tmp_path, f"SELECT count(*) FROM {table}") == 0


def await_count(env: dict[str, str], cwd: Path, sql: str) -> int:
    return asyncio.run(count(env, cwd, sql))


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("create-org", "Bad Slug!"), "lowercase letters, digits and hyphens"),
        (("create-org", "--", "-acme"), "hyphen"),
        (("create-org", "acme-"), "hyphen"),
        (("create-org", "a" * 64), "1 to 63"),
        (("create-org", "acmé"), "lowercase"),
        (("create-org", ""), "empty"),
        (("create-org", "ok", "--name", ""), "organization name"),
        (("create-org", "ok", "--name", "   "), "organization name"),
        (("create-org", "ok", "--name", "a\tb"), "control characters"),
        (("seed", "--org", "Bad Slug!"), "slug"),
        (("create-client", "acme", ""), "client name"),
        (("create-client", "acme", "a\u202eb"), "bidirectional"),
    ],
)
def test_slugs_and_names_are_checked(tmp_path, site, args, says):
    ok(tmp_path, site, "create-org", "acme")
    assert says in refused(tmp_path, site, 2, *args)
    assert [o["slug"] for o in as_json(ok(tmp_path, site, "list-orgs", "--json"))] == ["acme"]


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("notaurl", "not absolute"),
        ("app:/cb", "reverse domain"),
        ("/callback", "not absolute"),
        ("http://example.com/cb", "http is only for"),
        ("http://127.0.0.2.example.com/cb", "http is only for"),
        ("https://x/#frag", "fragment"),
        ("https://app.example.com:99999/cb", "not a valid URI"),
        ("http://[::1/cb", "not a valid URI"),
        ("javascript:alert(1)", "refused"),
    ],
)
def test_redirect_uris_are_refused_by_the_rule_registration_uses(tmp_path, site, uri, says):
    ok(tmp_path, site, "create-org", "acme")
    line = refused(
        tmp_path,
        site,
        2,
        "create-client",
        "acme",
        "spa",
        "--public",
        "--grant",
        "authorization_code",
        "--redirect-uri",
        uri,
    )
    assert says in line
    assert as_json(ok(tmp_path, site, "list-clients", "acme", "--json")) == []


def test_https_loopback_and_native_app_redirect_uris_are_accepted(tmp_path, site):
    ok(tmp_path, site, "create-org", "acme")
    uris = [
        "http://127.0.0.1/cb",
        "http://[::1]:8765/cb",
        "http://localhost:3000/cb",
        "https://app.example.com/callback?x=1",
        "com.example.app:/oauth2redirect",
    ]
    made = as_json(
        ok(
            tmp_path,
            site,
            "create-client",
            "acme",
            "spa",
            "--public",
            "--grant",
            "authorization_code",
            *[arg for uri in uris for arg in ("--redirect-uri", uri)],
            "--json",
        )
    )
    assert made["redirect_uris"] == uris


@pytest.mark.parametrize(
    "counts",
    [
        ("--customers", "0"),
        ("--products", "-1"),
        ("--orders", "1000001"),
        ("--orders", "many"),
        ("--customers", "1.5"),
    ],
)
def test_seed_refuses_bad_counts_and_writes_nothing(tmp_path, site, counts):
    line = refused(tmp_path, site, 2, "seed", "--org", "new", *counts)
    assert counts[0].removeprefix("--") in line
    assert await_count(site, tmp_path, "SELECT count(*) FROM organizations") == 0


def test_seed_is_all_or_nothing(tmp_path, site):
    # A fault injected in the database itself: the last table seeded refuses rows.
    if "DATABASE_URL" in site:
        fault = (
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'injected fault'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse BEFORE INSERT ON order_items "
            "FOR EACH ROW EXECUTE FUNCTION refuse()",
        )
        repair = ("DROP TRIGGER refuse ON order_items",)
    else:
        fault = (
            "CREATE TRIGGER refuse BEFORE INSERT ON order_items "
            "BEGIN SELECT RAISE(ABORT, 'injected fault'); END",
        )
        repair = ("DROP TRIGGER refuse",)
    asyncio.run(execute(site, tmp_path, *fault))
    args = ("seed", "--org", "half", "--customers", "5", "--products", "5", "--orders", "3000")
    line = refused(tmp_path, site, 1, *args)
    assert "injected fault" in line
    for table in ("organizations", "customers", "products", "orders", "order_items"):
        assert await_count(site, tmp_path, f"SELECT count(*) FROM {table}") == 0, table

    asyncio.run(execute(site, tmp_path, *repair))
    seeded = dict(line.split("=") for line in ok(tmp_path, site, *args).stdout.splitlines())
    assert seeded["orders"] == "3000"
    assert await_count(site, tmp_path, "SELECT count(*) FROM orders") == 3000
    # seeding an organization that has data is refused, and adds nothing
    assert "already has customers" in refused(tmp_path, site, 1, *args)
    assert await_count(site, tmp_path, "SELECT count(*) FROM orders") == 3000


def _token(base: str, client_id: str, secret: str) -> str:
    r = httpx.post(
        f"{base}/oauth/token",
        auth=(client_id, secret),
        data={"grant_type": "client_credentials"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _refused_within(url: str, headers: dict[str, str], seconds: float) -> float:
    """How long until a running gateway refuses ``headers`` (401): workers hear of a
    revocation through Redis at once, else read it from the database every 2 s."""
    started = time.monotonic()
    while True:
        status = httpx.get(url, headers=headers, timeout=10).status_code
        if status == 401:
            return time.monotonic() - started
        assert status == 200, status
        assert time.monotonic() - started < seconds, "still accepted"
        time.sleep(0.1)


def test_deleting_a_client_or_key_revokes_what_it_issued(tmp_path, site):
    ok(tmp_path, site, "create-org", "acme")
    made = ok(tmp_path, site, "create-client", "acme", "erp", "--scope", "products:read")
    client = dict(line.split("=", 1) for line in made.stdout.splitlines())
    other = dict(
        line.split("=", 1)
        for line in ok(tmp_path, site, "create-client", "acme", "other").stdout.splitlines()
    )
    key = ok(tmp_path, site, "create-api-key", "acme", "k", "--scope", "products:read").stdout
    key = key.strip()
    server_env = {k: v for k, v in site.items() if k in ("DATABASE_URL", "REDIS_URL")}
    port = free_port()
    proc = start_serving(port, tmp_path, SEED_DEMO="false", LOG_LEVEL="ERROR", **server_env)
    try:
        base = f"http://127.0.0.1:{port}"
        products = f"{base}/api/v1/products"
        token = _token(base, client["client_id"], client["client_secret"])
        kept = _token(base, other["client_id"], other["client_secret"])
        bearer = {"Authorization": f"Bearer {token}"}
        assert httpx.get(products, headers=bearer, timeout=10).status_code == 200  # cached now
        assert httpx.get(products, headers={"X-API-Key": key}, timeout=10).status_code == 200

        ok(tmp_path, site, "delete-client", "acme", client["client_id"])
        took = _refused_within(products, bearer, 10)
        if "REDIS_URL" in site:
            assert took < 2, took  # the notice, not the database poll
        r = httpx.post(
            f"{base}/oauth/token",
            auth=(client["client_id"], client["client_secret"]),
            data={"grant_type": "client_credentials"},
            timeout=10,
        )
        assert r.status_code == 401  # and it gets no new token
        other_bearer = {"Authorization": f"Bearer {kept}"}
        assert httpx.get(products, headers=other_bearer, timeout=10).status_code == 200

        ok(tmp_path, site, "delete-api-key", "acme", key.split("_")[1])
        _refused_within(products, {"X-API-Key": key}, 10)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_deleting_a_user_revokes_the_access_tokens_of_their_sign_ins(tmp_path, site):
    env = {**site, "GATEWAY_PASSWORD": "a long enough password"}
    ok(tmp_path, env, "create-org", "acme")
    user = as_json(ok(tmp_path, env, "create-user", "acme", "ana@acme.test", "--json"))
    org = as_json(ok(tmp_path, env, "list-orgs", "--json"))[0]["id"]
    later, past = "'2099-01-01 00:00:00+00:00'", "'2000-01-01 00:00:00+00:00'"
    rows = [("live", later), ("expired", past)]  # what a code redemption and rotations leave
    inserts = [
        "INSERT INTO oauth_refresh_tokens (token_hash, family, client_id, user_id, "
        "organization_id, scope, access_jti, access_expires_at, created_at, expires_at) "
        f"VALUES ('{jti}-hash', 'f', 'gw-x', {user['id']}, {org}, 'products:read', "
        f"'{jti}-jti', {expires}, {past}, {later})"
        for jti, expires in rows
    ]
    asyncio.run(execute(env, tmp_path, *inserts))
    ok(tmp_path, env, "delete-user", "acme", "ana@acme.test")
    denied = "SELECT count(*) FROM revocations WHERE credential_id = '{}'"
    assert await_count(env, tmp_path, denied.format("live-jti")) == 1
    assert await_count(env, tmp_path, denied.format("expired-jti")) == 0  # refused anyway
    assert await_count(env, tmp_path, "SELECT count(*) FROM oauth_refresh_tokens") == 0
