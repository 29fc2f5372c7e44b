"""The SDK is a package of its own: two dependencies, no import of the gateway."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import httpx
import pytest
from gateway_client import DEFAULT_LIMITS, DEFAULT_TIMEOUT, Client

from tests.sdk.live import LiveGateway

SDK = Path(__file__).resolve().parents[2] / "sdk" / "python"
ALLOWED = {"httpx", "pydantic", "gateway_client"}


@pytest.mark.backend_independent
def test_it_depends_on_httpx_and_pydantic_only() -> None:
    project = tomllib.loads((SDK / "pyproject.toml").read_text())["project"]
    assert project["name"] == "commerce-gateway-client"
    names = {
        dep.split(">")[0].split("=")[0].split("<")[0].strip() for dep in project["dependencies"]
    }
    assert names == {"httpx", "pydantic"}
    assert (SDK / "src" / "gateway_client" / "py.typed").exists()
    readme = (SDK / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert len([line for line in quick.splitlines() if line.strip()]) == 5


@pytest.mark.backend_independent
def test_it_imports_nothing_but_the_standard_library_and_its_dependencies() -> None:
    for path in (SDK / "src" / "gateway_client").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = {node.module.split(".")[0]}
            else:
                continue
            for root in roots:
                assert root in ALLOWED or root in sys.stdlib_module_names, (path.name, root)


@pytest.mark.backend_independent
def test_timeouts_and_the_pool_have_defaults() -> None:
    with Client("http://127.0.0.1:9", api_key="gwk_x") as sdk:
        assert sdk.http.timeout == DEFAULT_TIMEOUT
        assert DEFAULT_TIMEOUT.connect == 5.0
        assert DEFAULT_TIMEOUT.read == 30.0
        assert DEFAULT_LIMITS.keepalive_expiry is not None
        assert DEFAULT_LIMITS.keepalive_expiry < 5  # the gateway's keep-alive timeout
        assert isinstance(sdk.http, httpx.Client)


def test_python_m_gateway_client_lists_and_follows(gw: LiveGateway) -> None:
    """The README's one command: the newest orders, then changes as they happen."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway_client",
            "--url",
            gw.url,
            "--client-id",
            gw.sdk.client_id,
            "--client-secret",
            gw.sdk.client_secret,
            "--topic",
            "customers",
            "--events",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("following customers")
        with Client(gw.url, client_id=gw.sdk.client_id, client_secret=gw.sdk.client_secret) as sdk:
            made = sdk.customers.create({"name": "Cli", "email": f"{uuid.uuid4().hex[:8]}@x.io"})
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert out.split() == [out.split()[0], "customer.created", str(made.id)]
