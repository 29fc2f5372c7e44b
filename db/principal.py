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
USER_ROLES: tuple[str, ...] = tuple(ROLE_SCOPES)

# Credentials that act for no person (API keys) hold this role: it grants every
# scope but ``api-keys:admin``, and the key's own scopes narrow it.
SERVICE_ROLE = "service"
ROLE_SCOPES[SERVICE_ROLE] = ALL_SCOPES - {"api-keys:admin"}


def role_scopes(role: str) -> frozenset[str]:
    """The concrete scopes a role grants (``*`` expanded)."""
    granted = ROLE_SCOPES.get(role, frozenset())
    return ALL_SCOPES if "*" in granted else granted


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
    # The credential it came from: an access token's jti or an API key's id, and
    # when it stops being valid (epoch seconds). Sockets use them to close on
    # expiry or revocation.
    credential_id: str | None = None
    expires_at: float | None = None

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
