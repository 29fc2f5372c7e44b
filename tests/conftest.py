"""Test fixtures: one real server per session, real database, real HTTP clients.

``GATEWAY_TEST_BACKEND`` picks the backends for the whole pytest process
(Tortoise caches dialect SQL per model, so one dialect per process):

- ``embedded`` (default): a fresh SQLite file and the in-process bus;
- ``services``: a fresh PostgreSQL database on ``TEST_POSTGRES_URL`` and Redis on
  ``TEST_REDIS_URL``. Unreachable services fail the run; they are never skipped.

``GATEWAY_TEST_GRAPHQL_ENGINE`` (``fast``, the default, or ``standard``) picks the
GraphQL engine the same way; tests of the fast engine's internals skip under ``standard``.

Each test gets its own organization, so tests are isolated by tenancy itself
and commit for real (no rollback tricks that would hide transaction bugs).
"""

from __future__ import annotations

import gc
import itertools
import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import asyncpg
import httpx
import pytest

from db.catalog import role_scopes
from db.organizations import create_organization
from db.principal import Principal
from db.setup import apply_migrations
from gateway.app import create_app
from gateway.context import GatewayApp
from gateway.settings import ExternalIssuer, Settings
from tests import factories, shared_tls

BACKEND = os.environ.get("GATEWAY_TEST_BACKEND", "embedded")
# The GraphQL engine (resolvers/engine): "fast", or "standard" for CI's second pass. Also
# exported as GRAPHQL_ENGINE, so every Settings a test builds (and every server it
# starts) runs the same engine.
GRAPHQL_ENGINE = os.environ["GRAPHQL_ENGINE"] = os.environ.get(
    "GATEWAY_TEST_GRAPHQL_ENGINE", "fast"
)
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
_slugs = itertools.count()
shared_tls.install()  # one CA bundle load per run, not one per httpx client
# External identity providers the test server trusts; tests/auth/test_tokens.py plays
# them with key pairs of its own and serves their JWKS on PARTNER_JWKS_PORT: one maps
# the organization from a claim, the other pins every token to one organization.
PARTNER_ISSUER = "https://login.partner.test"
PARTNER_AUDIENCE = "api://commerce-gateway"
PINNED_ISSUER = "https://sso.pinned.test/"
PINNED_AUDIENCE = "gateway-pinned"
PINNED_ORGANIZATION = "pinned-partner-org"


def pytest_report_header() -> str:
    return f"gateway backend: {BACKEND}, GraphQL engine: {GRAPHQL_ENGINE}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "backend_independent: uses neither the pass's database nor its bus (parsing alone,"
        " or the CLI on an embedded database in a temporary directory); runs in the"
        " embedded pass only",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if BACKEND == "services":
        # The same code, on no database or an embedded one of its own, in both passes: once.
        once = pytest.mark.skip(reason="backend-independent; runs in the embedded pass")
        for item in items:
            if "backend_independent" in item.keywords:
                item.add_marker(once)
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL; runs in the services pass")
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """A full garbage collection after each module's last test (its fixtures are gone).

    A socket or transport a module left open is then reported (ResourceWarning, an
    error here) at the end of the module that leaked it, not by whichever later test
    a collection happens to run in. On Python 3.11 such a collection inside
    ``ast.parse`` (Sanic parses every handler when an app is built) even turns the
    report into ``SystemError: AST constructor recursion depth mismatch``, far from
    its cause (tests/test_proxies.py). About 30 ms each, some 170 times a pass.
    """
    if nextitem is None or nextitem.module is not getattr(item, "module", None):
        gc.collect()


@pytest.fixture(scope="session")
def is_postgres() -> bool:
    return BACKEND == "services"


@pytest.fixture(scope="session")
async def database_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    if BACKEND == "embedded":
        yield f"sqlite://{tmp_path_factory.mktemp('db') / 'gateway.sqlite3'}"
        return
    if BACKEND != "services":
        raise pytest.UsageError(f"GATEWAY_TEST_BACKEND must be embedded or services, not {BACKEND}")
    admin = await asyncpg.connect(POSTGRES_URL.replace("postgres://", "postgresql://"))
    name = f"gateway_test_{uuid.uuid4().hex[:10]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        environment="test",
        graphql_engine=GRAPHQL_ENGINE,
        database_url=database_url,
        redis_url=REDIS_URL if BACKEND == "services" else None,
        log_format="console",
        log_level="WARNING",
        access_log=False,
        port=_free_port(),
        page_size_default=20,
        page_size_max=100,
        max_body_bytes=64 * 1024,
        # Every test connects from 127.0.0.1, and the suite sends hundreds of forged
        # credentials and sockets on purpose: limits kept per address are loose here;
        # tests/gateway/test_rate_limits.py tightens them per test, on its own address.
        rate_limit_auth_failures="1000000/hour",
        rate_limit_ws_connect="1000000/hour",
        cors_allow_origins=[PAGE_ORIGIN],
        external_issuers=[
            ExternalIssuer(
                issuer=PARTNER_ISSUER,
                jwks_uri=f"http://127.0.0.1:{PARTNER_JWKS_PORT}/partner/jwks",
                audience=PARTNER_AUDIENCE,
                algorithms=["ES256"],
                organization_claim="org_slug",
                scope_claim="permissions",
                role_claim="https://gateway.test/role",
                default_role="viewer",
            ),
            ExternalIssuer(
                issuer=PINNED_ISSUER,
                jwks_uri=f"http://127.0.0.1:{PARTNER_JWKS_PORT}/pinned/jwks",
                audience=PINNED_AUDIENCE,
                organization=PINNED_ORGANIZATION,
                default_role="staff",
            ),
        ],
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Through the environment, so that ``tests.conftest`` imported by a test module (a
# second module object) agrees with the ``conftest`` pytest loaded.
PARTNER_JWKS_PORT = int(os.environ.setdefault("GATEWAY_TEST_PARTNER_JWKS_PORT", str(_free_port())))
# A browser page on another origin (another host name than the server's 127.0.0.1) that
# the test server lets in: tests/gateway/test_cors.py, and tests/browser serves pages there.
PAGE_PORT = int(os.environ.setdefault("GATEWAY_TEST_PAGE_PORT", str(_free_port())))
PAGE_ORIGIN = f"http://localhost:{PAGE_PORT}"


@dataclass
class RunningServer:
    app: GatewayApp
    base_url: str


@pytest.fixture(scope="session")
async def server(settings: Settings) -> AsyncIterator[RunningServer]:
    """The gateway on a real socket, with its real startup and shutdown listeners."""
    await apply_migrations(settings.tortoise_url)
    app = create_app(settings, name=f"gateway_test_{uuid.uuid4().hex[:8]}")
    # Rate-limit counters of this server's own: with Redis they would otherwise outlive the
    # run, and the next run's tenants (the same ids in a new database) would inherit them.
    app.ctx.throttle.limiter._prefix = f"gateway:test:{uuid.uuid4().hex[:12]}:rl:"
    port = settings.port
    srv = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
    )
    assert srv is not None
    await srv.startup()
    await srv.before_start()
    await srv.after_start()
    assert app.ctx.realtime_start is not None
    await app.ctx.realtime_start  # the change stream and relay are running
    try:
        factories.TOKENS.mint = partial(_mint, app)
        yield RunningServer(app=app, base_url=f"http://127.0.0.1:{port}")
    finally:
        await srv.before_stop()
        srv.close()
        await srv.wait_closed()
        await srv.after_stop()


@dataclass
class Tenant:
    """An organization of its own, with an owner Principal and a client acting as it."""

    id: int
    slug: str
    owner: Principal
    client: httpx.AsyncClient

    def principal(self, *roles: str, scopes: frozenset[str] = frozenset({"*"})) -> Principal:
        return Principal(
            subject=f"test-{'-'.join(roles)}",
            organization_id=self.id,
            scopes=scopes,
            roles=frozenset(roles),
        )


def _mint(app: GatewayApp, organization_id: int, role: str, scopes: list[str] | None = None) -> str:
    """A real access token, signed by the server's current key, as the token endpoint issues."""
    token, _ = app.ctx.auth.tokens.issue(
        subject=f"user:test-{role}",
        organization_id=organization_id,
        client_id="tests",
        scopes=sorted(role_scopes(role)) if scopes is None else scopes,
        roles=[role],
    )
    return token


async def make_tenant(server: RunningServer) -> Tenant:
    slug = f"t{os.getpid()}-{next(_slugs)}-{uuid.uuid4().hex[:6]}"
    org = await create_organization(slug=slug, name=f"Tenant {slug}")
    factories.TOKENS.orgs[slug] = org["id"]
    client = httpx.AsyncClient(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {factories.TOKENS.mint(org['id'], 'owner')}"},
        timeout=30,
    )
    owner = Principal(
        subject="test-owner",
        organization_id=org["id"],
        scopes=frozenset({"*"}),
        roles=frozenset({"owner"}),
    )
    return Tenant(id=org["id"], slug=slug, owner=owner, client=client)


@pytest.fixture
async def tenant(server: RunningServer) -> AsyncIterator[Tenant]:
    t = await make_tenant(server)
    async with t.client:
        yield t


@pytest.fixture
async def other_tenant(server: RunningServer) -> AsyncIterator[Tenant]:
    t = await make_tenant(server)
    async with t.client:
        yield t


@pytest.fixture
async def anon(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
