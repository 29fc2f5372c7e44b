"""Who is calling: the same ``Principal`` for every door."""

from __future__ import annotations

from dataclasses import dataclass, field

from db.errors import PermissionDenied

# Roles grant scope sets. A credential's own scopes narrow these further.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "owner": frozenset({"*"}),
    "admin": frozenset(
        {
            "customers:read", "customers:write",
            "products:read", "products:write",
            "orders:read", "orders:write",
            "stats:read", "events:read", "api-keys:admin",
        }
    ),
    "staff": frozenset(
        {
            "customers:read", "customers:write",
            "products:read", "products:write",
            "orders:read", "orders:write",
            "stats:read", "events:read",
        }
    ),
    "viewer": frozenset(
        {"customers:read", "products:read", "orders:read", "stats:read", "events:read"}
    ),
}  # fmt: skip

ALL_SCOPES: frozenset[str] = frozenset().union(*ROLE_SCOPES.values()) - {"*"}


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller acting inside one organization.

    ``scopes`` are what the credential was granted; ``roles`` are what the
    subject holds in the organization. An action needs its scope in both
    (``*`` stands for every scope).
    """

    subject: str
    organization_id: int
    scopes: frozenset[str] = field(default_factory=frozenset)
    roles: frozenset[str] = field(default_factory=frozenset)

    def can(self, scope: str) -> bool:
        granted_by_roles = any(
            scope in ROLE_SCOPES.get(role, ()) or "*" in ROLE_SCOPES.get(role, ())
            for role in self.roles
        )
        return granted_by_roles and (scope in self.scopes or "*" in self.scopes)

    def require(self, scope: str) -> None:
        """Raise ``PermissionDenied`` unless this caller holds ``scope``."""
        if not self.can(scope):
            raise PermissionDenied(f"this action needs the scope {scope!r}")
