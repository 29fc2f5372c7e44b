"""Limits with clear errors: depth, aliases, tokens, cost, introspection, bad requests."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import OperationType

from db.principal import Principal
from gateway.settings import Settings
from resolvers.context import Context
from resolvers.schema import build_schema
from tests.factories import make_customer


async def post(tenant: Any, body: Any) -> tuple[int, dict[str, Any]]:
    r = await tenant.client.post("/graphql", json=body)
    return r.status_code, r.json()


def code(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])


async def test_too_deep(tenant, settings):
    inner = "databaseId"
    for _ in range(settings.graphql_max_depth):
        inner = f"customer {{ orders {{ {inner} }} }}"
    status, body = await post(tenant, {"query": f"{{ orders {{ nodes {{ {inner} }} }} }}"})
    assert status == 200
    assert "data" not in body
    assert "depth" in body["errors"][0]["message"]


async def test_too_many_aliases(tenant, settings):
    fields = " ".join(f"a{i}: databaseId" for i in range(settings.graphql_max_aliases + 1))
    _, body = await post(tenant, {"query": f"{{ orders {{ nodes {{ {fields} }} }} }}"})
    assert "data" not in body
    assert "aliases" in body["errors"][0]["message"]


async def test_too_costly(tenant):
    query = (
        "{ customers(first: 100) { nodes { orders(first: 100) { items { product { name } } "
        "customer { orders(first: 100) { databaseId } } } } } }"
    )
    _, body = await post(tenant, {"query": query})
    assert "data" not in body
    assert code(body) == "QUERY_TOO_COSTLY"
    assert body["errors"][0]["extensions"]["cost"] > body["errors"][0]["extensions"]["limit"]


async def test_a_normal_dashboard_query_is_within_the_limits(tenant):
    query = (
        "{ orders(first: 50) { nodes { databaseId customer { name } "
        "items { quantity product { name } } } } }"
    )
    _, body = await post(tenant, {"query": query})
    assert "errors" not in body, body


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"query": ""},
        {"query": 5},
        {"query": "{ orders { nodes { databaseId } } }", "variables": [1]},
        {"query": "{ orders { nodes { databaseId } } }", "operationName": 3},
        [1, 2],
    ],
)
async def test_malformed_requests_are_400(tenant, body):
    r = await tenant.client.post("/graphql", json=body)
    assert r.status_code == 400
    assert r.json()["code"] == "INVALID_ARGUMENT"


async def test_syntax_errors_are_validation_failures_not_500s(tenant):
    _, body = await post(tenant, {"query": "{ orders { nodes { databaseId } }"})
    assert code(body) == "GRAPHQL_VALIDATION_FAILED"
    _, body = await post(tenant, {"query": "{ orders { nodes { nope } } }"})
    assert code(body) == "GRAPHQL_VALIDATION_FAILED"


async def test_introspection_can_be_switched_off():
    principal = Principal(
        subject="t", organization_id=1, scopes=frozenset({"*"}), roles=frozenset({"owner"})
    )
    query = "{ __schema { types { name } } }"
    closed = build_schema(Settings(graphql_introspection=False))
    result = await closed.execute(query, context_value=Context(principal=principal))
    assert result.errors
    assert "introspection" in result.errors[0].message.lower()
    production = Settings(environment="production", public_url="https://api.example.com")
    assert production.introspection_enabled is False
    opened = build_schema(Settings())
    assert not (await opened.execute(query, context_value=Context(principal=principal))).errors


async def test_get_runs_queries_only(tenant):
    r = await tenant.client.get(
        "/graphql", params={"query": 'mutation { deleteCustomer(id: "1") }'}
    )
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert r.json()["code"] == "METHOD_NOT_ALLOWED"


async def test_post_needs_json(tenant):
    r = await tenant.client.post(
        "/graphql",
        content=b"{ orders { nodes { databaseId } } }",
        headers={"Content-Type": "application/graphql"},
    )
    assert r.status_code == 415
    assert r.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_a_request_error_has_no_data_entry_and_400_for_graphql_response_json(tenant):
    r = await tenant.client.post(
        "/graphql",
        json={"query": "{ nope }"},
        headers={"Accept": "application/graphql-response+json"},
    )
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/graphql-response+json")
    assert "data" not in r.json()


async def test_too_many_tokens(tenant, settings):
    fields = " ".join(["databaseId"] * (settings.graphql_max_tokens + 1))
    status, body = await post(tenant, {"query": f"{{ orders {{ nodes {{ {fields} }} }} }}"})
    assert status == 200
    assert "data" not in body
    assert code(body) == "QUERY_TOO_LARGE"
    assert "token" in body["errors"][0]["message"].lower()


async def test_page_sizes_follow_rests_rules(tenant, settings):
    """Above the maximum is served at the maximum (AIP-158), below 1 is an error."""
    for _ in range(settings.page_size_max + 1):
        await make_customer(tenant.owner)
    too_big = settings.page_size_max + 1
    rest = await tenant.client.get("/api/v1/customers", params={"page_size": too_big})
    _, body = await post(
        tenant, {"query": f"{{ customers(first: {too_big}) {{ nodes {{ name }} }} }}"}
    )
    assert len(body["data"]["customers"]["nodes"]) == len(rest.json()["data"])
    assert len(rest.json()["data"]) == settings.page_size_max
    rest = await tenant.client.get("/api/v1/customers", params={"page_size": 0})
    _, body = await post(tenant, {"query": "{ customers(first: 0) { totalCount } }"})
    assert code(body) == rest.json()["code"] == "INVALID_ARGUMENT"
    assert body["errors"][0]["message"] == rest.json()["detail"]


async def test_an_oversized_body_is_413(tenant, settings):
    padding = "#" + "x" * settings.max_body_bytes
    r = await tenant.client.post("/graphql", json={"query": "{ __typename }\n" + padding})
    assert r.status_code == 413
    assert r.json()["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ ordrs { totalCount } }", None),
        ("{ orders(frist: 1) { totalCount } }", None),
        (
            "mutation($c: CustomerInput!) { createCustomer(input: $c) { name } }",
            {"c": {"nmae": "x", "email": "x@example.com"}},
        ),
    ],
    ids=["field", "argument", "input field in a variable"],
)
async def test_suggestions_name_schema_fields_only_outside_production(query, variables):
    principal = Principal(
        subject="t", organization_id=1, scopes=frozenset({"*"}), roles=frozenset({"owner"})
    )
    from resolvers.engine import Runner

    messages = {}
    for environment in ("development", "production"):
        runner = Runner(Settings(environment=environment, public_url="https://api.example.com"))
        result = await runner.run(
            query,
            variables,
            None,
            Context(principal=principal),
            {OperationType.MUTATION, OperationType.QUERY},
        )
        assert result.errors
        messages[environment] = " ".join(e.message for e in result.errors)
    assert "Did you mean" in messages["development"]
    assert "Did you mean" not in messages["production"]
