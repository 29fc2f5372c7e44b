"""Fixtures of the SDK tests: the live gateway of tests/sdk/live.py."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BACKEND, POSTGRES_URL, REDIS_URL
from tests.processes import clean_env, free_port
from tests.sdk.live import THROTTLED_RATE, LiveGateway, cli, client_credentials
from tests.served import migrated_postgres, migrated_sqlite
from tests.tcp_proxy import TcpProxy


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    directory = tmp_path_factory.mktemp("sdk-gateway")
    with contextlib.ExitStack() as stack:
        proxy: TcpProxy | None = None
        database_path: Path | None = None
        if BACKEND == "services":
            direct = stack.enter_context(migrated_postgres())
            host_port = POSTGRES_URL.split("@", 1)[1].split("/", 1)[0]
            host, _, pg_port = host_port.partition(":")
            proxy = TcpProxy(free_port(), (host, int(pg_port or 5432)))
            proxy.start()
            stack.callback(proxy.close)
            user, name = direct.split("://", 1)[1].split("@", 1)[0], direct.rsplit("/", 1)[1]
            cli_env = {"DATABASE_URL": direct, "AUTO_MIGRATE": "false", "SEED_DEMO": "false"}
            served = {
                **cli_env,
                "DATABASE_URL": f"postgres://{user}@127.0.0.1:{proxy.port}/{name}",
                "REDIS_URL": REDIS_URL,
            }
        else:
            database_path = directory / "gateway.sqlite3"
            migrated_sqlite(database_path)
            cli_env = {"DATABASE_URL": f"sqlite://{database_path}", "SEED_DEMO": "false"}
            served = dict(cli_env)
        org = f"sdk-{uuid.uuid4().hex[:8]}"
        cli("create-org", org, env=clean_env(**cli_env), cwd=directory)
        sdk = client_credentials(org, "sdk", clean_env(**cli_env), directory)
        throttled = client_credentials(org, "throttled", clean_env(**cli_env), directory)
        hooks = client_credentials(
            org, "hooks", clean_env(**cli_env), directory, "webhooks:admin", "orders:read"
        )
        key = cli(
            "create-api-key",
            org,
            "sdk-key",
            "--scope",
            "customers:read",
            "--scope",
            "customers:write",
            env=clean_env(**cli_env),
            cwd=directory,
        )
        slow = {"read": THROTTLED_RATE, "write": THROTTLED_RATE}
        env = {
            **served,
            "AUTH_ISSUER": "http://gateway.test",
            "LOG_LEVEL": "WARNING",
            "ACCESS_LOG": "false",
            "RATE_LIMITS_ENABLED": "true",
            "RATE_LIMIT_AUTH_FAILURES": "1000000/hour",
            "RATE_LIMIT_OVERRIDES": json.dumps({f"client:{throttled.client_id}": slow}),
        }
        node = LiveGateway(
            directory=directory,
            env=env,
            port=free_port(),
            org=org,
            sdk=sdk,
            throttled=throttled,
            hooks=hooks,
            api_key=key["key"],
            database_path=database_path,
            proxy=proxy,
        )
        stack.callback(node.kill)
        node.start()
        yield node


@pytest.fixture
def gw(live: LiveGateway) -> LiveGateway:
    """The live gateway, started again if an earlier test left it down."""
    if live.proxy is not None:
        live.proxy.stop()  # idempotent: then serve again
        live.proxy.start()
    live.ensure_running()
    return live
