"""Auto-paging with ``for`` and ``async for``, through a gateway restart.

The restart is a SIGKILL of the gateway between two pages; the gateway is started
again (same port, same database) when the SDK reports its first failed attempt, so
the pager meets a dead gateway for real and carries on from its page token.
"""

from __future__ import annotations

import uuid

from gateway_client import AsyncClient, Client, RetryInfo, RetryPolicy
from gateway_client.models import Customer
from gateway_client.models import CustomerFields as C

from tests.sdk.live import LiveGateway

COUNT = 23
PAGE = 5


def _customers(gw: LiveGateway, tag: str) -> list[int]:
    with Client(gw.url, client_id=gw.sdk.client_id, client_secret=gw.sdk.client_secret) as sdk:
        return [
            sdk.customers.create({"name": f"P{i}", "email": f"p{i}-{tag}@example.com"}).id
            for i in range(COUNT)
        ]


class Restarter:
    """Kills the gateway when told; starts it again on the SDK's first retry."""

    def __init__(self, gw: LiveGateway) -> None:
        self.gw = gw
        self.killed = False
        self.retries: list[RetryInfo] = []

    def kill(self) -> None:
        self.gw.kill()
        self.killed = True

    def on_retry(self, info: RetryInfo) -> None:
        self.retries.append(info)
        if self.killed:
            self.killed = False
            self.gw.start()


PATIENT = RetryPolicy(max_retries=10, base_delay=0.1, max_delay=2.0)


def test_for_pages_through_everything(gw: LiveGateway) -> None:
    tag = uuid.uuid4().hex[:8]
    made = _customers(gw, tag)
    with Client(gw.url, client_id=gw.sdk.client_id, client_secret=gw.sdk.client_secret) as sdk:
        pager = sdk.customers.list(filter=C.email.has(tag), order_by="id", page_size=PAGE)
        seen = [c.id for c in pager]
        pages = list(pager.pages())
    assert seen == made
    assert [len(p.items) for p in pages] == [5, 5, 5, 5, 3]
    assert all(p.meta.request_id for p in pages)
    assert len({p.meta.request_id for p in pages}) == len(pages)
    assert pages[-1].next_page_token is None


async def test_async_for_pages_through_everything(gw: LiveGateway) -> None:
    tag = uuid.uuid4().hex[:8]
    made = _customers(gw, tag)
    async with AsyncClient(
        gw.url, client_id=gw.sdk.client_id, client_secret=gw.sdk.client_secret
    ) as sdk:
        pager = sdk.customers.list(filter=C.email.has(tag), order_by="id", page_size=PAGE)
        seen: list[Customer] = [c async for c in pager]
        sizes = [len(p.items) async for p in pager.pages()]
    assert [c.id for c in seen] == made
    assert sizes == [5, 5, 5, 5, 3]


def test_a_gateway_restart_mid_loop_loses_and_repeats_nothing(gw: LiveGateway) -> None:
    tag = uuid.uuid4().hex[:8]
    made = _customers(gw, tag)
    restarter = Restarter(gw)
    seen: list[int] = []
    with Client(
        gw.url,
        client_id=gw.sdk.client_id,
        client_secret=gw.sdk.client_secret,
        retry=PATIENT,
        on_retry=restarter.on_retry,
    ) as sdk:
        starts = gw.starts
        for customer in sdk.customers.list(filter=C.email.has(tag), page_size=PAGE):
            seen.append(customer.id)
            if len(seen) == PAGE + 2:  # in the second page: the third is not fetched yet
                restarter.kill()
    assert gw.starts == starts + 1, "the gateway was not restarted: no request met it down"
    assert restarter.retries
    assert sorted(seen) == sorted(made)
    assert len(seen) == len(set(seen)) == COUNT


async def test_a_gateway_restart_mid_async_loop_loses_and_repeats_nothing(
    gw: LiveGateway,
) -> None:
    tag = uuid.uuid4().hex[:8]
    made = _customers(gw, tag)
    restarter = Restarter(gw)
    seen: list[int] = []
    async with AsyncClient(
        gw.url,
        client_id=gw.sdk.client_id,
        client_secret=gw.sdk.client_secret,
        retry=PATIENT,
        on_retry=restarter.on_retry,
    ) as sdk:
        starts = gw.starts
        async for customer in sdk.customers.list(filter=C.email.has(tag), page_size=PAGE):
            seen.append(customer.id)
            if len(seen) == 3 * PAGE + 1:
                restarter.kill()
    assert gw.starts == starts + 1
    assert sorted(seen) == sorted(made)
    assert len(seen) == len(set(seen)) == COUNT
