"""Strict input through both doors: REST bodies and GraphQL inputs meet the same ``db/`` rules.

Each bad input is sent as a REST body and as the matching GraphQL mutation; both
must answer ``VALIDATION_ERROR`` with the same ``errors`` (only the first element
of ``loc`` differs: ``body`` or ``input``) and change nothing. GraphQL's own
typing answers first where it can (an ``Int!`` takes no string, a required field
no ``null``); what it lets through (``null`` in a partial update, text) is judged
by ``db.inputs``. An update that changes nothing keeps its version through
either door.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.factories import db_state, world
from tests.graphql.test_parity import gql, gql_outcome, rest_outcome, to_graphql

API = "/api/v1"
Body = dict[str, Any]


@dataclass(frozen=True)
class Case:
    """One bad input: where REST takes it, which mutation GraphQL takes it with, the body."""

    rest: Callable[[Body], tuple[str, str]]  # the world -> (method, path)
    mutation: str  # e.g. "updateProduct"
    input_type: str  # e.g. "ProductPatch"
    target: str | None  # the world's key whose id the mutation takes, if any
    body: Body | Callable[[Body], Body]
    errors: list[tuple[tuple[Any, ...], str]]  # (loc below body/input, type)


def _patch(key: str, path: str) -> Callable[[Body], tuple[str, str]]:
    return lambda w: ("PATCH", f"{API}/{path}/{w[key]['id']}")


def _post(path: str) -> Callable[[Body], tuple[str, str]]:
    return lambda w: ("POST", f"{API}/{path}")


def _order(note: str) -> Callable[[Body], Body]:
    return lambda w: {
        "customer_id": w["customer"]["id"],
        "items": [{"product_id": w["product"]["id"], "quantity": 1}],
        "note": note,
    }


CUSTOMER, PRODUCT, ORDER = (
    ("customer", "customers", "updateCustomer", "CustomerPatch"),
    ("product", "products", "updateProduct", "ProductPatch"),
    ("order", "orders", "updateOrder", "OrderPatch"),
)


def patch(which: tuple[str, str, str, str], body: Body, *errors: tuple[Any, ...]) -> Case:
    key, path, mutation, input_type = which
    return Case(_patch(key, path), mutation, input_type, key, body, list(errors))


CASES = {
    # null in a partial update: GraphQL's nullable input fields let it through to db/.
    "customer name null": patch(CUSTOMER, {"name": None}, (("name",), "null_not_allowed")),
    "customer email null": patch(CUSTOMER, {"email": None}, (("email",), "null_not_allowed")),
    "product price null": patch(
        PRODUCT,
        {"price_cents": None, "stock": None},
        (("price_cents",), "null_not_allowed"),
        (("stock",), "null_not_allowed"),
    ),
    "product sku null": patch(PRODUCT, {"sku": None}, (("sku",), "null_not_allowed")),
    "product description null": patch(
        PRODUCT, {"description": None}, (("description",), "null_not_allowed")
    ),
    "order note null": patch(ORDER, {"note": None}, (("note",), "null_not_allowed")),
    # one-line text
    "customer name tab": patch(
        CUSTOMER, {"name": "Ada\tLovelace"}, (("name",), "control_character")
    ),
    "customer name override": patch(
        CUSTOMER, {"name": "Invoice \u202eTXT.exe"}, (("name",), "bidi_character")
    ),
    "customer email isolate": patch(
        CUSTOMER, {"email": "a\u2066b@example.com"}, (("email",), "bidi_character")
    ),
    "product name mark": patch(PRODUCT, {"name": "Mug\u200f"}, (("name",), "bidi_character")),
    "product sku zero width": patch(
        PRODUCT, {"sku": "MUG\u200b1"}, (("sku",), "invisible_character")
    ),
    "product name C1": patch(PRODUCT, {"name": "Mug\x85"}, (("name",), "control_character")),
    # multi-line text
    "product description CR": patch(
        PRODUCT, {"description": "one\r\ntwo"}, (("description",), "control_character")
    ),
    "order note bidi": patch(
        ORDER, {"note": "leave\nat \u2067door"}, (("note",), "bidi_character")
    ),
    "order note BOM": patch(ORDER, {"note": "\ufeffnote"}, (("note",), "invisible_character")),
    # creates
    "create customer": Case(
        _post("customers"),
        "createCustomer",
        "CustomerInput",
        None,
        {"name": "New\nline", "email": "n\u202e@example.com"},
        [(("name",), "control_character"), (("email",), "bidi_character")],
    ),
    "create product": Case(
        _post("products"),
        "createProduct",
        "ProductInput",
        None,
        {"sku": "NEW-1", "name": "\u2068x", "price_cents": -1, "stock": 0, "description": "\x07"},
        [
            (("name",), "bidi_character"),
            (("description",), "control_character"),
            (("price_cents",), "greater_than_equal"),
        ],
    ),
    "place order": Case(
        _post("orders"),
        "placeOrder",
        "OrderInput",
        None,
        _order("gift\x00wrap"),
        [(("note",), "control_character")],
    ),
}


async def both_doors(tenant, w: Body, case: Case) -> tuple[Any, Body]:
    body = case.body(w) if callable(case.body) else case.body
    method, path = case.rest(w)
    rest = await tenant.client.request(method, path, json=body)
    id_arg = "id: $id, " if case.target else ""
    id_var = "$id: ID!, " if case.target else ""
    graphql = await gql(
        tenant.client,
        f"mutation({id_var}$input: {case.input_type}!) {{ {case.mutation}({id_arg}input: $input) "
        "{ databaseId } }",
        {"input": to_graphql(body), **({"id": str(w[case.target]["id"])} if case.target else {})},
    )
    return rest, graphql


@pytest.mark.parametrize("name", list(CASES))
async def test_bad_input_gets_the_same_errors_through_both_doors(tenant, name):
    case = CASES[name]
    w = await world(tenant.client)
    before = await db_state(tenant.id)
    rest, graphql = await both_doors(tenant, w, case)

    assert rest_outcome(rest) == gql_outcome(graphql) == "VALIDATION_ERROR", (rest.text, graphql)
    rest_errors = rest.json()["errors"]
    gql_errors = graphql["errors"][0]["extensions"]["errors"]
    assert {e["loc"][0] for e in rest_errors} == {"body"}
    assert {e["loc"][0] for e in gql_errors} == {"body"}  # one shape for both doors
    assert [{**e, "loc": e["loc"][1:]} for e in gql_errors] == [
        {**e, "loc": e["loc"][1:]} for e in rest_errors
    ]
    assert sorted((tuple(e["loc"][1:]), e["type"]) for e in rest_errors) == sorted(case.errors)
    assert await db_state(tenant.id) == before


UPDATES = [
    ("Customer", "customers", "customer", ("name", "email")),
    ("Product", "products", "product", ("sku", "name", "description", "price_cents", "stock")),
    ("Order", "orders", "order", ("note",)),
]


@pytest.mark.parametrize(
    ("type_name", "path", "key", "fields"), UPDATES, ids=[u[0] for u in UPDATES]
)
async def test_an_update_that_changes_nothing_keeps_its_version_through_graphql(
    tenant, type_name, path, key, fields
):
    c = tenant.client
    w = await world(c)
    current = (await c.get(f"{API}/{path}/{w[key]['id']}")).json()["data"]
    before = await db_state(tenant.id)
    mutation = (
        f"mutation($id: ID!, $input: {type_name}Patch!, $v: Int) {{ update{type_name}(id: $id, "
        "input: $input, expectedVersion: $v) { databaseId version updatedAt } }"
    )
    same = {field: current[field] for field in fields}
    v = current["version"]
    for body, version in (({}, None), (same, None), (same, v), ({}, v)):
        answer = await gql(
            c, mutation, {"id": str(current["id"]), "input": to_graphql(body), "v": version}
        )
        assert "errors" not in answer, answer
        got = answer["data"][f"update{type_name}"]
        assert got["version"] == v
    stale = await gql(c, mutation, {"id": str(current["id"]), "input": {}, "v": v + 1})
    assert gql_outcome(stale) == "PRECONDITION_FAILED"
    assert await db_state(tenant.id) == before
