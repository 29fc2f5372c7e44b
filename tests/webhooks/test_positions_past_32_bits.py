"""Change-log positions are 64-bit: a webhook endpoint's cursor and its log's positions
past 2**31 (a busy installation gets there within weeks) read the same over REST and
GraphQL (``StreamPosition``, not GraphQL's 32-bit ``Int``)."""

from __future__ import annotations

from db.models import WebhookEndpoint
from resolvers.types import global_id
from tests.conftest import Tenant
from tests.webhooks.api_kit import add_dead_letter, add_delivery, make_endpoint
from tests.webhooks.test_api_log import graphql

FAR = 2**40 + 7  # well past GraphQL's Int


async def test_positions_past_32_bits_read_the_same_over_both_doors(tenant: Tenant) -> None:
    endpoint = (await make_endpoint(tenant.owner))["id"]
    await WebhookEndpoint.filter(id=endpoint).update(cursor=FAR)
    await add_delivery(tenant.id, endpoint, position=FAR)
    await add_dead_letter(tenant.id, endpoint, position=FAR + 1)
    rest = await tenant.client.get(f"/api/v1/webhook-endpoints/{endpoint}")
    assert rest.status_code == 200, rest.text
    assert rest.json()["data"]["cursor"] == FAR
    log = await tenant.client.get(f"/api/v1/webhook-endpoints/{endpoint}/deliveries")
    assert [row["position"] for row in log.json()["data"]] == [FAR]
    body = await graphql(
        tenant.client,
        """query ($id: ID!) { webhookEndpoint(id: $id) { cursor
            deliveries { nodes { position } } deadLetters { nodes { position } } } }""",
        {"id": global_id("WebhookEndpoint", endpoint)},
    )
    assert "errors" not in body, body
    found = body["data"]["webhookEndpoint"]
    assert found["cursor"] == FAR
    assert found["deliveries"]["nodes"] == [{"position": FAR}]
    assert found["deadLetters"]["nodes"] == [{"position": FAR + 1}]
