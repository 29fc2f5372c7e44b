"""Every declared resource, in the order doors list them.

Adding a resource is a declaration in its own module (``db/suppliers.py`` is the
smallest) plus one line here; every door, the roles, the topics and the contract
suites (``tests/contract``) pick it up from ``RESOURCES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from db import customers, orders, products, suppliers, webhooks
from db.declare import Resource
from db.principal import PRIVILEGED, role_grants

RESOURCES: tuple[Resource, ...] = (
    orders.RESOURCE,
    customers.RESOURCE,
    products.RESOURCE,
    suppliers.RESOURCE,
    webhooks.RESOURCE,
)


@dataclass(frozen=True)
class Catalog:
    """A set of declared resources, looked up the ways doors need."""

    resources: tuple[Resource, ...]

    @cached_property
    def by_name(self) -> dict[str, Resource]:
        return {r.name: r for r in self.resources}

    @cached_property
    def by_type(self) -> dict[str, Resource]:
        return {r.type_name: r for r in self.resources}

    @cached_property
    def by_plural(self) -> dict[str, Resource]:
        return {r.plural: r for r in self.resources}

    def check(self) -> None:
        """Every relation names a declared resource and a field of the right shape."""
        for res in self.resources:
            for rel in res.relations:
                target = self.by_name.get(rel.target)
                if target is None:
                    raise ValueError(f"{res.name}.{rel.name}: no resource {rel.target!r}")
                holder = target if rel.many else res
                if rel.key not in holder.fields:
                    raise ValueError(f"{res.name}.{rel.name}: {holder.name} has no {rel.key}")


CATALOG = Catalog(RESOURCES)
CATALOG.check()

# Scopes that belong to no declared resource.
OTHER_SCOPES = frozenset({"stats:read", "events:read"})
ALL_SCOPES: frozenset[str] = frozenset(
    {s for r in RESOURCES for s in (r.read_scope, r.write_scope)} | OTHER_SCOPES | PRIVILEGED
)


def role_scopes(role: str) -> frozenset[str]:
    """The concrete scopes a role grants (patterns expanded)."""
    return frozenset(s for s in ALL_SCOPES if role_grants(role, s))
