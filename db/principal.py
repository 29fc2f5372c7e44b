"""Who is calling: the same ``Principal`` for every door."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from db.errors import PermissionDenied

# Roles grant scopes by pattern: ``*:read`` is the read scope of every declared
# resource (db/catalog.py) and of the other readable things (stats, events), so a
# new resource needs no entry here. ``PRIVILEGED`` scopes are never granted by a
# pattern: only a role naming them (or the owner's ``*``) holds them. A credential's
# own scopes narrow a role's further.
PRIVILEGED: frozenset[str] = frozenset({"api-keys:admin", "audit:read", "webhooks:admin"})
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "owner": frozenset({"*"}),
    "admin": frozenset({"*:read", "*:write", "api-keys:admin", "webhooks:admin"}),
    "staff": frozenset({"*:read", "*:write"}),
    "viewer": frozenset({"*:read"}),
}
USER_ROLES: tuple[str, ...] = tuple(ROLE_SCOPES)

# Credentials that act for no person (API keys) hold this role: every scope but the
# privileged ones, narrowed by the key's own scopes.
SERVICE_ROLE = "service"
ROLE_SCOPES[SERVICE_ROLE] = frozenset({"*:read", "*:write"})


@lru_cache(maxsize=1024)  # roles and scopes are the code's few names: asked on every request
def role_grants(role: str, scope: str) -> bool:
    """Whether ``role`` grants ``scope`` (see ``ROLE_SCOPES``)."""
    granted = ROLE_SCOPES.get(role)
    if not granted:
        return False
    if scope in granted or "*" in granted:
        return True
    return scope not in PRIVILEGED and f"*:{scope.rpartition(':')[2]}" in granted


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
        return (scope in self.scopes or "*" in self.scopes) and any(
            role_grants(role, scope) for role in self.roles
        )

    def require(self, scope: str) -> None:
        """Raise ``PermissionDenied`` unless this caller holds ``scope``."""
        if not self.can(scope):
            raise PermissionDenied(f"this action needs the scope {scope!r}")
