"""A webhook endpoint's delivery log and dead letters over REST and GraphQL
(``db/webhook_log.py``): newest first, keyset pages, filters, replays, tenancy.

Rows are inserted directly (the dispatcher writes them for real, tests/webhooks/
test_delivery*.py); the endpoints are disabled, so the dispatcher leaves them alone.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from db.models import WebhookDeadLetter
from resolvers.types import global_id
from tests.conftest import Tenant
from tests.factories import assert_problem, client_as
from tests.webhooks.api_kit import add_dead_letter, add_delivery, make_endpoint

BASE = "/api/v1/webhook-endpoints"


async def graphql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    r = await client.post("/graphql", json={"query": query, "variables": variables or {}})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def pages(client: httpx.AsyncClient, path: str, **params: Any) -> list[list[int]]:
    """Every page of ``path`` (ids), following ``next_page_token``."""
    out: list[list[int]] = []
    token = None
    while True:
        query = {**params, **({"page_token": token} if token else {})}
        r = await client.get(path, params=query)
        assert r.status_code == 200, r.text
        out.append([row["id"] for row in r.json()["data"]])
        token = r.json()["metadata"]["pagination"]["next_page_token"]
        if not token:
            return out


async def test_the_delivery_log_is_newest_first_in_keyset_pages(tenant: Tenant) -> None:
    endpoint = (await make_endpoint(tenant.owner))["id"]
    other = (await make_endpoint(tenant.owner))["id"]
    rows = [
        await add_delivery(tenant.id, endpoint, position=10, outcome="failed", attempt=1),
        await add_delivery(tenant.id, endpoint, position=10, outcome="timeout", attempt=2),
        await add_delivery(tenant.id, endpoint, position=10, outcome="delivered", attempt=3),
        await add_delivery(tenant.id, endpoint, position=11, outcome="delivered", http_status=204),
        await add_delivery(tenant.id, endpoint, position=12, outcome="refused", http_status=None),
    ]
    await add_delivery(tenant.id, other, position=10)  # another endpoint's: never listed
    newest_first = [row.id for row in reversed(rows)]

    path = f"{BASE}/{endpoint}/deliveries"
    assert await pages(tenant.client, path, page_size=2) == [
        newest_first[:2],
        newest_first[2:4],
        newest_first[4:],
    ]
    r = await tenant.client.get(path)
    first = r.json()["data"][0]
    assert first == {
        "id": rows[-1].id,
        "position": 12,
        "event_type": "order.created",
        "attempt": 1,
        "outcome": "refused",
        "http_status": None,
        "latency_ms": 12,
        "response_excerpt": "oops",
        "error": "HTTP 500",
        "replay": False,
        "created_at": first["created_at"],
    }
    delivered = await tenant.client.get(path, params={"filter": 'outcome = "delivered"'})
    assert [d["id"] for d in delivered.json()["data"]] == [rows[3].id, rows[2].id]
    at_ten = await tenant.client.get(path, params={"filter": "position = 10 AND attempt >= 2"})
    assert [d["id"] for d in at_ten.json()["data"]] == [rows[2].id, rows[1].id]
    oldest = await tenant.client.get(path, params={"order_by": "id asc", "fields": "id,outcome"})
    assert oldest.json()["data"][0] == {"id": rows[0].id, "outcome": "failed"}
    bad = await tenant.client.get(path, params={"filter": "secret = 1"})
    assert_problem(bad, 400, "INVALID_ARGUMENT")

    query = """query ($id: ID!, $after: String) { webhookEndpoint(id: $id) {
        deliveries(first: 2, after: $after) {
          nodes { databaseId outcome attempt replay }
          edges { cursor } pageInfo { hasNextPage endCursor } } } }"""
    seen: list[int] = []
    after = None
    while True:
        body = await graphql(
            tenant.client, query, {"id": global_id("WebhookEndpoint", endpoint), "after": after}
        )
        assert "errors" not in body, body
        conn = body["data"]["webhookEndpoint"]["deliveries"]
        seen += [n["databaseId"] for n in conn["nodes"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert seen == newest_first


async def test_dead_letters_list_and_replay(tenant: Tenant) -> None:
    endpoint = (await make_endpoint(tenant.owner))["id"]
    letters = [
        await add_dead_letter(tenant.id, endpoint, position=20),
        await add_dead_letter(tenant.id, endpoint, position=21, status="replayed"),
        await add_dead_letter(tenant.id, endpoint, position=22),
    ]
    path = f"{BASE}/{endpoint}/dead-letters"
    listed = (await tenant.client.get(path)).json()["data"]
    assert [row["id"] for row in listed] == [row.id for row in reversed(letters)]
    assert listed[-1]["event"] == {"position": 20, "type": "order.created", "data": {"id": 1}}
    assert set(listed[-1]) == {
        "id",
        "position",
        "event_type",
        "event",
        "attempts",
        "last_error",
        "status",
        "replayed_at",
        "created_at",
    }
    dead = await tenant.client.get(path, params={"filter": "status = dead"})
    assert [row["id"] for row in dead.json()["data"]] == [letters[2].id, letters[0].id]

    r = await tenant.client.post(f"{path}/{letters[0].id}:replay")
    assert r.status_code == 200, r.text
    assert r.json()["data"]["status"] == "replay_requested"
    assert r.json()["data"]["id"] == letters[0].id
    r = await tenant.client.post(f"{BASE}/{endpoint}:replayDeadLetters")
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {"replay_requested": 1}  # the other dead one; none replayed
    statuses = await WebhookDeadLetter.filter(endpoint_id=endpoint).order_by("id")
    assert [s.status for s in statuses] == ["replay_requested", "replayed", "replay_requested"]
    r = await tenant.client.post(f"{path}/{letters[1].id}:replay")  # a replayed one, again
    assert r.json()["data"]["status"] == "replay_requested"


async def test_dead_letters_over_graphql(tenant: Tenant) -> None:
    endpoint = (await make_endpoint(tenant.owner))["id"]
    first = await add_dead_letter(tenant.id, endpoint, position=30)
    second = await add_dead_letter(tenant.id, endpoint, position=31)
    gid = global_id("WebhookEndpoint", endpoint)
    body = await graphql(
        tenant.client,
        """query ($id: ID!) { webhookEndpoint(id: $id) { deadLetters(filter: "status = dead") {
            nodes { databaseId position status event attempts lastError } } } }""",
        {"id": gid},
    )
    nodes = body["data"]["webhookEndpoint"]["deadLetters"]["nodes"]
    assert [n["databaseId"] for n in nodes] == [second.id, first.id]
    assert nodes[0]["event"]["position"] == 31
    replayed = await graphql(
        tenant.client,
        "mutation ($id: ID!, $dl: Int!) { replayWebhookDeadLetter(endpointId: $id, "
        "deadLetterId: $dl) { databaseId status } }",
        {"id": gid, "dl": first.id},
    )
    assert replayed["data"]["replayWebhookDeadLetter"] == {
        "databaseId": first.id,
        "status": "replay_requested",
    }
    everything = await graphql(
        tenant.client,
        "mutation ($id: ID!) { replayWebhookDeadLetters(endpointId: $id) }",
        {"id": gid},
    )
    assert everything["data"]["replayWebhookDeadLetters"] == 1


async def test_another_organization_sees_no_log_and_replays_nothing(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    endpoint = (await make_endpoint(tenant.owner))["id"]
    letter = await add_dead_letter(tenant.id, endpoint)
    await add_delivery(tenant.id, endpoint)
    theirs = (await make_endpoint(other_tenant.owner))["id"]
    other = other_tenant.client
    for r in (
        await other.get(f"{BASE}/{endpoint}/deliveries"),
        await other.get(f"{BASE}/{endpoint}/dead-letters"),
        await other.post(f"{BASE}/{endpoint}/dead-letters/{letter.id}:replay"),
        await other.post(f"{BASE}/{endpoint}:replayDeadLetters"),
        # its own endpoint does not reach the tenant's letter either
        await other.post(f"{BASE}/{theirs}/dead-letters/{letter.id}:replay"),
    ):
        assert_problem(r, 404, "NOT_FOUND")
    body = await graphql(
        other,
        "mutation ($id: ID!, $dl: Int!) { replayWebhookDeadLetter(endpointId: $id, "
        "deadLetterId: $dl) { status } }",
        {"id": global_id("WebhookEndpoint", theirs), "dl": letter.id},
    )
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", body
    assert (await WebhookDeadLetter.get(id=letter.id)).status == "dead"


async def test_a_letter_is_replayed_only_through_its_own_endpoint(tenant: Tenant) -> None:
    endpoint = (await make_endpoint(tenant.owner))["id"]
    sibling = (await make_endpoint(tenant.owner))["id"]
    letter = await add_dead_letter(tenant.id, endpoint)
    r = await tenant.client.post(f"{BASE}/{sibling}/dead-letters/{letter.id}:replay")
    assert_problem(r, 404, "NOT_FOUND")
    r = await tenant.client.post(f"{BASE}/{endpoint}/dead-letters/2147483000:replay")
    assert_problem(r, 404, "NOT_FOUND")
    r = await tenant.client.post(f"{BASE}/{endpoint}/dead-letters/abc:replay")
    assert_problem(r, 400, "INVALID_ARGUMENT")
    assert_problem(await tenant.client.get(f"{BASE}/2147483000/deliveries"), 404, "NOT_FOUND")
    assert (await WebhookDeadLetter.get(id=letter.id)).status == "dead"


@pytest.mark.parametrize("role", ["staff", "viewer"])
async def test_the_log_needs_webhooks_admin(tenant: Tenant, role: str) -> None:
    endpoint = (await make_endpoint(tenant.owner))["id"]
    letter = await add_dead_letter(tenant.id, endpoint)
    async with client_as(tenant.client, tenant.slug, role) as caller:
        for r in (
            await caller.get(f"{BASE}/{endpoint}/deliveries"),
            await caller.get(f"{BASE}/{endpoint}/dead-letters"),
            await caller.post(f"{BASE}/{endpoint}/dead-letters/{letter.id}:replay"),
            await caller.post(f"{BASE}/{endpoint}:replayDeadLetters"),
        ):
            assert_problem(r, 403, "PERMISSION_DENIED")
    async with client_as(tenant.client, tenant.slug, "admin") as admin:
        r = await admin.post(f"{BASE}/{endpoint}:replayDeadLetters")
        assert r.json()["data"] == {"replay_requested": 1}
