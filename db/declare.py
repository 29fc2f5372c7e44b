"""A resource, declared once: every door derives from its ``Resource``.

A declaration says what a resource is (its fields, as clients see them, with
types and descriptions), what clients write (the input models), what lists may
filter and sort by, its relations, its custom actions, its scopes, its real-time
topic and its GraphQL cost weight, and which ``db`` functions serve it. From it:

- REST (``rest/routes.py``): the standard methods, ``:action`` routes, one
  sub-collection per to-many relation, ``expand`` of to-one relations, OpenAPI;
- GraphQL (``resolvers/derive.py``): the object type with its relations, the
  connection, ``node``, the inputs, the mutations and the subscription;
- real-time (``realtime/topics.py``): the topic, AsyncAPI;
- roles (``db/principal.py``) and the GraphQL cost table (``resolvers/limits.py``).

All declarations are listed in ``db/catalog.py``; the contract suites
(``tests/contract``) run every door against every entry there. What a door adds
by hand for one resource is named in the declaration's ``special``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel

from db.filtering import FilterField
from db.listing import Page
from db.spec import ResourceSpec

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Relation:
    """A link to another declared resource.

    To-one (``many=False``): this row's ``key`` column holds the other's id
    (``products.supplier_id``); REST expands it with ``expand=<name>``, GraphQL
    resolves ``Product.supplier``. To-many: the other rows' ``key`` holds this
    row's id (``Supplier.products``); REST serves ``/suppliers/{id}/products``,
    GraphQL ``Supplier.products(first:)``, newest first, batched over a page.
    """

    name: str
    target: str  # the related resource's ``name``
    key: str
    many: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class Action:
    """A custom method on one object: REST ``POST /<plural>/{id}:<name>``, GraphQL
    ``<name><Type>(id, expectedVersion)``; both idempotent with a key, both ``If-Match``."""

    name: str
    summary: str
    run: Callable[..., Awaitable[Row]]  # (principal, id, *, expected_versions) -> row


@dataclass(frozen=True, slots=True)
class ListOption:
    """A boolean list argument beyond filter/order/page (REST ``show_deleted=true``,
    GraphQL ``showDeleted: true``), passed to ``list`` as a keyword."""

    name: str
    description: str


@dataclass(frozen=True)
class Resource:
    """One resource, as every door serves it."""

    name: str  # singular, snake_case: the change log's resource ("order")
    plural: str  # snake_case: GraphQL's list field, and the REST collection, topic and
    # scope prefix unless ``path`` or ``scope`` say otherwise ("orders")
    shape: type[BaseModel]  # the object as clients read it (REST schema, GraphQL type)
    spec: ResourceSpec  # the table, its columns, what lists filter and sort by
    list_rows: Callable[..., Awaitable[Page]]  # (principal, query, **options) -> Page
    get: Callable[..., Awaitable[Row]]  # (principal, id, fields=None) -> row
    by_ids: Callable[..., Awaitable[list[Row]]]  # (principal, ids, fields) -> rows
    create: Callable[[Principal, Any], Awaitable[Row]] | None
    update: Callable[..., Awaitable[Row]]  # (principal, id, changes, *, expected_versions)
    delete: Callable[..., Awaitable[Row | None]]  # (principal, id, *, expected_versions)
    create_input: type[BaseModel] | None
    replace_input: type[BaseModel]
    patch_input: type[BaseModel]
    description: str = ""
    relations: tuple[Relation, ...] = ()
    actions: tuple[Action, ...] = ()
    list_options: tuple[ListOption, ...] = ()
    # Fields a list shows only with view=full (an order's items), each with the
    # number of objects the GraphQL cost limit counts per parent.
    computed: Mapping[str, int] = field(default_factory=dict)
    # What a plain list shows of its rows (products: not soft-deleted ones), applied to
    # the rows a to-many relation lists too (``Supplier.products``).
    listed_where: Mapping[str, Any] = field(default_factory=dict)
    # What one object weighs in the GraphQL cost limit (``resolvers/limits.py``): a page
    # of N objects of this resource counts N * cost times its selection.
    cost: int = 1
    create_verb: str = "create"  # GraphQL ``<verb><Type>`` ("placeOrder")
    # A soft delete answers with the object (REST 200, GraphQL the type); a hard
    # delete with nothing (REST 204, GraphQL the deleted id).
    soft_delete: bool = False
    unique: tuple[str, ...] = ()  # fields unique per organization
    example: Mapping[str, Any] = field(default_factory=dict)  # a valid create input
    special: str = ""  # what a door adds by hand for this resource, and where
    # The REST collection and the topic when they are not ``plural``: a URL may hold a
    # hyphen ("webhook-endpoints") where a GraphQL name may not ("webhookEndpoints").
    path: str = ""
    # One privileged scope (``db.principal.PRIVILEGED``) that both reads and writes,
    # instead of ``<plural>:read`` / ``<plural>:write`` ("webhooks:admin").
    scope: str = ""
    # Fields only the create and action responses carry (a generated secret, shown
    # once); every read, list, snapshot and event has them null.
    shown_once: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The singular in words, for summaries and descriptions ("webhook endpoint")."""
        return self.name.replace("_", " ")

    @property
    def collection(self) -> str:
        """The REST collection (``/api/v1/<collection>``) and the real-time topic."""
        return self.path or self.plural

    @property
    def type_name(self) -> str:
        """The GraphQL type name: ``order_item`` -> ``OrderItem``."""
        return "".join(part.capitalize() for part in self.name.split("_"))

    @property
    def read_scope(self) -> str:
        return self.scope or f"{self.plural}:read"

    @property
    def write_scope(self) -> str:
        return self.scope or f"{self.plural}:write"

    @property
    def topic(self) -> str:
        return self.collection

    @cached_property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.shape.model_fields)

    @cached_property
    def datetime_fields(self) -> tuple[str, ...]:
        return tuple(n for n, t in scalar_fields(self.shape).items() if t[0] is datetime)

    def relation(self, name: str) -> Relation | None:
        return next((r for r in self.relations if r.name == name), None)


# -- words ---------------------------------------------------------------------------------------

# Words whose first letter's sound is not what its spelling says (for ``a``/``an``).
_AN_EXCEPTIONS = ("hour", "honest", "heir")
_A_EXCEPTIONS = ("uni", "use", "user", "one", "eu", "uti")


def with_article(noun: str) -> str:
    """``an order``, ``a customer``, ``a user``, ``an hour``: the indefinite article by
    the noun's first sound, for summaries generated from resource names."""
    word = noun.lower()
    if word.startswith(_AN_EXCEPTIONS):
        return f"an {noun}"
    if word.startswith(_A_EXCEPTIONS):
        return f"a {noun}"
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {noun}"


# -- reading a shape ---------------------------------------------------------------------------

# A change-log position or cursor: a 64-bit integer. Mark such a field of a shape with
# ``Field(json_schema_extra=POSITION)``: OpenAPI says int64, and GraphQL serves it as
# ``StreamPosition`` (GraphQL's ``Int`` holds 32 bits; positions pass 2**31 on a busy
# installation within weeks).
POSITION: dict[str, Any] = {"format": "int64"}


def position_fields(shape: type[BaseModel]) -> frozenset[str]:
    """The shape's fields marked ``POSITION``."""
    return frozenset(
        name
        for name, info in shape.model_fields.items()
        if isinstance(info.json_schema_extra, dict)
        and info.json_schema_extra.get("format") == POSITION["format"]
    )


Scalar = type  # int, str, bool, datetime or an Enum subclass


def unwrap(annotation: Any) -> tuple[Any, bool]:
    """``(inner type, nullable)`` of ``X | None`` (other annotations as they are)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return unwrap(typing.get_args(annotation)[0])
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            inner, _ = unwrap(args[0])
            return inner, len(args) < len(typing.get_args(annotation))
    return annotation, False


def scalar_fields(shape: type[BaseModel]) -> dict[str, tuple[Scalar, bool]]:
    """The shape's scalar fields: name -> (type, nullable); lists and objects left out."""
    out: dict[str, tuple[Scalar, bool]] = {}
    for name, info in shape.model_fields.items():
        inner, nullable = unwrap(info.annotation)
        if isinstance(inner, type) and (
            inner in (int, str, bool, datetime) or issubclass(inner, Enum)
        ):
            out[name] = (inner, nullable)
    return out


def list_fields(shape: type[BaseModel]) -> dict[str, tuple[Scalar, bool]]:
    """The shape's lists of plain values (``topics: list[str]``): name -> (item type,
    nullable)."""
    out: dict[str, tuple[Scalar, bool]] = {}
    for name, info in shape.model_fields.items():
        inner, nullable = unwrap(info.annotation)
        if typing.get_origin(inner) is list:
            (item,) = typing.get_args(inner)
            if item in (int, str, bool):
                out[name] = (item, nullable)
    return out


FilterKind = Literal["int", "str", "enum", "datetime", "bool"]


def filter_field(kind: Scalar) -> FilterField:
    """How a list filters a field of this type (the AIP-160 grammar of ``db.filtering``)."""
    if issubclass(kind, Enum):
        return FilterField("enum", choices=frozenset(str(m.value) for m in kind))
    kinds: dict[type, FilterKind] = {int: "int", str: "str", bool: "bool", datetime: "datetime"}
    return FilterField(kinds[kind])


def list_spec(
    name: str,
    model: Any,
    shape: type[BaseModel],
    *,
    filter: tuple[str, ...],
    sort: tuple[str, ...],
    computed: Mapping[str, Mapping[str, str]] | None = None,
    skip: tuple[str, ...] = (),
    json: tuple[str, ...] = (),
    masked: tuple[str, ...] = (),
) -> ResourceSpec:
    """The listing spec of a shape: its scalar fields are the columns; ``filter`` and
    ``sort`` name which of them lists filter and sort by (types from the shape).
    ``json`` adds columns stored as JSON (a list), ``masked`` those read as null
    (``ResourceSpec``)."""
    scalars = scalar_fields(shape)
    unknown = [f for f in (*filter, *sort) if f not in scalars]
    if unknown:
        raise ValueError(f"{name}: filter/sort on fields the shape lacks: {unknown}")
    nullable = [f for f in sort if scalars[f][1]]
    if nullable:  # keyset pages compare sort keys: a null key has no place in the order
        raise ValueError(f"{name}: cannot sort by nullable fields {nullable}")
    return ResourceSpec(
        name=name,
        model=model,
        columns=(*(f for f in scalars if f not in skip), *json),
        filterable={f: filter_field(scalars[f][0]) for f in filter},
        sortable=sort,
        computed=dict(computed or {}),
        json_columns=json,
        masked=masked,
    )


if typing.TYPE_CHECKING:
    from db.principal import Principal
