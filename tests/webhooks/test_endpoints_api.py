"""Webhook endpoints over REST and GraphQL: writes, the secret shown once, rotation,
validation, scopes and tenancy (``db/webhooks.py``).

The delivery log and dead letters are in ``test_api_log.py``. Endpoints made here are
disabled unless a test needs otherwise, so the gateway's dispatcher leaves them alone.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from db import webhooks
from db.events import head_position
from db.models import Event, WebhookDeadLetter, WebhookEndpoint
from realtime.topics import TOPICS
from resolvers.types import global_id
from tests import realtime_clients as rt
from tests.conftest import RunningServer, Tenant
from tests.factories import TOKENS, assert_problem, client_as

BASE = "/api/v1/webhook-endpoints"


def body(**overrides: Any) -> dict[str, Any]:
    return {"url": "https://hooks.example.com/in", "topics": ["orders"], "enabled": False} | (
        overrides
    )


async def create(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    r = await client.post(BASE, json=body(**overrides))
    assert r.status_code == 201, r.text
    return dict(r.json()["data"])


async def graphql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    r = await client.post("/graphql", json={"query": query, "variables": variables or {}})
    assert r.status_code == 200, r.text
    return dict(r.json())


def assert_whsec(secret: str) -> None:
    assert secret.startswith("whsec_"), secret
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32


FIELDS = (
    "databaseId url description topics filter enabled disabledReason disabledAt secret "
    "previousSecretExpiresAt cursor failingSince version createdAt updatedAt"
)


# -- writes and reads -----------------------------------------------------------------------


async def test_rest_create_read_update_delete(tenant: Tenant) -> None:
    head = await head_position()
    r = await tenant.client.post(BASE, json=body(description="ERP", filter="total_cents > 100"))
    assert r.status_code == 201, r.text
    created = r.json()["data"]
    assert r.headers["location"] == f"{BASE}/{created['id']}"
    assert_whsec(created["secret"])
    assert created["topics"] == ["orders"]
    assert created["filter"] == "total_cents > 100"
    assert created["enabled"] is False
    assert created["cursor"] >= head  # only events after it exists
    ident = created["id"]

    got = (await tenant.client.get(f"{BASE}/{ident}")).json()["data"]
    assert got["secret"] is None
    assert {k: v for k, v in got.items() if k != "secret"} == {
        k: v for k, v in created.items() if k != "secret"
    }
    listed = (await tenant.client.get(BASE)).json()["data"]
    assert [(e["id"], e["secret"]) for e in listed] == [(ident, None)]

    r = await tenant.client.patch(f"{BASE}/{ident}", json={"description": "ERP (staging)"})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["description"] == "ERP (staging)"
    assert r.json()["data"]["version"] == 2
    assert r.json()["data"]["secret"] is None
    r = await tenant.client.put(
        f"{BASE}/{ident}",
        json=body(url="https://hooks.example.com/v2", topics=["orders", "products"]),
        headers={"If-Match": '"v2"'},
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["topics"] == ["orders", "products"]
    assert r.json()["data"]["description"] == ""  # a replace resets what it leaves out
    r = await tenant.client.delete(f"{BASE}/{ident}", headers={"If-Match": '"v2"'})
    assert_problem(r, 412, "PRECONDITION_FAILED")
    r = await tenant.client.delete(f"{BASE}/{ident}")
    assert r.status_code == 204, r.text
    assert_problem(await tenant.client.get(f"{BASE}/{ident}"), 404, "NOT_FOUND")


async def test_graphql_create_read_update_delete(tenant: Tenant) -> None:
    created = await graphql(
        tenant.client,
        f"mutation ($i: WebhookEndpointInput!) {{ createWebhookEndpoint(input: $i) "
        f"{{ id {FIELDS} }} }}",
        {"i": {"url": "https://hooks.example.com/g", "topics": ["customers"], "enabled": False}},
    )
    assert "errors" not in created, created
    node = created["data"]["createWebhookEndpoint"]
    assert_whsec(node["secret"])
    assert node["topics"] == ["customers"]

    read = await graphql(
        tenant.client,
        f"query ($id: ID!) {{ webhookEndpoint(id: $id) {{ {FIELDS} }} "
        f"webhookEndpoints {{ nodes {{ {FIELDS} }} }} node(id: $id) {{ ... on WebhookEndpoint "
        "{ secret } } }",
        {"id": node["id"]},
    )
    assert "errors" not in read, read
    assert read["data"]["webhookEndpoint"]["secret"] is None
    assert [n["secret"] for n in read["data"]["webhookEndpoints"]["nodes"]] == [None]
    assert read["data"]["node"] == {"secret": None}
    rest = (await tenant.client.get(f"{BASE}/{node['databaseId']}")).json()["data"]
    assert read["data"]["webhookEndpoint"]["url"] == rest["url"]

    updated = await graphql(
        tenant.client,
        'mutation ($id: ID!) { updateWebhookEndpoint(id: $id, input: {filter: "id > 0"}, '
        "expectedVersion: 1) { filter version secret } }",
        {"id": node["id"]},
    )
    assert updated["data"]["updateWebhookEndpoint"] == {
        "filter": "id > 0",
        "version": 2,
        "secret": None,
    }
    deleted = await graphql(
        tenant.client, "mutation ($id: ID!) { deleteWebhookEndpoint(id: $id) }", {"id": node["id"]}
    )
    assert deleted["data"]["deleteWebhookEndpoint"] == node["id"], deleted


async def test_a_replayed_create_answers_the_same_secret(tenant: Tenant) -> None:
    """A retry with the same Idempotency-Key answers what the first call answered, the
    secret included (it would otherwise be lost to a client whose first answer was)."""
    headers = {"Idempotency-Key": "webhook-create-1"}
    first = await tenant.client.post(BASE, json=body(), headers=headers)
    again = await tenant.client.post(BASE, json=body(), headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json()["data"]["secret"] == first.json()["data"]["secret"]
    assert len((await tenant.client.get(BASE)).json()["data"]) == 1


# -- the secret, shown once ---------------------------------------------------------------


async def test_the_secret_is_never_in_the_change_log_or_the_channels(
    server: RunningServer, tenant: Tenant
) -> None:
    head = await head_position()
    token = TOKENS.mint(tenant.id, "owner")
    async with rt.realtime(server.base_url, token) as ws:
        await rt.subscribe(ws, "s", ["webhook-endpoints"], after=head)
        created = await create(tenant.client)
        rotated = await tenant.client.post(f"{BASE}/{created['id']}:rotateSecret")
        assert rotated.status_code == 200, rotated.text
        secrets = {created["secret"], rotated.json()["data"]["secret"]}
        got = await rt.events(ws, 2)
    assert [e["type"] for e in got] == ["webhook_endpoint.created", "webhook_endpoint.updated"]
    for event in got:
        assert event["data"]["secret"] is None
        assert not any(s.encode() in orjson.dumps(event) for s in secrets)

    headers = {"Authorization": f"Bearer {token}"}
    params = {"topics": "webhook-endpoints", "after": head}
    async with rt.sse(tenant.client, params, headers) as stream:
        sent = await stream.events(2)
    for event in sent:
        assert event["data"]["data"]["secret"] is None
        assert not any(s.encode() in orjson.dumps(event) for s in secrets)

    snapshots = await Event.filter(
        organization_id=tenant.id, resource="webhook_endpoint"
    ).values_list("snapshot", flat=True)
    assert len(snapshots) == 2
    assert not any(s.encode() in orjson.dumps(snapshots) for s in secrets)


async def test_rotation_gives_a_new_secret_and_keeps_the_old_one_a_day(tenant: Tenant) -> None:
    created = await create(tenant.client)
    before = datetime.now(UTC)
    r = await tenant.client.post(
        f"{BASE}/{created['id']}:rotateSecret", headers={"If-Match": '"v1"'}
    )
    assert r.status_code == 200, r.text
    rotated = r.json()["data"]
    assert_whsec(rotated["secret"])
    assert rotated["secret"] != created["secret"]
    assert rotated["version"] == 2
    expires = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert before + timedelta(hours=23, minutes=59) < expires
    assert expires < datetime.now(UTC) + timedelta(hours=24, minutes=1)
    row = await WebhookEndpoint.get(id=created["id"])
    assert (row.secret, row.previous_secret) == (rotated["secret"], created["secret"])
    assert (await tenant.client.get(f"{BASE}/{created['id']}")).json()["data"]["secret"] is None

    stale = await tenant.client.post(
        f"{BASE}/{created['id']}:rotateSecret", headers={"If-Match": '"v1"'}
    )
    assert_problem(stale, 412, "PRECONDITION_FAILED")
    by_graphql = await graphql(
        tenant.client,
        "mutation ($id: ID!) { rotateSecretWebhookEndpoint(id: $id) { secret version } }",
        {"id": global_id("WebhookEndpoint", created["id"])},
    )
    again = by_graphql["data"]["rotateSecretWebhookEndpoint"]
    assert_whsec(again["secret"])
    assert again["version"] == 3
    row = await WebhookEndpoint.get(id=created["id"])
    assert (row.secret, row.previous_secret) == (again["secret"], rotated["secret"])


async def test_enabling_clears_the_failure_state(tenant: Tenant) -> None:
    created = await create(tenant.client)
    now = datetime.now(UTC)
    await WebhookEndpoint.filter(id=created["id"]).update(
        disabled_reason="failing for 3 days",
        disabled_at=now,
        failing_since=now - timedelta(days=3),
        consecutive_failures=40,
        breaker_open_until=now + timedelta(minutes=1),
    )
    r = await tenant.client.patch(f"{BASE}/{created['id']}", json={"enabled": True})
    assert r.status_code == 200, r.text
    shown = r.json()["data"]
    assert shown["enabled"] is True
    assert shown["disabled_reason"] is shown["disabled_at"] is shown["failing_since"] is None
    row = await WebhookEndpoint.get(id=created["id"])
    assert (row.consecutive_failures, row.breaker_open_until) == (0, None)
    r = await tenant.client.patch(f"{BASE}/{created['id']}", json={"enabled": False})
    assert r.json()["data"]["disabled_at"] is not None
    assert r.json()["data"]["disabled_reason"] == "disabled by a client"


# -- validation ---------------------------------------------------------------------------

LONG_URL = "https://hooks.example.com/" + "a" * (2049 - len("https://hooks.example.com/"))
REFUSED = [
    ({"url": "http://hooks.example.com/in"}, "url", "url_insecure"),
    ({"url": "http://10.0.0.1/in"}, "url", "url_insecure"),
    ({"url": "https://user:pw@hooks.example.com/in"}, "url", "url_userinfo"),
    ({"url": "https://token@hooks.example.com/in"}, "url", "url_userinfo"),
    ({"url": "https://hooks.example.com/in#part"}, "url", "url_fragment"),
    ({"url": "ftp://hooks.example.com/in"}, "url", "url_invalid"),
    ({"url": "hooks.example.com/in"}, "url", "url_invalid"),
    ({"url": "https://hooks.example.com:99999/in"}, "url", "url_invalid"),
    # What httpx (the dispatcher's client) would refuse at every delivery: refused here.
    ({"url": "https://0177.0.0.1/in"}, "url", "url_invalid"),
    ({"url": "https://01.1.1.1/in"}, "url", "url_invalid"),
    ({"url": "https://\u24d4xample.com/in"}, "url", "url_invalid"),
    ({"url": "https://exa mple.com/in"}, "url", "url_invalid"),
    ({"url": "https://a..b/in"}, "url", "url_invalid"),
    ({"url": "https://hooks.example.com:0/in"}, "url", "url_invalid"),
    ({"url": LONG_URL}, "url", "string_too_long"),
    ({"topics": ["orders", "invoices"]}, "topics", "unknown_topic"),
    ({"topics": []}, "topics", "too_short"),
    ({"filter": "nope = 1"}, "filter", "invalid_filter"),
    ({"filter": "status = paid", "topics": ["orders", "customers"]}, "filter", "invalid_filter"),
    ({"filter": "total_cents >"}, "filter", "invalid_filter"),
    ({"description": "x" * 501}, "description", "string_too_long"),
]


@pytest.mark.parametrize(("change", "field", "kind"), REFUSED, ids=[r[2] for r in REFUSED])
async def test_bad_input_is_a_422_naming_the_field(
    tenant: Tenant, change: dict[str, Any], field: str, kind: str
) -> None:
    assert len(LONG_URL) == 2049
    problem = assert_problem(
        await tenant.client.post(BASE, json=body(**change)), 422, "VALIDATION_ERROR"
    )
    assert [(e["loc"], e["type"]) for e in problem["errors"]] == [(["body", field], kind)]
    created = await create(tenant.client)
    r = await tenant.client.patch(f"{BASE}/{created['id']}", json=change)
    problem = assert_problem(r, 422, "VALIDATION_ERROR")
    assert problem["errors"][0]["type"] == kind
    gql = await graphql(
        tenant.client,
        "mutation ($i: WebhookEndpointInput!) { createWebhookEndpoint(input: $i) { id } }",
        {"i": body(**change)},
    )
    (error,) = gql["errors"]
    assert error["extensions"]["code"] == "VALIDATION_ERROR", gql
    assert error["extensions"]["errors"][0]["type"] == kind
    assert len((await tenant.client.get(BASE)).json()["data"]) == 1  # the one made above


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8080/in",
        "http://127.0.0.1/in",
        "http://127.8.9.10:9000/in",
        "http://[::1]:8080/in",
        "https://hooks.example.com/in?key=value",
        LONG_URL[:2048],
    ],
)
async def test_loopback_http_and_any_https_url_are_taken(tenant: Tenant, url: str) -> None:
    assert (await create(tenant.client, url=url))["url"] == url


async def test_a_filter_may_use_fields_every_topic_has(tenant: Tenant) -> None:
    made = await create(tenant.client, topics=["orders", "customers"], filter="id > 3")
    assert made["filter"] == "id > 3"
    r = await tenant.client.patch(f"{BASE}/{made['id']}", json={"topics": ["orders"]})
    assert r.status_code == 200, r.text
    r = await tenant.client.patch(f"{BASE}/{made['id']}", json={"filter": "status = paid"})
    assert r.status_code == 200, r.text
    r = await tenant.client.patch(f"{BASE}/{made['id']}", json={"topics": ["customers"]})
    problem = assert_problem(r, 422, "VALIDATION_ERROR")  # the filter no longer fits
    assert problem["errors"][0]["loc"] == ["body", "filter"]


def test_the_topics_are_the_channels_topics() -> None:
    assert set(webhooks.topic_resources()) == set(TOPICS)


# -- scopes and tenancy ---------------------------------------------------------------------


@pytest.mark.parametrize("role", ["staff", "viewer"])
async def test_only_owners_and_admins_manage_endpoints(tenant: Tenant, role: str) -> None:
    made = await create(tenant.client)
    gid = global_id("WebhookEndpoint", made["id"])
    async with client_as(tenant.client, tenant.slug, role) as caller:
        for r in (
            await caller.get(BASE),
            await caller.get(f"{BASE}/{made['id']}"),
            await caller.post(BASE, json=body()),
            await caller.patch(f"{BASE}/{made['id']}", json={"description": "x"}),
            await caller.post(f"{BASE}/{made['id']}:rotateSecret"),
            await caller.delete(f"{BASE}/{made['id']}"),
        ):
            problem = assert_problem(r, 403, "PERMISSION_DENIED")
            assert "webhooks:admin" in problem["detail"]
        for query in (
            "{ webhookEndpoints { nodes { id } } }",
            f'{{ webhookEndpoint(id: "{gid}") {{ id }} }}',
            f'mutation {{ rotateSecretWebhookEndpoint(id: "{gid}") {{ id }} }}',
        ):
            got = await graphql(caller, query)
            assert got["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED", got
    assert (await WebhookEndpoint.get(id=made["id"])).version == 1


async def test_admins_manage_endpoints(tenant: Tenant) -> None:
    async with client_as(tenant.client, tenant.slug, "admin") as admin:
        made = await create(admin)
        r = await admin.post(f"{BASE}/{made['id']}:rotateSecret")
        assert r.status_code == 200, r.text
        assert [e["id"] for e in (await admin.get(BASE)).json()["data"]] == [made["id"]]
        assert (await admin.delete(f"{BASE}/{made['id']}")).status_code == 204


async def test_another_organizations_endpoint_is_not_found(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    made = await create(tenant.client)
    other = other_tenant.client
    for r in (
        await other.get(f"{BASE}/{made['id']}"),
        await other.patch(f"{BASE}/{made['id']}", json={"description": "x"}),
        await other.post(f"{BASE}/{made['id']}:rotateSecret"),
        await other.delete(f"{BASE}/{made['id']}"),
    ):
        assert_problem(r, 404, "NOT_FOUND")
    assert (await other.get(BASE)).json()["data"] == []
    row = await WebhookEndpoint.get(id=made["id"])
    assert (row.version, row.secret) == (1, made["secret"])


async def test_the_openapi_document_has_the_webhook_paths(tenant: Tenant) -> None:
    paths = (await tenant.client.get("/api/v1/openapi.json")).json()["paths"]
    expected = {
        "/webhook-endpoints": {"get", "post"},
        "/webhook-endpoints/{id}": {"get", "patch", "put", "delete"},
        "/webhook-endpoints/{id}:rotateSecret": {"post"},
        "/webhook-endpoints/{id}:replayDeadLetters": {"post"},
        "/webhook-endpoints/{id}/deliveries": {"get"},
        "/webhook-endpoints/{id}/dead-letters": {"get"},
        "/webhook-endpoints/{id}/dead-letters/{letter}:replay": {"post"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
        for method in methods:
            assert paths[path][method]["security"][0] == {"oauth2": ["webhooks:admin"]}


async def test_webhooks_admin_alone_cannot_reach_the_data_an_endpoint_sends(
    tenant: Tenant,
) -> None:
    """Pointing an endpoint elsewhere, rotating its secret, reading or replaying its dead
    letters (which hold the events sent) needs the read scopes of its topics too, as
    creating it does; reading its settings and deleting it do not."""
    made = await create(tenant.client, topics=["customers"], enabled=False)
    letter = await WebhookDeadLetter.create(
        organization_id=tenant.id,
        endpoint_id=made["id"],
        position=1,
        event_type="customer.created",
        event={"position": 1, "data": {"email": "secret@example.com"}},
        attempts=8,
        last_error="HTTP 500",
        status="dead",
    )
    path = f"{BASE}/{made['id']}"
    async with client_as(tenant.client, tenant.slug, "admin", ["webhooks:admin"]) as narrow:
        refused = [
            await narrow.patch(path, json={"url": "https://attacker.example/in"}),
            await narrow.post(f"{path}:rotateSecret"),
            await narrow.get(f"{path}/dead-letters"),
            await narrow.get(f"{path}/deliveries"),
            await narrow.post(f"{path}/dead-letters/{letter.id}:replay"),
            await narrow.post(f"{path}:replayDeadLetters"),
        ]
        for r in refused:
            assert_problem(r, 403, "PERMISSION_DENIED")
        assert (await narrow.get(path)).status_code == 200
        body = await narrow.post(
            "/graphql",
            json={
                "query": "query ($id: ID!) { webhookEndpoint(id: $id) { deadLetters "
                "{ nodes { event } } } }",
                "variables": {"id": global_id("WebhookEndpoint", made["id"])},
            },
        )
        assert "secret@example.com" not in body.text
        assert body.json()["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"
    assert (await WebhookDeadLetter.get(id=letter.id)).status == "dead"
    assert (await WebhookEndpoint.get(id=made["id"])).url == made["url"]
    async with client_as(
        tenant.client, tenant.slug, "admin", ["webhooks:admin", "customers:read"]
    ) as enough:
        r = await enough.get(f"{path}/dead-letters")
        assert r.status_code == 200, r.text


# -- the per-organization cap ------------------------------------------------------------------


async def test_an_organization_has_at_most_max_endpoints_on_both_doors(tenant: Tenant) -> None:
    """Each endpoint costs the installation a worker and a request per event: the cap
    holds at its edge, answers the same code on both doors, and a delete makes room."""
    ids = [(await create(tenant.client))["id"] for _ in range(webhooks.MAX_ENDPOINTS)]
    r = await tenant.client.post(BASE, json=body())
    assert_problem(r, 409, "LIMIT_REACHED")
    assert str(webhooks.MAX_ENDPOINTS) in r.json()["detail"]
    refused = await graphql(
        tenant.client,
        "mutation ($i: WebhookEndpointInput!) { createWebhookEndpoint(input: $i) { id } }",
        {"i": body()},
    )
    assert refused["errors"][0]["extensions"]["code"] == "LIMIT_REACHED"
    assert await WebhookEndpoint.filter(organization_id=tenant.id).count() == len(ids)
    assert (await tenant.client.delete(f"{BASE}/{ids[0]}")).status_code == 204
    await create(tenant.client)  # room for one again
    assert_problem(await tenant.client.post(BASE, json=body()), 409, "LIMIT_REACHED")


async def test_concurrent_creates_at_the_edge_of_the_cap_make_exactly_one(tenant: Tenant) -> None:
    for _ in range(webhooks.MAX_ENDPOINTS - 1):
        await create(tenant.client)
    answers = await asyncio.gather(*(tenant.client.post(BASE, json=body()) for _ in range(6)))
    assert sorted(a.status_code for a in answers) == [201] + [409] * 5
    assert await WebhookEndpoint.filter(organization_id=tenant.id).count() == (
        webhooks.MAX_ENDPOINTS
    )


def test_the_sdk_raises_limit_reached_for_the_cap() -> None:
    from gateway_client.errors import LimitReached, from_problem

    problem = {"code": "LIMIT_REACHED", "detail": "at most 20", "status": 409}
    error = from_problem(409, problem, {}, None)
    assert isinstance(error, LimitReached)
