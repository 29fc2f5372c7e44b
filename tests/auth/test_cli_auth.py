"""Setting up auth from the command line, then using what it printed against a real server.

``gateway create-org``, ``create-user``, ``create-client`` (secret printed once),
``create-api-key`` and ``rotate-signing-key`` run as processes on an embedded
database; a ``gateway serve`` process on the same database then accepts the
client's credentials and the API key. Bad input ends with a non-zero exit and one
clear line, never a traceback.
"""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKEND
from tests.processes import clean_env, free_port, gateway, start_serving

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.skipif(BACKEND != "embedded", reason="runs its own embedded database"),
]


def run(cwd: Path, *args: str, **env: str) -> str:
    result = gateway(*args, env=clean_env(SEED_DEMO="false", **env), cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout


def fails(cwd: Path, *args: str, **env: str) -> str:
    result = gateway(*args, env=clean_env(SEED_DEMO="false", **env), cwd=cwd)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_cli_credentials_work_against_a_running_server(tmp_path):
    run(tmp_path, "migrate")
    run(tmp_path, "create-org", "acme", "--name", "Acme")
    run(tmp_path, "create-user", "acme", "ana@acme.test", "--role", "staff",
        GATEWAY_PASSWORD="a long enough password")  # fmt: skip
    printed = run(
        tmp_path, "create-client", "acme", "ERP sync", "--role", "staff", "--scope",
        "products:read", "--scope", "products:write",
    )  # fmt: skip
    fields = dict(line.split("=", 1) for line in printed.splitlines() if "=" in line)
    assert fields["client_id"]
    assert fields["client_secret"]
    key = run(tmp_path, "create-api-key", "acme", "sync", "--scope", "products:read").strip()
    assert key.startswith("gwk_")
    run(tmp_path, "rotate-signing-key")  # the first key
    run(tmp_path, "rotate-signing-key")  # a second one; the first is retired

    port = free_port()
    proc = start_serving(port, tmp_path, SEED_DEMO="false", LOG_LEVEL="WARNING")
    try:
        base = f"http://127.0.0.1:{port}"
        r = httpx.post(
            f"{base}/oauth/token", auth=(fields["client_id"], fields["client_secret"]),
            data={"grant_type": "client_credentials"}, timeout=10,
        )  # fmt: skip
        assert r.status_code == 200, r.text
        token = r.json()
        assert token["scope"] == "products:read products:write"
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        created = httpx.post(
            f"{base}/api/v1/products", headers=headers, timeout=10,
            json={"sku": "CLI-1", "name": "From the CLI", "price_cents": 100, "stock": 1},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        listed = httpx.get(f"{base}/api/v1/products", headers={"X-API-Key": key}, timeout=10)
        assert listed.status_code == 200
        assert [p["sku"] for p in listed.json()["data"]] == ["CLI-1"]
        denied = httpx.get(f"{base}/api/v1/orders", headers={"X-API-Key": key}, timeout=10)
        assert denied.status_code == 403
        jwks = httpx.get(f"{base}/.well-known/jwks.json", timeout=10).json()
        assert len(jwks["keys"]) == 2  # the rotated-out key stays published for a while
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert fields["client_secret"] not in (
        tmp_path / "var" / "gateway.sqlite3"
    ).read_bytes().decode("latin-1")


def test_cli_bad_input_is_one_clear_line(tmp_path):
    run(tmp_path, "migrate")
    run(tmp_path, "create-org", "acme")
    assert "no organization 'nope'" in fails(
        tmp_path, "create-user", "nope", "x@acme.test", GATEWAY_PASSWORD="a long enough password"
    )
    assert "12" in fails(tmp_path, "create-user", "acme", "x@acme.test", GATEWAY_PASSWORD="short")
    run(tmp_path, "create-user", "acme", "x@acme.test", GATEWAY_PASSWORD="a long enough password")
    assert "already exists" in fails(
        tmp_path, "create-user", "acme", "X@acme.test", GATEWAY_PASSWORD="a long enough password"
    )
    assert "error" in fails(tmp_path, "create-org", "acme")
    assert "unknown scope(s): everything" in fails(
        tmp_path, "create-api-key", "acme", "k", "--scope", "everything"
    )
