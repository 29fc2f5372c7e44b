"""Revocations: the database holds them, Redis only carries the news.

Every door records its revocation in ``revocations``; a worker that starts loads
them, a worker that may have missed a notice reads them again (and closes the
sockets of what it learns); expired rows are pruned. With a Redis of the test's own
(services pass): a worker whose subscription comes back reads what it missed, and a
revocation made while its worker is cut off from Redis is announced once it is back.
An API key revoked through REST or the ``gateway`` command is refused by another running
host: the one ``db/`` function that revokes takes the notices its news goes to.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from db import accounts, api_keys
from db.accounts import create_client
from db.errors import InvalidToken, Unavailable
from db.models import Revocation
from db.principal import Principal
from db.revocations import (
    api_key_credential,
    prune_revocations,
    record_revocation,
    revocations_since,
)
from gateway.auth import denylist as denylist_module
from gateway.auth.authenticator import Authenticator
from gateway.auth.denylist import CHANNEL, KEPT_PAST_EXPIRY, Denylist
from gateway.redis_client import redis_client
from gateway.settings import Settings
from realtime.tickets import Tickets
from tests.conftest import BACKEND, RunningServer, Tenant
from tests.factories import TOKENS, unique
from tests.private_redis import PrivateRedis, private_redis, proxy_to
from tests.processes import clean_env, free_port, gateway
from tests.realtime_clients import realtime, subscribe

PROBE = "/api/v1/products"
CALLER = Principal(
    subject="user:ticket",
    organization_id=1,
    scopes=frozenset({"events:read"}),
    roles=frozenset({"staff"}),
)
services_only = pytest.mark.skipif(
    BACKEND != "services", reason="starts a redis-server of its own; runs in the services pass"
)


def issue(server: RunningServer, tenant: Tenant) -> tuple[str, dict[str, Any]]:
    token, claims = server.app.ctx.auth.tokens.issue(
        subject="user:revocations",
        organization_id=tenant.id,
        client_id="tests",
        scopes=["products:read", "events:read"],
        roles=["staff"],
    )
    return token, claims


async def status(server: RunningServer, token: str) -> int:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        r = await http.get(PROBE, headers={"Authorization": f"Bearer {token}"})
    return r.status_code


async def until(check: Any, what: str, timeout: float = 20) -> None:
    """Wait for ``check()``; the deadline only guards against a hang."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.fixture
async def fresh_worker(server: RunningServer) -> AsyncIterator[Denylist]:
    """The denylist of a worker that starts now, without Redis."""
    worker = Denylist()
    await worker.start(None)
    try:
        yield worker
    finally:
        await worker.stop()


async def test_every_door_records_its_revocation_and_a_starting_worker_loads_it(
    server: RunningServer, tenant: Tenant
) -> None:
    made = await create_client(
        tenant.id, unique("revoker"), grant_types=["client_credentials"], scopes=["products:read"]
    )
    assert made.secret
    auth = (made.client.client_id, made.secret)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        # OAuth: RFC 7009 revocation of an access token
        r = await http.post("/oauth/token", auth=auth, data={"grant_type": "client_credentials"})
        assert r.status_code == 200, r.text
        access = r.json()["access_token"]
        claims = await server.app.ctx.auth.tokens.own_claims(access)
        assert claims is not None
        r = await http.post("/oauth/revoke", auth=auth, data={"token": access})
        assert r.status_code == 200, r.text
        # REST: revoking an API key
        admin = {"Authorization": f"Bearer {TOKENS.mint(tenant.id, 'admin')}"}
        r = await http.post(
            "/api/v1/api-keys", headers=admin, json={"name": "k", "scopes": ["products:read"]}
        )
        assert r.status_code == 201, r.text
        key = r.json()["data"]
        r = await http.delete(f"/api/v1/api-keys/{key['id']}", headers=admin)
        assert r.status_code == 204, r.text

    rows = await Revocation.filter(credential_id=claims["jti"])
    assert [row.expires_at.timestamp() for row in rows] == [claims["exp"] + KEPT_PAST_EXPIRY]
    assert await Revocation.filter(credential_id=f"key:{key['key_id']}").count() == 1

    starting = Denylist()
    await starting.start(None)
    try:
        assert claims["jti"] in starting
        assert f"key:{key['key_id']}" in starting
    finally:
        await starting.stop()


async def test_revoking_twice_records_once(server: RunningServer, tenant: Tenant) -> None:
    _, claims = issue(server, tenant)
    denylist = server.app.ctx.auth.denylist
    await denylist.deny(claims["jti"], claims["exp"])
    await denylist.deny(claims["jti"], claims["exp"])
    assert await Revocation.filter(credential_id=claims["jti"]).count() == 1


async def test_a_revocation_recorded_elsewhere_closes_this_worker_s_sockets_when_it_reads_it(
    server: RunningServer, tenant: Tenant
) -> None:
    token, claims = issue(server, tenant)
    async with realtime(server.base_url, token) as ws:
        await subscribe(ws, "s", ["products"])
        # Another host revoked it, and no notice reached this one.
        await record_revocation(claims["jti"], claims["exp"] + KEPT_PAST_EXPIRY)
        await server.app.ctx.auth.denylist.catch_up()
        await asyncio.wait_for(ws.wait_closed(), 10)
        assert ws.close_code == 4403
    assert await status(server, token) == 401


async def test_expired_revocations_are_not_loaded_and_are_pruned(
    server: RunningServer, tenant: Tenant
) -> None:
    now = time.time()
    gone, kept = unique("expired-jti-"), unique("live-jti-")
    await record_revocation(gone, now - 1)
    await record_revocation(kept, now + 600)
    loaded = dict(await revocations_since(None, now=now))
    assert kept in loaded
    assert gone not in loaded
    starting = Denylist()
    await starting.start(None)
    try:
        assert kept in starting
        assert gone not in starting
    finally:
        await starting.stop()
    assert await prune_revocations(now=now) >= 1
    assert not await Revocation.filter(credential_id=gone).exists()
    assert await Revocation.filter(credential_id=kept).exists()


async def test_a_ticket_is_unavailable_not_an_error_when_its_store_does_not_answer() -> None:
    nobody = redis_client(f"redis://127.0.0.1:{free_port()}/0")
    tickets = Tickets(nobody)
    try:
        with pytest.raises(Unavailable) as issued:
            await tickets.issue(CALLER)
        assert issued.value.status == 503
        assert issued.value.code == "UNAVAILABLE"
        with pytest.raises(Unavailable):
            await tickets.redeem("gwt_anything")
    finally:
        await nobody.aclose()


# --- with a Redis of the test's own ---------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    with private_redis(tmp_path) as redis:
        yield redis


@services_only
async def test_a_worker_reads_what_it_missed_when_its_subscription_comes_back(
    server: RunningServer, own_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the subscription coming back can tell it (no polling within the test).
    monkeypatch.setattr(denylist_module, "POLL_SECONDS_ALONE", 3600.0)
    monkeypatch.setattr(denylist_module, "POLL_SECONDS", 3600.0)
    client = redis_client(own_redis.url)
    worker = Denylist()
    closed: list[str] = []
    worker.on_deny(closed.append)
    await worker.start(client)
    try:
        await until(lambda: worker.listening, "the subscription")
        own_redis.stop()
        await until(lambda: not worker.listening, "the worker to notice Redis is gone")
        missed = unique("missed-while-away-")
        await record_revocation(missed, time.time() + 600)  # another host, while Redis is away
        own_redis.start()  # empty: whatever it held is lost
        await until(lambda: missed in worker, "the catch-up after the subscription returned")
        assert missed in closed
    finally:
        await worker.stop()
        await client.aclose()


@services_only
async def test_a_revocation_made_while_cut_off_from_redis_is_announced_when_it_is_back(
    server: RunningServer, own_redis: PrivateRedis
) -> None:
    listener = Redis.from_url(own_redis.url)
    pubsub = listener.pubsub()
    await pubsub.subscribe(CHANNEL)
    with proxy_to(own_redis) as proxy:
        through_proxy = redis_client(proxy.url)
        revoking = Denylist()
        await revoking.start(through_proxy)
        try:
            await until(lambda: revoking.listening, "the subscription")
            proxy.cut()  # this worker loses Redis; the listener keeps it
            await until(lambda: not revoking.listening, "the worker to notice Redis is gone")
            jti = unique("cut-off-")
            await revoking.deny(jti, time.time() + 600)  # neither waits for nor fails on Redis
            assert jti in revoking
            assert await Revocation.filter(credential_id=jti).exists()
            proxy.mend()
            deadline = time.monotonic() + 20
            heard: list[bytes] = []
            while not any(data.startswith(jti.encode() + b" ") for data in heard):
                assert time.monotonic() < deadline, f"no notice of {jti}: {heard}"
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None:
                    heard.append(message["data"])
        finally:
            await revoking.stop()
            await through_proxy.aclose()
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            await listener.aclose()


# --- an API key revoked from any door ---------------------------------------------------------


def test_every_function_that_revokes_must_be_told_where_its_news_goes() -> None:
    """``db/`` revokes, and takes the notices (a worker's denylist, the command's
    publisher) as a required argument: no door can revoke without telling the workers."""
    for revoke in (api_keys.revoke_api_key, accounts.delete_user, accounts.delete_client):
        notices = inspect.signature(revoke).parameters["notices"]
        assert notices.kind is inspect.Parameter.KEYWORD_ONLY, revoke
        assert notices.default is inspect.Parameter.empty, revoke


@pytest.mark.parametrize("door", ["rest", "cli"])
async def test_a_key_revoked_from_any_door_is_refused_by_another_running_host(
    server: RunningServer,
    settings: Settings,
    tenant: Tenant,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    door: str,
) -> None:
    row, key = await api_keys.create_api_key(
        tenant.owner, api_keys.ApiKeyInput(name=unique("door "), scopes=["products:read"])
    )
    credential = api_key_credential(row["key_id"])
    redis = redis_client(settings.redis_url) if settings.redis_url else None
    # Another host, which reads no database while the test runs: on the services pass only
    # the Redis notice can tell it (on the embedded pass, no Redis: it reads the database).
    monkeypatch.setattr(denylist_module, "POLL_SECONDS", 3600.0)
    monkeypatch.setattr(denylist_module, "POLL_SECONDS_ALONE", 3600.0)
    other = Authenticator(settings)
    await other.start(redis)
    heard = redis.pubsub() if redis is not None else None
    try:
        if heard is not None:
            await heard.subscribe(CHANNEL)
            await until(lambda: other.denylist.listening, "the other host's subscription")
        assert (await other.api_key_principal(key)).credential_id == credential  # cached there

        if door == "rest":
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
                r = await http.delete(
                    f"/api/v1/api-keys/{row['id']}",
                    headers={"Authorization": f"Bearer {TOKENS.mint(tenant.id, 'admin')}"},
                )
            assert r.status_code == 204, r.text
        else:
            site = {"DATABASE_URL": settings.database_url, "SEED_DEMO": "false"}
            if settings.redis_url:
                site["REDIS_URL"] = settings.redis_url
            done = gateway(
                "delete-api-key", tenant.slug, row["key_id"], env=clean_env(**site), cwd=tmp_path
            )
            assert done.returncode == 0, done.stderr

        if heard is not None:  # the notice went out, from the server's denylist or the command
            deadline = time.monotonic() + 20
            while True:
                assert time.monotonic() < deadline, "no revocation notice"
                message = await heard.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message and message["data"].decode().startswith(credential + " "):
                    break
            await until(lambda: credential in other.denylist, "the notice to reach the host")
        else:
            await other.denylist.catch_up()  # what a host without Redis does every 2 s
        with pytest.raises(InvalidToken):
            await other.api_key_principal(key)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            assert (await http.get(PROBE, headers={"X-API-Key": key})).status_code == 401
    finally:
        if heard is not None:
            await heard.aclose()
        await other.stop()
        if redis is not None:
            await redis.aclose()
