"""A resource's standard mutations come from one ``Writes`` entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import strawberry
from pydantic import BaseModel

from db.principal import Principal
from resolvers.mutations import STANDARD, Writes, standard_mutations
from resolvers.schema import schema


@strawberry.type
class Gadget:
    database_id: int
    label: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Gadget:
        return cls(database_id=row["id"], label=row["label"])


@strawberry.input
class GadgetInput:
    label: str


@strawberry.input
class GadgetPatch:
    label: str | None = strawberry.UNSET


class GadgetModel(BaseModel):
    label: str


class GadgetPatchModel(BaseModel):
    label: str | None = None


CALLS: list[tuple[Any, ...]] = []


async def create(principal: Principal, data: GadgetModel) -> dict[str, Any]:
    CALLS.append(("create", data.label))
    return {"id": 7, "label": data.label}


async def update(principal: Principal, ident: int, data: Any, **kw: Any) -> dict[str, Any]:
    CALLS.append(("update", ident, data.model_dump(exclude_unset=True), kw))
    return {"id": ident, "label": data.label}


async def delete(principal: Principal, ident: int, **kw: Any) -> None:
    CALLS.append(("delete", ident, kw))


async def get(principal: Principal, ident: int) -> dict[str, Any]:
    return {"id": ident, "label": "stored"}


GADGETS = Writes(
    Gadget, create, GadgetModel, GadgetInput, update, GadgetPatchModel, GadgetPatch, delete, get
)


@dataclass
class Ctx:
    principal: Principal


@strawberry.type
class Query:
    ping: str = "pong"


async def test_one_entry_makes_create_update_and_delete() -> None:
    mutation = strawberry.type(type("Mutation", (), standard_mutations(GADGETS)))
    gadget_schema = strawberry.Schema(query=Query, mutation=mutation)
    sdl = gadget_schema.as_str()
    assert "createGadget(input: GadgetInput!, idempotencyKey: String = null): Gadget!" in sdl
    assert "updateGadget(id: ID!, input: GadgetPatch!, expectedVersion: Int = null): Gadget!" in sdl
    assert "deleteGadget(id: ID!, expectedVersion: Int = null): ID!" in sdl
    ctx = Ctx(Principal(subject="t", organization_id=1))
    CALLS.clear()
    result = await gadget_schema.execute(
        'mutation { createGadget(input: {label: "a"}) { databaseId label } '
        'updateGadget(id: "7", input: {label: "b"}, expectedVersion: 3) { label } '
        'deleteGadget(id: "7") }',
        context_value=ctx,
    )
    assert result.errors is None, result.errors
    assert result.data == {
        "createGadget": {"databaseId": 7, "label": "a"},
        "updateGadget": {"label": "b"},
        "deleteGadget": "7",
    }
    assert CALLS == [
        ("create", "a"),
        ("update", 7, {"label": "b"}, {"expected_versions": [3]}),
        ("delete", 7, {"expected_versions": None}),
    ]


def test_the_gateway_schema_has_the_standard_mutations_of_every_entry() -> None:
    fields = schema._schema.mutation_type.fields  # type: ignore[union-attr]
    for writes in STANDARD:
        name = writes.type_.__name__
        for verb in ("create", "update", "delete"):
            assert f"{verb}{name}" in fields
