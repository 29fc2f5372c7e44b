"""GraphQL mutations, derived from each declared resource (``db/declare.py``).

For a resource ``Thing``: ``createThing(input, idempotencyKey)`` (``placeOrder``
for orders: the declaration's ``create_verb``), ``updateThing(id, input,
expectedVersion)``, ``deleteThing(id, expectedVersion)`` and one
``<action>Thing(id, expectedVersion)`` per declared action. Inputs are the
declaration's input models as GraphQL input types. They call the same ``db``
writes as REST: ``expectedVersion`` is REST's ``If-Match``, ``idempotencyKey`` is
REST's ``Idempotency-Key``, in the same store.
"""

from __future__ import annotations

import hashlib
import types
import typing
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import orjson
import strawberry
from pydantic import MISSING, BaseModel
from strawberry.tools import merge_types

from db.catalog import CATALOG, Catalog
from db.declare import Action, Resource, unwrap, with_article
from db.idempotency import write_once
from db.inputs import validate_input
from resolvers.types import TYPES, Info, from_snapshot, parse_global_id
from resolvers.webhook_mutations import WebhookMutation

M = TypeVar("M", bound=BaseModel)
Row = dict[str, Any]


def _input(model: type[M], data: dict[str, Any]) -> M:
    """A ``db`` input model from GraphQL input, with REST's validation errors."""
    return validate_input(model, data, at="body")


async def _once(
    info: Info,
    res: Resource,
    key: str | None,
    request: list[Any],
    run: Callable[[], Awaitable[Row]],
) -> Row:
    """Run a create once per ``idempotencyKey`` (REST's ``Idempotency-Key``: the same
    store, the same answer). A retry with the same key and input answers what the first
    call answered; the same key with other input is ``IDEMPOTENCY_KEY_REUSED``."""

    async def write() -> tuple[int, Row, dict[str, str]]:
        return 201, await run(), {}

    fingerprint = hashlib.sha256(
        orjson.dumps(["graphql", *request], option=orjson.OPT_SORT_KEYS)
    ).hexdigest()
    ctx = info.context
    written = await write_once(
        ctx.principal, key, fingerprint, write, ttl_seconds=ctx.idempotency_ttl_seconds
    )
    return from_snapshot(res, written.row) if written.replayed else written.row


def _versions(expected_version: int | None) -> list[int] | None:
    return None if expected_version is None else [expected_version]


def _typed(function: Callable[..., Any], **annotations: Any) -> Callable[..., Any]:
    """Strawberry reads argument types from annotations: give the generated ones real types."""
    function.__annotations__ = annotations
    return function


def _plain(value: Any) -> Any:
    """GraphQL input objects as the dicts a ``db`` input model validates (unset left out)."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "__strawberry_definition__"):
        return {k: _plain(v) for k, v in vars(value).items() if v is not strawberry.UNSET}
    return value


_INPUTS: dict[tuple[type[BaseModel], bool], type] = {}


def _input_annotation(annotation: Any, patch: bool) -> Any:
    inner, nullable = unwrap(_without_missing(annotation))
    if typing.get_origin(inner) is list:
        (item,) = typing.get_args(inner)
        inner = list[_input_annotation(item, patch=False)]  # type: ignore[misc]
    elif isinstance(inner, type) and issubclass(inner, BaseModel):
        inner = input_type(inner)
    elif not (isinstance(inner, type) and inner in (int, str, bool, datetime)):
        inner = str  # constrained text (an e-mail address, ...): validated by the model
    return inner | None if nullable or patch else inner


def _without_missing(annotation: Any) -> Any:
    """``X | MISSING`` -> ``X`` (a patch's "not sent" is GraphQL's unset)."""
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(annotation) if a is not MISSING]
        out = args[0]
        for arg in args[1:]:
            out = out | arg
        return out
    return annotation


def input_type(model: type[BaseModel], patch: bool = False) -> type:
    """The GraphQL input type of a ``db`` input model: same name, fields and defaults;
    in a patch every field may be left out (unset)."""
    found = _INPUTS.get((model, patch))
    if found is not None:
        return found
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__module__": __name__}
    for name, info in model.model_fields.items():
        annotations[name] = _input_annotation(info.annotation, patch)
        if patch:
            namespace[name] = strawberry.UNSET
        elif not info.is_required():
            namespace[name] = info.get_default(call_default_factory=True)
    namespace["__annotations__"] = annotations
    made = strawberry.input(type(model.__name__, (), namespace), description=model.__doc__)
    _INPUTS[(model, patch)] = made
    return made


def resource_mutations(res: Resource) -> dict[str, Any]:
    """The mutations of one declared resource."""
    name, node_type = res.type_name, TYPES[res.name]
    snake = res.name
    make = node_type.from_row
    fields: dict[str, Any] = {}
    optional_int, optional_str = int | None, str | None

    create, create_input = res.create, res.create_input
    if create is not None and create_input is not None:
        verb = res.create_verb

        async def create_resolver(
            info: Info, input: Any, idempotency_key: str | None = None
        ) -> Any:
            values = _plain(input)
            data = _input(create_input, values)
            row = await _once(
                info,
                res,
                idempotency_key,
                [f"{verb}{name}", values],
                lambda: create(info.context.principal, data),
            )
            return make(row)

        fields[f"{verb}_{snake}"] = strawberry.mutation(
            resolver=_typed(
                create_resolver,
                info=Info,
                input=input_type(create_input),
                idempotency_key=optional_str,
                **{"return": node_type},
            ),
            description=f"{verb.capitalize()} {with_article(res.label)} "
            "(REST: POST; idempotencyKey as Idempotency-Key).",
        )

    async def update(
        info: Info, id: strawberry.ID, input: Any, expected_version: int | None = None
    ) -> Any:
        _, ident = parse_global_id(id, name)
        data = _input(res.patch_input, _plain(input))
        row = await res.update(
            info.context.principal, ident, data, expected_versions=_versions(expected_version)
        )
        return make(row)

    async def delete(info: Info, id: strawberry.ID, expected_version: int | None = None) -> Any:
        _, ident = parse_global_id(id, name)
        row = await res.delete(
            info.context.principal, ident, expected_versions=_versions(expected_version)
        )
        return make(row) if res.soft_delete else id

    fields[f"update_{snake}"] = strawberry.mutation(
        resolver=_typed(
            update,
            info=Info,
            id=strawberry.ID,
            input=input_type(res.patch_input, patch=True),
            expected_version=optional_int,
            **{"return": node_type},
        ),
        description=f"Change some fields of {with_article(res.label)} "
        "(expectedVersion as If-Match).",
    )
    fields[f"delete_{snake}"] = strawberry.mutation(
        resolver=_typed(
            delete,
            info=Info,
            id=strawberry.ID,
            expected_version=optional_int,
            **{"return": node_type if res.soft_delete else strawberry.ID},
        ),
        description=f"Delete {with_article(res.label)} (expectedVersion as If-Match).",
    )
    for action in res.actions:
        fields[f"{action.name}_{snake}"] = _action_mutation(res, action)
    return fields


def _action_mutation(res: Resource, action: Action) -> Any:
    node_type = TYPES[res.name]

    async def run(info: Info, id: strawberry.ID, expected_version: int | None = None) -> Any:
        _, ident = parse_global_id(id, res.type_name)
        row = await action.run(
            info.context.principal, ident, expected_versions=_versions(expected_version)
        )
        return node_type.from_row(row)

    return strawberry.mutation(
        resolver=_typed(
            run,
            info=Info,
            id=strawberry.ID,
            expected_version=int | None,
            **{"return": node_type},
        ),
        description=f"{action.summary} (expectedVersion as If-Match).",
    )


def derive_mutation(catalog: Catalog) -> type:
    """Every declared resource's mutations, and those written by hand (webhook replays)."""
    fields = {k: v for res in catalog.resources for k, v in resource_mutations(res).items()}
    derived = strawberry.type(type("ResourceMutation", (), fields))
    return merge_types("Mutation", (derived, WebhookMutation))


Mutation = derive_mutation(CATALOG)
