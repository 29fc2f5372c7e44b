"""The standard methods of a plain resource, from its listing spec.

A resource whose writes are "validate, write the row, record the event" (customers,
suppliers) declares ``Crud(...)`` and uses its methods as the ``db`` functions of its
``Resource``: scopes are checked, foreign keys must point into the caller's
organization, unique clashes are ``CONFLICT`` naming the field, and a row
that others still point at (``restrict``) is not deleted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from tortoise.exceptions import IntegrityError
from tortoise.models import Model

from db.declare import Resource
from db.errors import Conflict, FieldError, NotFound, ValidationFailed
from db.events import record_event, writing
from db.listing import ListQuery, Page, fetch_row, fetch_rows, list_rows
from db.principal import Principal
from db.rows import change_row, create_row, explain_miss, stale
from db.spec import ResourceSpec
from db.sql import Params

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Restrict:
    """Rows of ``model`` whose ``key`` points at this one keep it from being deleted."""

    model: type[Model]
    key: str
    what: str  # "orders": "customer 3 has orders and cannot be deleted"


@dataclass(frozen=True, slots=True)
class Reference:
    """A foreign key clients write (``supplier_id``): it must name a row of ``spec``
    in the caller's organization."""

    key: str
    spec: ResourceSpec


async def check_references(
    principal: Principal, references: Sequence[Reference], values: Mapping[str, Any]
) -> None:
    """Each foreign key in ``values`` names a row in the caller's organization (else 422)."""
    for ref in references:
        ident = values.get(ref.key)
        if ident is None:
            continue
        if not await fetch_rows(principal, ref.spec, [ident], ("id",)):
            problem = f"no {ref.spec.name} {ident} in this organization"
            raise ValidationFailed(
                f"{ref.key}: {problem}",
                errors=[FieldError(("body", ref.key), problem, "reference")],
            )


@dataclass(frozen=True)
class Crud:
    spec: ResourceSpec
    plural: str
    unique: tuple[str, ...] = ()  # fields unique per organization (clash: CONFLICT)
    restrict: tuple[Restrict, ...] = ()
    references: tuple[Reference, ...] = field(default_factory=tuple)
    scope: str = ""  # one privileged scope for reads and writes (``Resource.scope``)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def read_scope(self) -> str:
        return self.scope or f"{self.plural}:read"

    @property
    def write_scope(self) -> str:
        return self.scope or f"{self.plural}:write"

    def _clash(self, values: Mapping[str, Any]) -> Conflict:
        shown = ", ".join(f"{f} {values.get(f)!s}" for f in self.unique if f in values)
        return Conflict(
            f"a {self.name} with {shown or 'these values'} already exists in this organization"
        )

    async def list_rows(self, principal: Principal, query: ListQuery, **options: Any) -> Page:
        principal.require(self.read_scope)
        return await list_rows(principal, self.spec, query, **options)

    async def get(
        self, principal: Principal, ident: int, fields: Collection[str] | None = None
    ) -> Row:
        principal.require(self.read_scope)
        return await fetch_row(principal, self.spec, ident, fields)

    async def by_ids(
        self, principal: Principal, ids: Sequence[int], fields: Collection[str] | None = None
    ) -> list[Row]:
        """The caller's rows with these ids (missing or foreign ones are left out)."""
        principal.require(self.read_scope)
        return await fetch_rows(principal, self.spec, ids, fields)

    async def create(self, principal: Principal, data: BaseModel) -> Row:
        principal.require(self.write_scope)
        values = data.model_dump(mode="json")
        await check_references(principal, self.references, values)
        try:
            return await create_row(principal, self.spec, values)
        except IntegrityError:
            raise self._clash(values) from None

    async def update(
        self,
        principal: Principal,
        ident: int,
        changes: BaseModel,
        *,
        expected_versions: Collection[int] | None = None,
    ) -> Row:
        """PATCH (the fields sent) or PUT (all writable fields)."""
        principal.require(self.write_scope)
        values = changes.model_dump(mode="json")  # a patch leaves out the fields not sent
        await check_references(principal, self.references, values)
        try:
            return await change_row(
                principal, self.spec, ident, values, expected_versions=expected_versions
            )
        except IntegrityError:
            raise self._clash(values) from None

    async def delete(
        self, principal: Principal, ident: int, *, expected_versions: Collection[int] | None = None
    ) -> None:
        principal.require(self.write_scope)
        async with writing():
            row = await fetch_row(principal, self.spec, ident)
            if expected_versions is not None and row["version"] not in expected_versions:
                raise stale(self.name, ident)
            for rule in self.restrict:
                if await rule.model.filter(**{rule.key: ident}).exists():
                    raise Conflict(
                        f"{self.name} {ident} has {rule.what} and cannot be deleted; "
                        f"delete or move its {rule.what} first"
                    )
            model = self.spec.model
            deleted = await model.filter(
                id=ident, organization_id=principal.organization_id, version=row["version"]
            ).delete()
            if not deleted:
                raise await explain_miss(principal, model, self.name, ident)
            await record_event(
                principal,
                type=f"{self.name}.deleted",
                resource=self.name,
                resource_id=ident,
                snapshot=row,
            )


def plain_resource(crud: Crud, **declaration: Any) -> Resource:
    """The declaration of a resource served by ``crud``: its spec, plural, unique fields
    and standard methods come from there; the rest is ``declaration``."""
    return Resource(
        name=crud.name,
        plural=crud.plural,
        spec=crud.spec,
        unique=crud.unique,
        list_rows=crud.list_rows,
        get=crud.get,
        by_ids=crud.by_ids,
        create=crud.create,
        update=crud.update,
        delete=crud.delete,
        **declaration,
    )


async def require_row(principal: Principal, spec: ResourceSpec, ident: int) -> None:
    """``NotFound`` unless the caller's organization has row ``ident`` of ``spec``
    (a sub-collection's parent: its own read scope is not needed to list the children)."""
    if not await fetch_rows(principal, spec, [ident], ("id",)):
        raise NotFound.for_resource(spec.name, ident)


async def children_of(
    principal: Principal,
    spec: ResourceSpec,
    key: str,
    parent_ids: Sequence[int],
    *,
    limit: int,
    fields: Collection[str] | None = None,
    where: Mapping[str, Any] | None = None,
) -> dict[int, list[Row]]:
    """Each parent's newest ``limit`` rows of ``spec`` (whose ``key`` is the parent's id):
    one query for the whole set of parents, a window per parent. ``where`` adds equality
    conditions (``None``: IS NULL), as a list's. The caller checks scopes."""
    found: dict[int, list[Row]] = defaultdict(list)
    if not parent_ids:
        return found
    p = Params(principal.organization_id)
    table = spec.table
    extra = "".join(
        f" AND c.{column} IS NULL" if value is None else f" AND c.{column} = {p(value)}"
        for column, value in (where or {}).items()
    )
    newest = (
        f"t.id IN (SELECT id FROM (SELECT c.id, row_number() OVER (PARTITION BY c.{key} "
        f"ORDER BY c.created_at DESC, c.id DESC) AS n FROM {table} c WHERE c.organization_id = $1 "
        f"AND {p.among('c.' + key, parent_ids)}{extra}) ranked WHERE n <= {p(limit)})"
    )
    wanted = None if fields is None else {*fields, "id", key}
    rows = await spec.rows(
        f"t.organization_id = $1 AND {newest}", p, "ORDER BY t.created_at DESC, t.id DESC", wanted
    )
    for row in rows:
        found[row[key]].append(row)
    return found
