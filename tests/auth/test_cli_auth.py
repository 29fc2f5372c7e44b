"""Setting up auth from the command line, then using what it printed against a real server.

``gateway create-org``, ``create-user`` (password from ``GATEWAY_PASSWORD``),
``create-client`` (client id and secret printed once), ``create-api-key`` (the key
printed once) and ``rotate-signing-key`` run as processes, with a clean environment,
on an embedded database in a temporary directory (whatever backend the rest of the
suite uses). A ``gateway serve`` process on that database then issues a token for
the printed client credentials, signed with the rotated-in key, and accepts the API
key, each within its scopes. Secrets reach the database only as hashes. Bad input
ends with exit code 2, a well-formed request that cannot be done (an unknown
organization, a taken name) with 1; each with one clear line, never a traceback,
and no secret.
"""

from __future__ import annotations

import base64
import json
import signal
import sqlite3
from pathlib import Path

import httpx
import pytest

from db.catalog import ALL_SCOPES
from db.principal import PRIVILEGED
from tests.processes import clean_env, free_port, gateway, start_serving

# An embedded database in a temporary directory whatever the pass: once, in the embedded one.
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.backend_independent,
]

PASSWORD = "a long enough password"


def run(cwd: Path, *args: str, **env: str) -> tuple[str, str]:
    result = gateway(*args, env=clean_env(SEED_DEMO="false", **env), cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout, result.stderr


def fails(cwd: Path, *args: str, code: int = 2, **env: str) -> str:
    """The one line a refused command prints (exit code ``code``: 2 for bad input, 1
    for what cannot be done; nothing on stdout)."""
    result = gateway(*args, env=clean_env(SEED_DEMO="false", **env), cwd=cwd)
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""  # no half-made secret
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def database(cwd: Path) -> str:
    return (cwd / "var" / "gateway.sqlite3").read_bytes().decode("latin-1")


def kid_of(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def test_cli_credentials_work_against_a_running_server(tmp_path: Path) -> None:
    run(tmp_path, "migrate")
    run(tmp_path, "create-org", "acme", "--name", "Acme")
    run(tmp_path, "create-org", "globex")
    _, said = run(
        tmp_path,
        "create-user",
        "acme",
        "Ana@Acme.test",
        "--role",
        "staff",
        GATEWAY_PASSWORD=PASSWORD,
    )
    assert "ana@acme.test" in said
    assert PASSWORD not in said

    printed, said = run(
        tmp_path,
        "create-client",
        "acme",
        "ERP sync",
        "--role",
        "staff",
        "--scope",
        "products:read",
        "--scope",
        "products:write",
    )
    lines = printed.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == ["client_id", "client_secret"]
    client = dict(line.split("=", 1) for line in lines)
    assert client["client_id"]
    assert len(client["client_secret"]) >= 40
    assert client["client_secret"] not in said
    assert "not shown again" in said

    printed, said = run(tmp_path, "create-api-key", "acme", "sync", "--scope", "products:read")
    key = printed.strip()
    assert printed.count("\n") == 1
    assert key.startswith("gwk_")
    assert key not in said
    _, said = run(tmp_path, "create-api-key", "globex", "theirs", "--scope", "products:read")
    first, _ = run(tmp_path, "rotate-signing-key")
    printed, said = run(tmp_path, "rotate-signing-key")  # the first key is retired
    newest = printed.strip()
    assert f"new signing key {newest};" in said
    assert newest != first.strip()

    stored = database(tmp_path)
    for secret in (client["client_secret"], key, key.split("_", 2)[2], PASSWORD):
        assert secret not in stored  # hashes only

    port = free_port()
    proc = start_serving(port, tmp_path, SEED_DEMO="false", LOG_LEVEL="WARNING")
    try:
        base = f"http://127.0.0.1:{port}"
        r = httpx.post(
            f"{base}/oauth/token",
            auth=(client["client_id"], client["client_secret"]),
            data={"grant_type": "client_credentials"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        issued = r.json()
        assert issued["scope"] == "products:read products:write"
        assert kid_of(issued["access_token"]) == newest  # signed with the rotated-in key
        wrong = httpx.post(
            f"{base}/oauth/token",
            auth=(client["client_id"], client["client_secret"] + "x"),
            data={"grant_type": "client_credentials"},
            timeout=10,
        )
        assert wrong.status_code == 401

        bearer = {"Authorization": f"Bearer {issued['access_token']}"}
        created = httpx.post(
            f"{base}/api/v1/products",
            headers=bearer,
            timeout=10,
            json={"sku": "CLI-1", "name": "From the CLI", "price_cents": 100, "stock": 1},
        )
        assert created.status_code == 201, created.text
        outside = httpx.get(f"{base}/api/v1/orders", headers=bearer, timeout=10)
        assert outside.status_code == 403, outside.text

        with_key = {"X-API-Key": key}
        listed = httpx.get(f"{base}/api/v1/products", headers=with_key, timeout=10)
        assert listed.status_code == 200, listed.text
        assert [p["sku"] for p in listed.json()["data"]] == ["CLI-1"]
        product = f"{base}/api/v1/products/{created.json()['data']['id']}"
        assert httpx.get(product, headers=with_key, timeout=10).status_code == 200
        write = httpx.patch(product, json={"stock": 5}, headers=with_key, timeout=10)
        assert write.status_code == 403, write.text
        assert httpx.get(f"{base}/api/v1/orders", headers=with_key, timeout=10).status_code == 403

        jwks = httpx.get(f"{base}/.well-known/jwks.json", timeout=10).json()
        kids = [k["kid"] for k in jwks["keys"]]
        assert len(kids) == 2  # the retired key stays published while its tokens live
        assert newest in kids
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_cli_bad_input_is_exit_2_with_one_clear_line(tmp_path: Path) -> None:
    run(tmp_path, "migrate")
    run(tmp_path, "create-org", "acme")
    run(tmp_path, "create-user", "acme", "x@acme.test", GATEWAY_PASSWORD=PASSWORD)

    # unknown organization, for every command that takes one
    for args in (
        ("create-user", "nope", "y@acme.test"),
        ("create-client", "nope", "app"),
        ("create-api-key", "nope", "k", "--scope", "products:read"),
    ):
        assert "no organization 'nope'" in fails(tmp_path, *args, code=1, GATEWAY_PASSWORD=PASSWORD)

    # users: a short password, an email taken (in any case)
    assert "at least 12" in fails(
        tmp_path, "create-user", "acme", "y@acme.test", GATEWAY_PASSWORD="short"
    )
    assert "already exists" in fails(
        tmp_path, "create-user", "acme", "X@Acme.test", code=1, GATEWAY_PASSWORD=PASSWORD
    )

    # organizations: taken, empty, longer than the column
    assert "already exists" in fails(tmp_path, "create-org", "acme", code=1)
    assert "empty" in fails(tmp_path, "create-org", " ")
    assert "slug" in fails(tmp_path, "create-org", "x" * 100)

    # clients and keys: unknown scopes, the admin scope, no expiry in the past
    assert "unknown scope(s): everything" in fails(
        tmp_path, "create-client", "acme", "app", "--scope", "everything"
    )
    beyond_role = fails(
        tmp_path,
        "create-client",
        "acme",
        "app",
        "--role",
        "viewer",
        "--scope",
        "products:read",
        "--scope",
        "customers:write",
        "--scope",
        "api-keys:admin",
    )
    assert "'viewer' cannot hold the scope(s) api-keys:admin, customers:write" in beyond_role
    assert "fragment" in fails(
        tmp_path,
        "create-client",
        "acme",
        "spa",
        "--public",
        "--grant",
        "authorization_code",
        "--redirect-uri",
        "https://app.acme.test/callback#done",
    )
    assert "unknown scope(s): everything" in fails(
        tmp_path, "create-api-key", "acme", "k", "--scope", "everything"
    )
    assert "cannot manage API keys" in fails(
        tmp_path, "create-api-key", "acme", "k", "--scope", "api-keys:admin"
    )
    for days in ("0", "-1"):  # "0" once meant a key that never expires
        assert "future" in fails(
            tmp_path,
            "create-api-key",
            "acme",
            "k",
            "--scope",
            "products:read",
            "--expires-in-days",
            days,
        )
    assert "name" in fails(tmp_path, "create-api-key", "acme", "", "--scope", "products:read")

    # nothing of the above was created
    stored = database(tmp_path)
    assert "y@acme.test" not in stored
    with sqlite3.connect(tmp_path / "var" / "gateway.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM oauth_clients").fetchone() == (0,)


def test_cli_client_scopes_default_to_what_the_role_holds(tmp_path: Path) -> None:
    run(tmp_path, "migrate")
    run(tmp_path, "create-org", "acme")
    for role in ("viewer", "staff", "owner"):
        run(tmp_path, "create-client", "acme", f"{role} app", "--role", role)
    with sqlite3.connect(tmp_path / "var" / "gateway.sqlite3") as db:
        rows = dict(db.execute("SELECT role, scopes FROM oauth_clients").fetchall())
    read = sorted(s for s in ALL_SCOPES if s.endswith(":read") and s not in PRIVILEGED)
    write = sorted(s for s in ALL_SCOPES if s.endswith(":write"))
    assert "suppliers:read" in read  # every declared resource's scopes
    assert json.loads(rows["viewer"]) == read
    assert json.loads(rows["staff"]) == sorted(read + write)
    # the privileged scopes (api-keys:admin, audit:read) only when asked
    assert json.loads(rows["owner"]) == sorted(read + write)
