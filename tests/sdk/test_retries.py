"""Retries against the real gateway: its 429s (a client limited to 2 requests a second)
and its 503s (the database away), with one ``Idempotency-Key`` per write.

The outage ends when the SDK says it is about to retry (``on_retry``), so the test
waits for what the client does, not for time to pass.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from gateway_client import Client, RateLimited, RetryInfo, RetryPolicy
from gateway_client.models import CustomerFields as C

from tests.sdk.live import LiveGateway


class Recorder:
    """Every request the SDK sends (through its httpx client's hook) and every retry."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.retries: list[RetryInfo] = []
        self.clients: list[httpx.Client] = []

    def http(self) -> httpx.Client:
        """An httpx client for the SDK (``http_client=``): the test's to close."""
        client = httpx.Client(event_hooks={"request": [self.requests.append]}, timeout=30)
        self.clients.append(client)
        return client

    def keys(self, method: str = "POST") -> list[str]:
        return [
            r.headers["idempotency-key"]
            for r in self.requests
            if r.method == method and r.url.path.startswith("/api/v1/")
        ]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    made = Recorder()
    yield made
    for client in made.clients:
        client.close()


def throttled(gw: LiveGateway, recorder: Recorder, **kw: object) -> Client:
    return Client(
        gw.url,
        client_id=gw.throttled.client_id,
        client_secret=gw.throttled.client_secret,
        http_client=recorder.http(),
        on_retry=recorder.retries.append,
        **kw,  # type: ignore[arg-type]
    )


# Calls until the gateway has refused one: at 2 a second that is the third, unless the
# machine takes over half a second per call; the bound only stops a broken run.
MOST = 200


def refused(recorder: Recorder) -> bool:
    return any(r.status == 429 for r in recorder.retries)


def test_429s_are_waited_out_as_retry_after_says(gw: LiveGateway, recorder: Recorder) -> None:
    pages = []
    with throttled(gw, recorder) as sdk:
        while not refused(recorder) and len(pages) < MOST:
            pages.append(sdk.customers.list(page_size=1).first_page())
        pages.append(sdk.customers.list(page_size=1).first_page())
    assert refused(recorder), f"{len(pages)} reads at 2 a second met no 429"
    assert all(page.meta.status == 200 for page in pages)
    assert all(r.delay >= 1 for r in recorder.retries if r.status == 429)  # Retry-After: 1
    assert max(p.meta.attempts for p in pages) > 1
    limit = pages[-1].meta.rate_limit
    assert limit is not None
    assert limit.policy == "read"


def test_a_write_keeps_its_idempotency_key_across_429s(gw: LiveGateway, recorder: Recorder) -> None:
    tag = uuid.uuid4().hex[:8]
    made = []
    with throttled(gw, recorder) as sdk:
        while not refused(recorder) and len(made) < MOST:
            i = len(made)
            made.append(sdk.customers.create({"name": f"R{i}", "email": f"r{i}-{tag}@example.com"}))
    assert refused(recorder)
    keys = recorder.keys()
    assert len(set(keys)) == len(made)  # one key per write
    assert len(keys) > len(made)  # the refused one was sent again, with its key
    with Client(gw.url, client_id=gw.sdk.client_id, client_secret=gw.sdk.client_secret) as sdk:
        stored = list(sdk.customers.list(filter=C.email.has(tag)))
    assert sorted(c.id for c in stored) == sorted(c.id for c in made)


def test_when_retries_run_out_the_429_is_a_typed_error(gw: LiveGateway, recorder: Recorder) -> None:
    def read_on(sdk: Client) -> None:
        for _ in range(MOST):
            sdk.customers.list(page_size=1).first_page()

    sdk = throttled(gw, recorder, retry=RetryPolicy(max_retries=0))
    with sdk, pytest.raises(RateLimited) as refusal:
        read_on(sdk)
    assert refusal.value.code == "RATE_LIMITED"
    assert refusal.value.retry_after is not None
    assert refusal.value.retry_after >= 1
    assert refusal.value.request_id


@contextlib.contextmanager
def database_outage(gw: LiveGateway) -> Iterator[Callable[[], None]]:
    """The database away (PostgreSQL stopped behind the proxy, or the SQLite file held
    locked by another writer); the callable brings it back."""
    if gw.proxy is not None:
        proxy = gw.proxy
        proxy.stop()
        try:
            yield proxy.start
        finally:
            proxy.stop()
            proxy.start()
        return
    assert gw.database_path is not None
    holder = sqlite3.connect(gw.database_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            holder.execute("ROLLBACK")
            released = True

    try:
        yield release
    finally:
        release()
        holder.close()


def test_a_503_is_retried_with_the_same_idempotency_key(
    gw: LiveGateway, recorder: Recorder
) -> None:
    tag = uuid.uuid4().hex[:8]
    with Client(
        gw.url,
        client_id=gw.sdk.client_id,
        client_secret=gw.sdk.client_secret,
        http_client=recorder.http(),
        on_retry=recorder.retries.append,
        retry=RetryPolicy(max_retries=8),
    ) as sdk:
        sdk.customers.list().first_page()  # a token first: the outage is the write's
        with database_outage(gw) as end_outage:

            def on_retry(info: RetryInfo) -> None:
                recorder.retries.append(info)
                end_outage()

            sdk.config.on_retry = on_retry
            made = sdk.customers.create({"name": "Outage", "email": f"o-{tag}@example.com"})
        assert made.meta.attempts >= 2
        assert recorder.retries[0].status == 503
        keys = recorder.keys()
        assert len(keys) == made.meta.attempts
        assert len(set(keys)) == 1  # every attempt carried the first attempt's key
        stored = list(sdk.customers.list(filter=C.email.has(tag)))
        assert [c.id for c in stored] == [made.id]
