"""Credentials: client credentials renewed before expiry and after a 401, API keys,
token callables (sync and async)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from gateway_client import (
    AsyncClient,
    Client,
    ClientCredentials,
    PermissionDenied,
    Unauthenticated,
)

from tests.sdk.live import LiveGateway


def _token(gw: LiveGateway) -> str:
    reply = httpx.post(
        f"{gw.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(gw.sdk.client_id, gw.sdk.client_secret),
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    token: str = reply.json()["access_token"]
    return token


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_client_credentials_renew_before_expiry(gw: LiveGateway) -> None:
    clock = FakeClock()
    auth = ClientCredentials(gw.sdk.client_id, gw.sdk.client_secret, clock=clock)
    with Client(gw.url, auth=auth) as sdk:
        first = sdk.customers.list().first_page()
        assert first.meta.request_id
        sdk.customers.list().first_page()
        assert auth.issued == 1  # one token, reused
        clock.now += 900 - 60 + 1  # the lifetime (900 s) less the renewal margin (60 s) passes
        sdk.customers.list().first_page()
        assert auth.issued == 2  # renewed before the gateway would refuse it
        sdk.customers.list().first_page()
        assert auth.issued == 2


def test_a_refused_token_is_renewed_once_then_the_call_repeated(gw: LiveGateway) -> None:
    auth = ClientCredentials(gw.sdk.client_id, gw.sdk.client_secret)
    with Client(gw.url, auth=auth) as sdk:
        sdk.customers.list().first_page()
        auth._token = "not-a-token"  # as a token revoked or signed with a retired key
        page = sdk.customers.list().first_page()
        assert page.meta.status == 200
        assert auth.issued == 2


def test_a_token_callable_is_asked_again_once_after_a_401(gw: LiveGateway) -> None:
    tokens = iter(["expired-token", _token(gw)])
    asked: list[int] = []

    def source() -> str:
        asked.append(1)
        return next(tokens)

    with Client(gw.url, token=source) as sdk:
        assert sdk.customers.list().first_page().meta.status == 200
    assert len(asked) == 2

    def always_bad() -> str:
        asked.append(1)
        return "bad-token"

    asked.clear()
    with Client(gw.url, token=always_bad) as sdk, pytest.raises(Unauthenticated) as refused:
        sdk.customers.list().first_page()
    assert len(asked) == 2  # once, then once more after the 401; then the error
    assert refused.value.status == 401
    assert refused.value.request_id


def test_wrong_client_secret_is_a_typed_error(gw: LiveGateway) -> None:
    with Client(gw.url, client_id=gw.sdk.client_id, client_secret="wrong") as sdk:
        with pytest.raises(Unauthenticated) as refused:
            sdk.customers.list().first_page()
        assert refused.value.code == "INVALID_CLIENT"


def test_api_key_reaches_what_its_scopes_allow(gw: LiveGateway) -> None:
    with Client(gw.url, api_key=gw.api_key) as sdk:
        made = sdk.customers.create({"name": "Keyed", "email": "keyed@example.com"})
        assert sdk.customers.get(made.id).name == "Keyed"
        with pytest.raises(PermissionDenied) as denied:
            sdk.orders.list().first_page()
        assert denied.value.code == "PERMISSION_DENIED"
        assert denied.value.request_id


async def test_the_async_client_awaits_an_async_token_callable(gw: LiveGateway) -> None:
    token = _token(gw)
    calls = 0

    async def source() -> str:
        nonlocal calls
        calls += 1
        return token

    async with AsyncClient(gw.url, token=source) as sdk:
        page = await sdk.customers.list().first_page()
        assert page.meta.status == 200
        await sdk.customers.list().first_page()
    assert calls == 1


async def test_concurrent_calls_share_one_token_fetch(gw: LiveGateway) -> None:
    auth = ClientCredentials(gw.sdk.client_id, gw.sdk.client_secret)
    async with AsyncClient(gw.url, auth=auth) as sdk:
        pages = await asyncio.gather(*(sdk.customers.list().first_page() for _ in range(8)))
    assert all(page.meta.status == 200 for page in pages)
    assert auth.issued == 1


def test_threads_share_one_token_fetch(gw: LiveGateway) -> None:
    auth = ClientCredentials(gw.sdk.client_id, gw.sdk.client_secret)
    with Client(gw.url, auth=auth) as sdk, ThreadPoolExecutor(8) as pool:
        pages = list(pool.map(lambda _: sdk.customers.list().first_page(), range(8)))
    assert all(page.meta.status == 200 for page in pages)
    assert auth.issued == 1
