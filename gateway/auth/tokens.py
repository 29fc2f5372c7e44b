"""Access tokens: JWTs per RFC 9068, issued here or by a configured external issuer.

Issued tokens carry ``typ: at+jwt``, a ``kid``, ``iss``, ``sub``, ``aud``,
``client_id``, ``scope``, ``jti``, ``iat``/``nbf``/``exp`` and the gateway's own
claims ``org`` (organization id) and ``roles``.

Verification pins the algorithm to the key's own (so ``none`` and HS256-with-
the-public-key cannot pass), requires ``typ``, ``iss``, ``aud``, ``exp``, allows
``LEEWAY`` seconds of clock skew, and denies revoked ``jti``s and the tokens of
deleted clients (``client:<client_id>`` on the denylist). A verified token
is cached until it expires: the signature is checked once per token, not once
per request (the denylist still is).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from typing import Any

import jwt

from db.errors import InvalidToken
from db.organizations import find_organization_id
from db.principal import ROLE_SCOPES, Principal
from db.revocations import client_credential
from gateway.auth.denylist import Denylist
from gateway.auth.external import ExternalKeys
from gateway.auth.keys import KeyRing
from gateway.settings import Settings

log = logging.getLogger("gateway.auth")

LEEWAY = 30  # seconds of clock skew; a denial outlives exp by more (denylist.KEPT_PAST_EXPIRY)
TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
CACHE_SIZE = 10_000
CLIENT_PREFIX = client_credential("")


def scope_list(scope: object) -> list[str]:
    """Scopes from a claim: a space-separated string or a list of strings; nothing else
    grants a scope (an object's keys, a number, a nested value)."""
    if isinstance(scope, str):
        return [part for part in scope.split() if part]
    if isinstance(scope, list):
        return [part for part in scope if isinstance(part, str) and part]
    return []


class TokenService:
    def __init__(self, settings: Settings, denylist: Denylist) -> None:
        self.issuer = settings.issuer
        self.audience = settings.auth_audience
        self.access_ttl = settings.access_token_ttl_seconds
        self.keys = KeyRing(settings.jwt_algorithm, settings.access_token_ttl_seconds)
        self.denylist = denylist
        self.external = {
            cfg.issuer.rstrip("/"): ExternalKeys(cfg) for cfg in settings.external_issuers
        }
        self._cache: OrderedDict[str, Principal] = OrderedDict()
        self._org_ids: dict[str, int] = {}
        denylist.on_deny(self._client_denied)

    def _client_denied(self, credential_id: str) -> None:
        """A deleted client's tokens are refused from now on, cached ones too (the cache
        is keyed by token, so it is emptied: deleting a client is rare)."""
        if credential_id.startswith(CLIENT_PREFIX):
            self._cache.clear()

    # --- issuing ----------------------------------------------------------------------

    def issue(
        self,
        *,
        subject: str,
        organization_id: int,
        client_id: str,
        scopes: list[str],
        roles: list[str],
        ttl_seconds: int | None = None,
        jti: str | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """A signed access token and its claims (``ttl_seconds`` overrides the configured
        TTL; ``jti`` the random id, for a token that must be revocable before it exists)."""
        key = self.keys.signing_key
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.audience,
            "client_id": client_id,
            "scope": " ".join(scopes),
            "org": organization_id,
            "roles": roles,
            "jti": jti or secrets.token_urlsafe(16),
            "iat": now,
            "nbf": now,
            "exp": now + (self.access_ttl if ttl_seconds is None else ttl_seconds),
        }
        private: Any = key.private
        token = jwt.encode(
            claims, private, algorithm=key.algorithm, headers={"typ": "at+jwt", "kid": key.kid}
        )
        return token, claims

    # --- verifying --------------------------------------------------------------------

    async def decode(self, token: str) -> dict[str, Any]:
        """The verified claims of ``token`` (ours or an external issuer's), or Unauthenticated."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _rejected("malformed token") from None
        if header.get("typ") not in TOKEN_TYPES:
            raise _rejected("not an access token (typ must be at+jwt)")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise _rejected("no kid")
        issuer = unverified.get("iss")
        if issuer == self.issuer:
            key = await self.keys.find(kid)
            if key is None:
                raise _rejected("unknown kid")
            public, algorithm, audience = key.public, key.algorithm, self.audience
        elif isinstance(issuer, str) and issuer.rstrip("/") in self.external:
            external = self.external[issuer.rstrip("/")]
            jwk = await external.key(kid)
            if jwk is None or jwk.algorithm_name not in external.config.algorithms:
                raise _rejected("unknown kid")
            public, algorithm, audience = jwk.key, jwk.algorithm_name, external.config.audience
        else:
            raise _rejected("unknown issuer")
        if header.get("alg") != algorithm:
            raise _rejected("algorithm does not match the key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                public,
                algorithms=[algorithm],
                audience=audience,
                issuer=issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise _rejected(type(exc).__name__) from None
        jti = claims.get("jti")
        if isinstance(jti, str) and jti in self.denylist:
            raise _rejected("revoked")
        client_id = claims.get("client_id")
        if (
            issuer == self.issuer
            and isinstance(client_id, str)
            and client_credential(client_id) in self.denylist
        ):
            raise _rejected("client deleted")
        return claims

    async def own_claims(self, token: str) -> dict[str, Any] | None:
        """Claims of an access token we signed, expired or not (None otherwise): what
        revocation and introspection need to know about a token they are handed."""
        try:
            header = jwt.get_unverified_header(token)
            key = await self.keys.find(str(header.get("kid")))
            if key is None:
                return None
            claims: dict[str, Any] = jwt.decode(
                token,
                key.public,
                algorithms=[key.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={"verify_exp": False},
            )
        except jwt.PyJWTError:
            return None
        return claims if "exp" in claims and "jti" in claims else None

    async def principal(self, token: str) -> Principal:
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at is not None and cached.expires_at + LEEWAY < time.time():
                del self._cache[token]
                raise _rejected("ExpiredSignatureError")
            if cached.credential_id is not None and cached.credential_id in self.denylist:
                raise _rejected("revoked")
            return cached
        claims = await self.decode(token)
        principal = await self._to_principal(claims)
        if principal.expires_at is not None and principal.expires_at > time.time():
            self._cache[token] = principal
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return principal

    async def _to_principal(self, claims: dict[str, Any]) -> Principal:
        issuer = str(claims["iss"]).rstrip("/")
        exp = claims.get("exp")
        expires_at = float(exp) if isinstance(exp, int | float) else None
        jti = claims.get("jti") if isinstance(claims.get("jti"), str) else None
        if issuer == self.issuer:
            org = claims.get("org")
            roles = claims.get("roles")
            if not isinstance(org, int) or not isinstance(roles, list):
                raise _rejected("missing org or roles")
            return Principal(
                subject=str(claims["sub"]),
                organization_id=org,
                scopes=frozenset(scope_list(claims.get("scope"))),
                roles=frozenset(map(str, roles)),
                credential_id=jti,
                expires_at=expires_at,
            )
        cfg = self.external[issuer].config
        slug = cfg.organization or claims.get(cfg.organization_claim)
        if not isinstance(slug, str):
            raise _rejected("no organization claim")
        org_id = self._org_ids.get(slug) or await find_organization_id(slug)
        if org_id is None:
            raise _rejected("unknown organization")
        self._org_ids[slug] = org_id
        role = claims.get(cfg.role_claim)
        if not isinstance(role, str) or role not in ROLE_SCOPES or role == "owner":
            role = cfg.default_role
        return Principal(
            subject=f"{issuer}#{claims['sub']}",
            organization_id=org_id,
            scopes=frozenset(scope_list(claims.get(cfg.scope_claim))),
            roles=frozenset({role}),
            credential_id=jti,
            expires_at=expires_at,
        )


def _rejected(reason: str) -> InvalidToken:
    log.warning("rejected access token", extra={"reason": reason})
    return InvalidToken("the access token is not valid")
