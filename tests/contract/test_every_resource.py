"""Contracts every declared resource keeps on every door (``db/catalog.py``).

Each test runs once per resource in the catalog, so a resource that is declared
but not served correctly somewhere fails here without a test of its own: REST and
GraphQL show the same object, another organization never sees it, a caller
without the scope is refused on both doors, every write reaches the JSON
channel, SSE and GraphQL subscriptions, ``node`` finds it, relations resolve on
both doors, lists are counted by the GraphQL cost limit, and the OpenAPI,
AsyncAPI and SDL documents describe it.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import datetime
from enum import Enum
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest, gql
from gql.transport.websockets import WebsocketsTransport
from graphql import parse
from strawberry.utils.str_converters import to_camel_case

from db import events as change_log
from db.catalog import CATALOG
from db.declare import Resource, scalar_fields
from resolvers.limits import DocumentLimits, measure
from resolvers.schema import build_schema
from resolvers.types import global_id
from tests import realtime_clients as rt
from tests.conftest import Tenant
from tests.factories import TOKENS, assert_problem, client_as

RESOURCES = list(CATALOG.resources)
ids = [r.name for r in RESOURCES]
per_resource = pytest.mark.parametrize("res", RESOURCES, ids=ids)
_seq = itertools.count(1)


def _unique(value: Any) -> Any:
    tag = f"{next(_seq)}{uuid.uuid4().hex[:6]}"
    if isinstance(value, str) and "@" in value:
        local, _, domain = value.partition("@")
        return f"{local}.{tag}@{domain}"
    return f"{value}-{tag}" if isinstance(value, str) else value


async def body_for(client: httpx.AsyncClient, res: Resource) -> dict[str, Any]:
    """A valid create body from the declaration's example: unique fields made unique,
    to-one relations pointed at new rows of their own (made the same way)."""
    body = {k: _unique(v) if k in res.unique else v for k, v in res.example.items()}
    for rel in res.relations:
        if not rel.many and rel.key in body:
            body[rel.key] = (await create(client, CATALOG.by_name[rel.target]))["id"]
    for name, fill in SPECIAL_BODIES.get(res.name, {}).items():
        body[name] = await fill(client)
    return body


async def _order_items(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    product = await create(client, CATALOG.by_name["product"])
    return [{"product_id": product["id"], "quantity": 1}]


# What a declaration's example cannot say by itself: lines pointing at real products.
SPECIAL_BODIES = {"order": {"items": _order_items}}


async def create(client: httpx.AsyncClient, res: Resource) -> dict[str, Any]:
    r = await client.post(f"/api/v1/{res.collection}", json=await body_for(client, res))
    assert r.status_code == 201, r.text
    return dict(r.json()["data"])


async def graphql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    r = await client.post("/graphql", json={"query": query, "variables": variables or {}})
    assert r.status_code in (200, 400, 403), r.text
    return dict(r.json())


def _selection(res: Resource) -> str:
    names = [to_camel_case(n) for n in scalar_fields(res.shape) if n != "id"]
    return " ".join(["id", "databaseId", *names])


def _as_rest(res: Resource, node: dict[str, Any]) -> dict[str, Any]:
    out = {"id": node["databaseId"]}
    for name, (kind, _) in scalar_fields(res.shape).items():
        if name == "id":
            continue
        value = node[to_camel_case(name)]
        if issubclass(kind, Enum):  # GraphQL names the member, REST writes its value
            value = kind[value].value
        out[name] = value
    return out


@per_resource
async def test_rest_and_graphql_show_the_same_object(tenant: Tenant, res: Resource) -> None:
    row = await create(tenant.client, res)
    query = f"query ($id: ID!) {{ {to_camel_case(res.name)}(id: $id) {{ {_selection(res)} }} }}"
    body = await graphql(tenant.client, query, {"id": global_id(res.type_name, row["id"])})
    assert "errors" not in body, body
    node = body["data"][to_camel_case(res.name)]
    rest = {k: v for k, v in row.items() if k in scalar_fields(res.shape)}
    for name in res.shown_once:  # a secret: in the create's answer only, null on reads
        assert rest.pop(name) is not None, name
        rest[name] = None
    assert _as_rest(res, node) == rest
    # ``node`` finds it by the same global id, as the same type.
    found = await graphql(
        tenant.client,
        f"query ($id: ID!) {{ node(id: $id) {{ __typename ... on {res.type_name} "
        "{ databaseId } } }",
        {"id": node["id"]},
    )
    assert found["data"]["node"] == {"__typename": res.type_name, "databaseId": row["id"]}


@per_resource
async def test_graphql_mutations_write_what_rest_reads(tenant: Tenant, res: Resource) -> None:
    if res.create is None:
        pytest.skip(f"{res.name} has no create")
    values = await body_for(tenant.client, res)
    variables = {"input": {to_camel_case(k): _camel(v) for k, v in values.items()}}
    field = f"{res.create_verb}{res.type_name}"
    input_type = res.create_input.__name__ if res.create_input else ""
    created = await graphql(
        tenant.client,
        f"mutation ($input: {input_type}!) {{ {field}(input: $input) {{ databaseId version }} }}",
        variables,
    )
    assert "errors" not in created, created
    ident = created["data"][field]["databaseId"]
    r = await tenant.client.get(f"/api/v1/{res.collection}/{ident}")
    assert r.status_code == 200, r.text
    for key, value in values.items():
        if key in scalar_fields(res.shape):
            assert r.json()["data"][key] == value, key
    deleted = await graphql(
        tenant.client,
        f"mutation ($id: ID!) {{ delete{res.type_name}(id: $id) {{ __typename }} }}"
        if res.soft_delete
        else f"mutation ($id: ID!) {{ delete{res.type_name}(id: $id) }}",
        {"id": global_id(res.type_name, ident)},
    )
    if res.name == "order":  # only cancelled orders are deleted: the rule holds here too
        assert deleted["errors"][0]["extensions"]["code"] == "CONFLICT", deleted
    else:
        assert "errors" not in deleted, deleted


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {to_camel_case(k): _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


@per_resource
async def test_graphql_input_of_the_wrong_shape_is_a_client_error(
    tenant: Tenant, res: Resource
) -> None:
    """Variables that do not fit the input type (a required field missing, a string for
    a number) are the client's error on every declared mutation, never ``INTERNAL``."""
    if res.create_input is None:
        pytest.skip(f"{res.name} has no create")
    field = f"{res.create_verb}{res.type_name}"
    query = f"mutation ($input: {res.create_input.__name__}!) {{ {field}(input: $input) {{ id }} }}"
    for variables in ({"input": {}}, {"input": {"nope": 1}}, {"input": "text"}, {}):
        body = await graphql(tenant.client, query, variables)
        codes = [e["extensions"]["code"] for e in body["errors"]]
        assert codes, body
        assert "INTERNAL" not in codes, body


@per_resource
async def test_another_organization_never_sees_it(
    tenant: Tenant, other_tenant: Tenant, res: Resource
) -> None:
    row = await create(tenant.client, res)
    r = await other_tenant.client.get(f"/api/v1/{res.collection}/{row['id']}")
    assert_problem(r, 404, "NOT_FOUND")
    listed = await other_tenant.client.get(f"/api/v1/{res.collection}", params={"page_size": 200})
    assert row["id"] not in [item["id"] for item in listed.json()["data"]]
    body = await graphql(
        other_tenant.client,
        f"query ($id: ID!) {{ {to_camel_case(res.name)}(id: $id) {{ databaseId }} }}",
        {"id": global_id(res.type_name, row["id"])},
    )
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", body
    body = await graphql(
        other_tenant.client,
        "query ($id: ID!) { node(id: $id) { id } }",
        {"id": global_id(res.type_name, row["id"])},
    )
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", body


@per_resource
async def test_scopes_guard_both_doors(tenant: Tenant, res: Resource) -> None:
    row = await create(tenant.client, res)
    others = sorted(s for s in ("stats:read", "events:read"))
    async with client_as(tenant.client, tenant.slug, "viewer") as viewer:
        r = await viewer.get(f"/api/v1/{res.collection}/{row['id']}")
        if res.scope:  # a privileged scope: owners and admins only, reads too
            assert_problem(r, 403, "PERMISSION_DENIED")
        else:
            assert r.status_code == 200, r.text
        r = await viewer.post(f"/api/v1/{res.collection}", json=await body_for(tenant.client, res))
        assert_problem(r, 403, "PERMISSION_DENIED")
        body = await graphql(
            viewer,
            f"mutation ($id: ID!) {{ delete{res.type_name}(id: $id) {{ __typename }} }}"
            if res.soft_delete
            else f"mutation ($id: ID!) {{ delete{res.type_name}(id: $id) }}",
            {"id": global_id(res.type_name, row["id"])},
        )
        assert body["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED", body
    async with client_as(tenant.client, tenant.slug, "staff", others) as blind:
        r = await blind.get(f"/api/v1/{res.collection}")
        assert_problem(r, 403, "PERMISSION_DENIED")
        body = await graphql(
            blind, f"{{ {to_camel_case(res.plural)} {{ nodes {{ databaseId }} }} }}"
        )
        assert body["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED", body


@per_resource
async def test_every_write_reaches_every_realtime_door(
    server: Any, tenant: Tenant, res: Resource
) -> None:
    head = await change_log.head_position()
    row = await create(tenant.client, res)
    token = TOKENS.mint(tenant.id, "owner")
    expected = f"{res.name}.created"

    async with rt.realtime(server.base_url, token) as ws:
        await rt.subscribe(ws, "s", [res.topic], after=head)
        got = await rt.events(ws, 1)
        while got[-1]["type"] != expected:  # creating a row may change others first
            got = await rt.events(ws, 1)
        assert got[-1]["resource_id"] == str(row["id"])
        assert got[-1]["data"]["id"] == row["id"]

    headers = {"Authorization": f"Bearer {token}"}
    async with rt.sse(tenant.client, {"topics": res.topic, "after": head}, headers) as stream:
        event = (await stream.events(1))[0]
        while event["event"] != expected:
            event = (await stream.events(1))[0]

    transport = WebsocketsTransport(
        url=rt.ws_url(server.base_url, "/graphql"),
        init_payload={"Authorization": f"Bearer {token}"},
        subprotocols=["graphql-transport-ws"],
    )
    field = f"{to_camel_case(res.name)}Events"
    document = gql(
        f"subscription ($after: StreamPosition) {{ {field}(after: $after) "
        f"{{ type {to_camel_case(res.name)} {{ databaseId }} }} }}"
    )
    async with Client(transport=transport) as session:

        async def first_created() -> dict[str, Any]:
            request = GraphQLRequest(document, variable_values={"after": head})
            async for result in session.subscribe(request):
                if result[field]["type"] == expected:
                    return dict(result[field])
            raise AssertionError("the subscription ended")

        event = await asyncio.wait_for(first_created(), 30)
    assert event[to_camel_case(res.name)] == {"databaseId": row["id"]}


@per_resource
async def test_relations_resolve_on_both_doors(tenant: Tenant, res: Resource) -> None:
    if not res.relations:
        pytest.skip(f"{res.name} declares no relation")
    for rel in res.relations:
        target = CATALOG.by_name[rel.target]
        if rel.many:
            parent = await create(tenant.client, res)
            values = await body_for(tenant.client, target)
            if rel.key in target.fields:
                values[rel.key] = parent["id"]
            r = await tenant.client.post(f"/api/v1/{target.collection}", json=values)
            assert r.status_code == 201, r.text
            child = r.json()["data"]
            listed = await tenant.client.get(f"/api/v1/{res.collection}/{parent['id']}/{rel.name}")
            assert [c["id"] for c in listed.json()["data"]] == [child["id"]], listed.text
            body = await graphql(
                tenant.client,
                f"query ($id: ID!) {{ {to_camel_case(res.name)}(id: $id) "
                f"{{ {to_camel_case(rel.name)} {{ databaseId }} }} }}",
                {"id": global_id(res.type_name, parent["id"])},
            )
            got = body["data"][to_camel_case(res.name)][to_camel_case(rel.name)]
            assert got == [{"databaseId": child["id"]}], body
            missing = await tenant.client.get(f"/api/v1/{res.collection}/2147483000/{rel.name}")
            assert_problem(missing, 404, "NOT_FOUND")
        else:
            row = await create(tenant.client, res)
            if row.get(rel.key) is None:
                other = await create(tenant.client, target)
                r = await tenant.client.patch(
                    f"/api/v1/{res.collection}/{row['id']}", json={rel.key: other["id"]}
                )
                assert r.status_code == 200, r.text
                row = r.json()["data"]
            r = await tenant.client.get(
                f"/api/v1/{res.collection}/{row['id']}", params={"expand": rel.name}
            )
            assert r.json()["data"][rel.name]["id"] == row[rel.key], r.text
            listed = await tenant.client.get(
                f"/api/v1/{res.collection}", params={"expand": rel.name, "page_size": 5}
            )
            assert all(item[rel.name]["id"] == item[rel.key] for item in listed.json()["data"])
            body = await graphql(
                tenant.client,
                f"{{ {to_camel_case(res.plural)}(first: 5) {{ nodes {{ {to_camel_case(rel.key)} "
                f"{to_camel_case(rel.name)} {{ databaseId }} }} }} }}",
            )
            for node in body["data"][to_camel_case(res.plural)]["nodes"]:
                linked = node[to_camel_case(rel.name)]
                key = node[to_camel_case(rel.key)]
                assert (linked or {}).get("databaseId") == key, body


@per_resource
async def test_expand_names_only_declared_relations(tenant: Tenant, res: Resource) -> None:
    r = await tenant.client.get(f"/api/v1/{res.collection}", params={"expand": "nothing_here"})
    assert_problem(r, 400, "INVALID_ARGUMENT")


@per_resource
def test_the_cost_limit_counts_its_lists(res: Resource) -> None:
    limits = DocumentLimits()
    plain = measure(
        parse(f"{{ {to_camel_case(res.plural)}(first: 7) {{ nodes {{ databaseId }} }} }}"), limits
    )
    assert plain.costs[None] >= 7 * res.cost, plain.costs
    unbounded = measure(
        parse(f"{{ {to_camel_case(res.plural)} {{ nodes {{ databaseId }} }} }}"), limits
    )
    assert unbounded.costs[None] >= limits.max_page_size, unbounded.costs
    for rel in res.relations:
        if rel.many:
            nested = (
                f"{{ {to_camel_case(res.plural)}(first: 200) {{ nodes {{ {to_camel_case(rel.name)}"
            )
            nested += "(first: 100) { databaseId } } } }"
            assert measure(parse(nested), limits).errors, f"{res.name}.{rel.name} not counted"


def test_every_resource_is_in_the_schema_openapi_and_asyncapi(repo_root: Any) -> None:
    from realtime.asyncapi import document as asyncapi

    sdl = build_schema().as_str()
    assert (repo_root / "schema.graphql").read_text().strip() == sdl.strip()
    for res in RESOURCES:
        assert f"type {res.type_name} implements Node" in sdl
        assert f"{to_camel_case(res.name)}Events(" in sdl
    document = asyncapi("http://localhost")
    message = document["channels"]["realtime"]["messages"]["subscribe"]["payload"]
    topics = message["properties"]["topics"]["items"]["enum"]
    schemas = document["components"]["schemas"]
    for res in RESOURCES:
        assert res.topic in topics, res.topic
        assert set(schemas[res.shape.__name__]["properties"]) == set(res.fields), res.name


@per_resource
async def test_openapi_documents_each_route(tenant: Tenant, res: Resource) -> None:
    doc = (await tenant.client.get("/api/v1/openapi.json")).json()
    paths = doc["paths"]
    assert {"get", "post"} <= set(paths[f"/{res.collection}"]) or res.create is None
    assert {"get", "patch", "put", "delete"} <= set(paths[f"/{res.collection}/{{id}}"])
    for action in res.actions:
        assert "post" in paths[f"/{res.collection}/{{id}}:{action.name}"]
    for rel in res.relations:
        if rel.many:
            assert "get" in paths[f"/{res.collection}/{{id}}/{rel.name}"]
    schema = doc["components"]["schemas"][res.shape.__name__]
    assert set(schema["properties"]) == set(res.fields)
    (stream,) = [
        op["get"]
        for op in paths.values()
        if op.get("get", {}).get("operationId") == "stream_events"
    ]
    (topics,) = [p for p in stream["parameters"] if p["name"] == "topics"]
    assert res.topic in topics["description"]  # the SSE stream names every topic


def test_timestamps_are_datetimes_in_every_shape() -> None:
    for res in RESOURCES:
        kinds = scalar_fields(res.shape)
        assert kinds["created_at"][0] is datetime, res.name
        assert kinds["updated_at"][0] is datetime, res.name
