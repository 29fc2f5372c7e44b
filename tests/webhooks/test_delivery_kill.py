"""Kill the dispatcher mid-delivery: a real ``gateway serve`` process, SIGKILLed while
the receiver holds its request. After a restart nothing is lost, and what is sent
twice is the same message (same ``webhook-id``, same bytes), as Standard Webhooks
allows: receivers de-duplicate on the id.

The gateway processes share the test server's database (whose own dispatcher is
stopped here: one dispatcher per installation).
"""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from db import events as change_log
from db.models import WebhookEndpoint
from tests.conftest import BACKEND, REDIS_URL
from tests.factories import make_customer
from tests.served import gateways
from tests.webhooks.delivery_kit import endpoint, make_endpoint, settled, until_async
from tests.webhooks.receiver import Receiver


@pytest.fixture(autouse=True, scope="module")
async def own_dispatchers(server):
    running = server.app.ctx.webhooks
    if running is not None:
        await running.stop()
    yield
    if running is not None:
        await running.start()


async def test_a_dispatcher_killed_mid_delivery_loses_nothing_and_repeats_only_the_same_message(
    server, tenant, tmp_path
):
    database = {"DATABASE_URL": server.app.ctx.settings.database_url, "AUTO_MIGRATE": "false"}
    database["SEED_DEMO"] = "false"
    if BACKEND == "services":
        database["REDIS_URL"] = REDIS_URL
    env = {"WEBHOOK_ALLOW_PRIVATE_TARGETS": "true", "ENVIRONMENT": "test"}
    async with Receiver() as receiver:
        row = await make_endpoint(tenant.id, receiver.url())
        receiver.secrets = [row.secret]
        receiver.mode = "hold"
        try:
            with gateways(tmp_path, database) as start:
                first = await asyncio.to_thread(start, **env)
                for _ in range(3):
                    await make_customer(tenant.owner)
                await settled()
                await receiver.wait_for(lambda: receiver.held == 1, "a delivery in flight")
                os.killpg(first.proc.pid, signal.SIGKILL)
                await asyncio.to_thread(first.proc.wait, 60)
                receiver.release()  # the held request is answered to no one
                await asyncio.to_thread(start, **env)
                rows = await change_log.events_after(
                    row.cursor, organization_id=tenant.id, resources=("customer",)
                )
                positions = [r["position"] for r in rows]
                assert len(positions) == 3
                await receiver.wait_for(
                    lambda: set(receiver.ids()) >= set(positions), "every event after the restart"
                )
                await until_async(
                    lambda: _cursor_at_least(row.id, positions[-1]), "the cursor past them"
                )
        finally:
            await WebhookEndpoint.filter(id=row.id).delete()
    assert receiver.rejected == []
    ids = receiver.ids()
    assert list(dict.fromkeys(ids)) == positions  # first arrivals in position order
    assert ids.count(positions[0]) == 2  # the one in flight at the kill came twice
    bodies: dict[str, bytes] = {}
    for received in receiver.delivered:  # a repeat is the same message
        assert bodies.setdefault(received.webhook_id, received.body) == received.body


async def _cursor_at_least(endpoint_id: int, position: int) -> bool:
    return (await endpoint(endpoint_id)).cursor >= position
