"""Several hosts on one database accept each other's tokens only with one issuer.

Two ``gateway serve`` processes share a database (and so the signing keys and the
clients), as the README's "Several hosts" section describes; the token of one is
checked by the other.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import websockets

from tests.processes import clean_env, gateway
from tests.served import Gateway, gateways, own_database

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[tuple[Callable[..., Gateway], dict[str, str]]]:
    with own_database(tmp_path) as database, gateways(tmp_path, database) as start:
        env = clean_env(**database)
        assert gateway("create-org", "acme", env=env, cwd=tmp_path).returncode == 0
        made = gateway("create-client", "acme", "erp", "--role", "staff", env=env, cwd=tmp_path)
        assert made.returncode == 0, made.stderr
        client = dict(line.split("=", 1) for line in made.stdout.splitlines() if "=" in line)
        yield start, client


def token_from(node: Gateway, client: dict[str, str]) -> str:
    reply = httpx.post(
        f"{node.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client["client_id"], client["client_secret"]),
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    token: str = reply.json()["access_token"]
    return token


def products(node: Gateway, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{node.url}/api/v1/products", headers=headers, timeout=30).status_code


def test_hosts_with_one_issuer_accept_each_other_s_tokens(hosts):
    start, client = hosts
    first, second = (
        start(AUTH_ISSUER="https://api.example.test"),
        start(AUTH_ISSUER="https://api.example.test"),
    )
    token = token_from(first, client)
    assert (products(first, token), products(second, token)) == (200, 200)


async def socket_close_code(node: Gateway, token: str) -> int | None:
    async with websockets.connect(f"ws://127.0.0.1:{node.port}/api/v1/realtime") as ws:
        await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _ in ws:
                pass
    return ws.close_code


async def test_hosts_left_on_their_default_issuers_refuse_each_other_s_tokens(hosts):
    """Unset, the issuer is each host's own http://HOST:PORT: the README says to set it."""
    start, client = hosts
    first, second = start(), start()
    token = token_from(first, client)
    assert (products(first, token), products(second, token)) == (200, 401)
    assert await socket_close_code(second, token) == 4403
