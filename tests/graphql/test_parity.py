"""REST and GraphQL parity: the same scenarios through both doors, compared.

Every resource in ``RESOURCES`` runs every scenario: reads give the same objects
and fields, pages have the same order and boundaries, filters the same rows,
and bad input, missing or foreign objects and stale versions the same error
``code``; and for each kind of caller (every role, and tokens narrowed to single
scopes) every action (read, list, create, update, delete) has the same outcome
through both doors. A new resource is covered by adding one ``Resource`` entry.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from graphql import GraphQLEnumType, GraphQLList, GraphQLNonNull, GraphQLObjectType

from db.catalog import CATALOG
from db.declare import Resource as Declared
from resolvers.schema import build_schema
from tests.factories import TOKENS, post_customer, post_product, sample

schema = build_schema()

Body = dict[str, Any]
SEQ = itertools.count(1)  # unique names, emails and SKUs


@dataclass(frozen=True)
class Resource:
    type_name: str  # the GraphQL type
    path: str  # the REST collection
    plural: str  # the GraphQL connection field
    singular: str  # the GraphQL single-object field
    order_by: str  # an ordering both doors accept
    create_body: Callable[[httpx.AsyncClient, int], Awaitable[Body]]  # a valid REST body
    bad_body: Body  # a REST body that fails validation
    patch_body: Body
    filter_for: Callable[[Body], str]  # a filter matching exactly this object
    read_scope: str
    write_scope: str
    create_mutation: str = ""  # default: create<Type>

    @property
    def create(self) -> str:
        return self.create_mutation or f"create{self.type_name}"


async def _order(client: httpx.AsyncClient, n: int) -> Body:
    customer = await post_customer(client)
    product = await post_product(client)
    return {
        "customer_id": customer["id"],
        "items": [{"product_id": product["id"], "quantity": 1 + n % 3}],
        "note": f"parity {n}",
    }


def _from_example(declared: Declared) -> Callable[[httpx.AsyncClient, int], Awaitable[Body]]:
    async def body(client: httpx.AsyncClient, n: int) -> Body:
        return sample(declared)

    return body


def _patch(declared: Declared) -> Body:
    """A change of the first plain text field the patch model takes."""
    fields = declared.patch_input.model_fields
    name = next(f for f in ("name", "note", *fields) if f in fields)
    return {name: f"Changed {next(SEQ)}"}


def _bad(declared: Declared) -> Body:
    """The example with every text emptied and every number negative: well-typed, so
    GraphQL's own type checks pass it on, and refused by the input model on both doors."""
    return {
        k: "" if isinstance(v, str) else -1 if type(v) is int else v  # booleans kept
        for k, v in declared.example.items()
    }


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# Every declared resource takes part; orders need real customers and products first.
SPECIAL_BODIES = {"order": _order}
SPECIAL_BAD = {"order": {"customer_id": 1, "items": []}}
RESOURCES = [
    Resource(
        d.type_name,
        f"/api/v1/{d.collection}",
        camel(d.plural),
        camel(d.name),
        "id desc",
        SPECIAL_BODIES.get(d.name, _from_example(d)),
        SPECIAL_BAD.get(d.name, _bad(d)),
        _patch(d),
        lambda row: f"id = {row['id']}",
        d.read_scope,
        d.write_scope,
        f"{d.create_verb}{d.type_name}",
    )
    for d in CATALOG.resources
]
IDS = [r.type_name for r in RESOURCES]


# -- translating between the doors ----------------------------------------------------


def snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def to_graphql(value: Any) -> Any:
    if isinstance(value, dict):
        return {camel(k): to_graphql(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_graphql(v) for v in value]
    return value


def _named(type_: Any) -> Any:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return type_


def scalar_fields(type_name: str) -> dict[str, Any]:
    """The REST fields of a type (its scalar and enum fields; ``id`` is the global id)."""
    gql_type = schema._schema.type_map[type_name]
    assert isinstance(gql_type, GraphQLObjectType)
    return {
        name: _named(field.type)
        for name, field in gql_type.fields.items()
        if name != "id" and not field.args and not isinstance(_named(field.type), GraphQLObjectType)
    }


def as_rest(type_name: str, node: Body) -> Body:
    """A GraphQL object in REST's shape: snake_case, ``id``, enums in REST's case."""
    fields = scalar_fields(type_name)
    out = {}
    for name, value in node.items():
        if isinstance(fields.get(name), GraphQLEnumType) and value is not None:
            value = value.lower()
        out["id" if name == "databaseId" else snake(name)] = value
    return out


def rest_view(type_name: str, data: Body) -> Body:
    """REST's object limited to the fields the GraphQL type has (relations left out)."""
    wanted = {"id" if n == "databaseId" else snake(n) for n in scalar_fields(type_name)}
    return {k: v for k, v in data.items() if k in wanted}


def selection(type_name: str) -> str:
    return " ".join(scalar_fields(type_name))


async def gql(client: httpx.AsyncClient, query: str, variables: Body | None = None) -> Body:
    r = await client.post("/graphql", json={"query": query, "variables": variables or {}})
    assert r.status_code == 200, r.text
    return dict(r.json())


def rest_outcome(r: httpx.Response) -> str:
    return "ok" if r.status_code < 300 else str(r.json()["code"])


def gql_outcome(body: Body) -> str:
    errors = body.get("errors")
    return str(errors[0]["extensions"]["code"]) if errors else "ok"


async def rest_create(client: httpx.AsyncClient, res: Resource, body: Body) -> httpx.Response:
    return await client.post(res.path, json=body)


async def gql_create(client: httpx.AsyncClient, res: Resource, body: Body) -> Body:
    declared = CATALOG.by_type[res.type_name]
    input_type = declared.create_input.__name__ if declared.create_input else ""
    return await gql(
        client,
        f"mutation($input: {input_type}!) {{ {res.create}(input: $input) "
        f"{{ {selection(res.type_name)} }} }}",
        {"input": to_graphql(body)},
    )


async def make(client: httpx.AsyncClient, res: Resource, n: int | None = None) -> Body:
    r = await rest_create(client, res, await res.create_body(client, next(SEQ) if n is None else n))
    assert r.status_code == 201, r.text
    return dict(r.json()["data"])


# -- scenarios -------------------------------------------------------------------------


@pytest.mark.parametrize("res", RESOURCES, ids=IDS)
async def test_reads_give_the_same_objects_and_fields(tenant, res: Resource):
    made = [await make(tenant.client, res, n) for n in range(3)]
    for obj in made:
        rest = (await tenant.client.get(f"{res.path}/{obj['id']}")).json()["data"]
        body = await gql(
            tenant.client,
            f"query($id: ID!) {{ {res.singular}(id: $id) {{ {selection(res.type_name)} }} }}",
            {"id": str(obj["id"])},
        )
        assert "errors" not in body, body
        assert as_rest(res.type_name, body["data"][res.singular]) == rest_view(res.type_name, rest)


@pytest.mark.parametrize("res", RESOURCES, ids=IDS)
async def test_pages_have_the_same_order_boundaries_and_cursors(tenant, res: Resource):
    for n in range(5):
        await make(tenant.client, res, n)
    rest_pages, tokens, token = [], [], None
    while True:
        params = {
            "page_size": 2,
            "order_by": res.order_by,
            **({"page_token": token} if token else {}),
        }
        page = (await tenant.client.get(res.path, params=params)).json()
        rest_pages.append([o["id"] for o in page["data"]])
        token = page["metadata"]["pagination"].get("next_page_token")
        if not token:
            break
        tokens.append(token)
    gql_pages, cursors, after = [], [], None
    while True:
        body = await gql(
            tenant.client,
            f"query($after: String, $o: String) {{ {res.plural}(first: 2, after: $after, "
            "orderBy: $o) { edges { node { databaseId } } pageInfo { hasNextPage endCursor } "
            "totalCount } }",
            {"after": after, "o": res.order_by},
        )
        conn = body["data"][res.plural]
        gql_pages.append([e["node"]["databaseId"] for e in conn["edges"]])
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
        cursors.append(after)
    assert gql_pages == rest_pages
    assert cursors == tokens  # a GraphQL cursor is a REST page token
    assert conn["totalCount"] == sum(map(len, rest_pages))


@pytest.mark.parametrize("res", RESOURCES, ids=IDS)
async def test_filters_select_the_same_rows_and_reject_the_same_mistakes(tenant, res: Resource):
    made = [await make(tenant.client, res, n) for n in range(3)]
    query = (
        f"query($f: String) {{ {res.plural}(filter: $f, first: 50) {{ nodes {{ databaseId }} }} }}"
    )
    for text in (res.filter_for(made[1]), "nosuchfield = 1", "id = "):
        rest = await tenant.client.get(res.path, params={"filter": text})
        body = await gql(tenant.client, query, {"f": text})
        assert gql_outcome(body) == rest_outcome(rest)
        if rest.status_code == 200:
            rest_ids = [o["id"] for o in rest.json()["data"]]
            assert [n["databaseId"] for n in body["data"][res.plural]["nodes"]] == rest_ids
            assert rest_ids == [made[1]["id"]]
        else:
            assert body["errors"][0]["message"] == rest.json()["detail"]


@pytest.mark.parametrize("res", RESOURCES, ids=IDS)
async def test_missing_foreign_and_malformed_ids_have_the_same_codes(
    tenant, other_tenant, res: Resource
):
    theirs = await make(other_tenant.client, res, 0)
    for ident in (str(theirs["id"]), "999999", "0", "abc", "99999999999", "\u0661\u0662"):
        rest = await tenant.client.get(f"{res.path}/{ident}")
        body = await gql(
            tenant.client,
            f"query($id: ID!) {{ {res.singular}(id: $id) {{ databaseId }} }}",
            {"id": ident},
        )
        assert gql_outcome(body) == rest_outcome(rest), ident
        assert rest.status_code in (400, 404), rest.text


@pytest.mark.parametrize("res", RESOURCES, ids=IDS)
async def test_bad_input_and_stale_versions_have_the_same_codes(tenant, res: Resource):
    rest = await rest_create(tenant.client, res, res.bad_body)
    body = await gql_create(tenant.client, res, res.bad_body)
    assert gql_outcome(body) == rest_outcome(rest) != "ok"
    # The same field errors; only where they point differs ("input" vs "body").
    assert [{**e, "loc": e["loc"][1:]} for e in body["errors"][0]["extensions"]["errors"]] == [
        {**e, "loc": e["loc"][1:]} for e in rest.json()["errors"]
    ]
    obj = await make(tenant.client, res, 1)
    stale = await tenant.client.patch(
        f"{res.path}/{obj['id']}", json=res.patch_body, headers={"If-Match": '"v999"'}
    )
    patch_type = f"{res.type_name}Patch"
    gql_stale = await gql(
        tenant.client,
        f"mutation($id: ID!, $input: {patch_type}!) {{ update{res.type_name}(id: $id, "
        "input: $input, expectedVersion: 999) { databaseId } }",
        {"id": str(obj["id"]), "input": to_graphql(res.patch_body)},
    )
    assert gql_outcome(gql_stale) == rest_outcome(stale) == "PRECONDITION_FAILED"


# -- permissions: the same outcome for the same Principal --------------------------------

CALLERS: dict[str, tuple[str, list[str] | None]] = {
    "owner": ("owner", None),
    "admin": ("admin", None),
    "staff": ("staff", None),
    "viewer": ("viewer", None),
    "owner with no scopes": ("owner", []),
    "owner reading customers only": ("owner", ["customers:read"]),
    "owner reading products only": ("owner", ["products:read"]),
    "owner reading orders only": ("owner", ["orders:read"]),
    "owner writing orders only": ("owner", ["orders:read", "orders:write"]),
}


async def outcomes(
    client: httpx.AsyncClient, owner: httpx.AsyncClient, res: Resource
) -> tuple[dict[str, str], dict[str, str]]:
    """Each action's outcome through REST and through GraphQL, for ``client``'s caller.

    The objects acted on are made by the owner, one set per door, so both doors
    start from the same state.
    """
    rest: dict[str, str] = {}
    graphql: dict[str, str] = {}
    rest["create"] = rest_outcome(
        await rest_create(client, res, await res.create_body(owner, next(SEQ)))
    )
    graphql["create"] = gql_outcome(
        await gql_create(client, res, await res.create_body(owner, next(SEQ)))
    )
    for door, out in (("rest", rest), ("graphql", graphql)):
        obj = await make(owner, res, next(SEQ))
        ident = str(obj["id"])
        if door == "rest":
            out["read"] = rest_outcome(await client.get(f"{res.path}/{ident}"))
            out["list"] = rest_outcome(await client.get(res.path))
            out["update"] = rest_outcome(
                await client.patch(f"{res.path}/{ident}", json=res.patch_body)
            )
            out["delete"] = rest_outcome(await client.delete(f"{res.path}/{ident}"))
            continue
        out["read"] = gql_outcome(
            await gql(client, f'{{ {res.singular}(id: "{ident}") {{ databaseId }} }}')
        )
        out["list"] = gql_outcome(
            await gql(client, f"{{ {res.plural} {{ nodes {{ databaseId }} }} }}")
        )
        out["update"] = gql_outcome(
            await gql(
                client,
                f"mutation($input: {res.type_name}Patch!) {{ update{res.type_name}"
                f'(id: "{ident}", input: $input) {{ databaseId }} }}',
                {"input": to_graphql(res.patch_body)},
            )
        )
        deleted = schema._schema.mutation_type.fields[f"delete{res.type_name}"]  # type: ignore[union-attr]
        tail = " { databaseId }" if isinstance(_named(deleted.type), GraphQLObjectType) else ""
        out["delete"] = gql_outcome(
            await gql(client, f'mutation {{ delete{res.type_name}(id: "{ident}"){tail} }}')
        )
    return rest, graphql


@pytest.mark.parametrize("res", RESOURCES, ids=IDS)
@pytest.mark.parametrize("caller", list(CALLERS))
async def test_every_caller_gets_the_same_outcome_through_both_doors(
    server, tenant, res: Resource, caller: str
):
    role, scopes = CALLERS[caller]
    token = TOKENS.mint(tenant.id, role, scopes)
    async with httpx.AsyncClient(
        base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        rest, graphql = await outcomes(client, tenant.client, res)
    assert graphql == rest
    allowed = set(scopes) if scopes is not None else None
    if allowed is not None and res.read_scope not in allowed:
        assert rest["read"] == rest["list"] == "PERMISSION_DENIED"
    if allowed is not None and res.write_scope not in allowed:
        assert rest["create"] == rest["update"] == "PERMISSION_DENIED"
