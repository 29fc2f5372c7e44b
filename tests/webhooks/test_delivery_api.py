"""Delivery through the endpoints' own API: created, read, rotated and replayed over
REST, delivered by a dispatcher to a receiver that verifies every request."""

from __future__ import annotations

import pytest

from db.models import WebhookEndpoint
from tests.factories import make_customer
from tests.webhooks.delivery_kit import dispatching, settled, until_async
from tests.webhooks.receiver import Receiver

API = "/api/v1/webhook-endpoints"


@pytest.fixture(autouse=True, scope="module")
async def own_dispatchers(server):
    running = server.app.ctx.webhooks
    if running is not None:
        await running.stop()
    yield
    if running is not None:
        await running.start()


async def test_an_endpoint_made_over_rest_is_delivered_to_rotated_and_replayed(server, tenant):
    c = tenant.client
    async with Receiver() as receiver:
        made = await c.post(API, json={"url": receiver.url(), "topics": ["customers"]})
        assert made.status_code == 201, made.text
        endpoint = made.json()["data"]
        ident, first_secret = endpoint["id"], endpoint["secret"]
        receiver.secrets = [first_secret]
        try:
            receiver.mode = "fail"
            async with dispatching(server, max_attempts=2):
                await make_customer(tenant.owner)
                await settled()
                await until_async(lambda: _letters(c, ident, "dead"), "a dead letter")
                log = (await c.get(f"{API}/{ident}/deliveries")).json()["data"]
                assert [(d["outcome"], d["http_status"], d["attempt"]) for d in log] == [
                    ("failed", 500, 2),
                    ("failed", 500, 1),
                ]  # newest first
                assert log[0]["response_excerpt"] == "receiver says no"

                receiver.mode = "ok"
                replay = await c.post(f"{API}/{ident}:replayDeadLetters")
                assert replay.status_code == 200, replay.text
                await until_async(lambda: _letters(c, ident, "replayed"), "the replay")
                assert len(receiver.delivered) == 1

                rotated = await c.post(f"{API}/{ident}:rotateSecret")
                assert rotated.status_code == 200, rotated.text
                second_secret = rotated.json()["data"]["secret"]
                receiver.secrets = [first_secret, second_secret]  # both must verify
                await make_customer(tenant.owner)
                await receiver.wait_for(lambda: len(receiver.delivered) == 2, "after rotation")
            shown = (await c.get(f"{API}/{ident}")).json()["data"]
            assert shown["secret"] is None
            assert shown["cursor"] == receiver.ids()[-1]
            assert receiver.rejected == []
        finally:
            await WebhookEndpoint.filter(id=ident).delete()


async def _letters(client, ident: int, status: str) -> bool:
    letters = (await client.get(f"{API}/{ident}/dead-letters")).json()["data"]
    return bool(letters) and all(letter["status"] == status for letter in letters)
