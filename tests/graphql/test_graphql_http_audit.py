"""GraphQL over HTTP conformance, judged by an independent client: the graphql-http
npm package's server audit (every MUST, SHOULD and MAY it checks) against the real
server. The package is installed from ``tests/conformance/package-lock.json`` by
``ops/scripts/install``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.factories import TOKENS

CONFORMANCE = Path(__file__).resolve().parents[1] / "conformance"


@pytest.mark.skipif(
    shutil.which("node") is None and not os.environ.get("CI"), reason="needs Node.js"
)
async def test_graphql_http_audit_passes_every_audit(server, tenant):
    assert (CONFORMANCE / "node_modules" / "graphql-http").is_dir(), (
        "run ops/scripts/install (npm ci in tests/conformance)"
    )
    token = TOKENS.mint(tenant.id, "owner")
    proc = await asyncio.create_subprocess_exec(
        "node",
        "graphql_http_audit.mjs",
        f"{server.base_url}/graphql",
        token,
        cwd=CONFORMANCE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()
    results = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    assert len(results) >= 50
    failed = [r for r in results if r["status"] != "ok"]
    assert failed == [], failed
