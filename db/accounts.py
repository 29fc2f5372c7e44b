"""Users (people who sign in) and OAuth clients (applications).

Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106's
recommended profile). Hashing is deliberately slow, so the async functions here
run it in a worker thread (``asyncio.to_thread``), never on the event loop.
Client secrets are random 256-bit strings: a SHA-256 of them is enough.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from tortoise.exceptions import IntegrityError
from tortoise.models import Model
from tortoise.transactions import in_transaction

from db.audit import SYSTEM, record_audit
from db.catalog import ALL_SCOPES, role_scopes
from db.errors import Conflict, InvalidArgument, NotFound
from db.inputs import check_line
from db.models import AuthorizationCode, OAuthClient, RefreshToken, User, fits
from db.principal import USER_ROLES
from db.revocations import KEPT_PAST_EXPIRY, Notices, client_credential, record_revocation

_hasher = PasswordHasher()
# Verified against when the email is unknown, so a miss costs what a wrong password costs.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

GRANT_TYPES = frozenset({"client_credentials", "authorization_code", "refresh_token"})
# The longest redirect URI an authorization code can hold (``AuthorizationCode.redirect_uri``).
MAX_REDIRECT_URI = 2000
# Schemes that run or embed content where the browser lands instead of calling an app.
UNSAFE_SCHEMES = frozenset({"javascript", "data", "vbscript", "file", "about", "blob"})
# Printable ASCII that RFC 3986 never allows unescaped in a URI.
NOT_IN_URIS = frozenset('"<>\\^`{|}')
# Hosts a plain http redirect URI may name: the device itself (RFC 8252 7.3, 8.3).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
CLIENT_NAME_MAX = 200


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


async def create_user(
    organization_id: int,
    email: str,
    password: str,
    role: str,
    *,
    actor: str = SYSTEM,
    request_id: str | None = None,
) -> User:
    """A new user of the organization; audited (``user.created``) by ``actor``."""
    if role not in USER_ROLES:
        raise InvalidArgument(f"role must be one of {', '.join(USER_ROLES)}")
    if len(password) < 12:
        raise InvalidArgument("the password must be at least 12 characters")
    try:
        # Syntax only: no DNS lookups, and internal test domains (``.test``) are fine.
        email = validate_email(
            email.strip(),
            check_deliverability=False,
            globally_deliverable=False,
            test_environment=True,
        ).normalized
    except EmailNotValidError as exc:
        raise InvalidArgument(f"email: {exc}") from None
    hashed = await asyncio.to_thread(hash_password, password)
    try:
        async with in_transaction():
            user = await User.create(
                organization_id=organization_id,
                email=email.lower(),
                password_hash=hashed,
                role=role,
            )
            await record_audit(
                "user.created",
                actor=actor,
                request_id=request_id,
                organization_id=organization_id,
                target_type="user",
                target_id=user.id,
                details={"email": user.email, "role": role},
            )
    except IntegrityError:
        raise Conflict(f"a user with email {email} already exists") from None
    return user


def _can_match(model: type[Model], field: str, value: str) -> bool:
    """Whether ``value`` could be stored in ``model.field``: one that cannot is looked up
    nowhere, since the database raises on it instead of finding nothing (too long for
    the column, or a NUL character, which PostgreSQL text never holds)."""
    return "\x00" not in value and fits(model, field, value)


async def authenticate_user(email: str, password: str) -> User | None:
    """The user when the password matches; None otherwise, in about the same time."""
    email = email.strip().lower()
    user = (
        await User.get_or_none(email=email, disabled=False)
        if _can_match(User, "email", email)
        else None
    )
    hashed = user.password_hash if user is not None else _DUMMY_HASH
    ok = await asyncio.to_thread(_verify, hashed, password)
    return user if ok and user is not None else None


async def find_client(client_id: str) -> OAuthClient | None:
    if not client_id or not _can_match(OAuthClient, "client_id", client_id):
        return None
    return await OAuthClient.get_or_none(client_id=client_id)


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_client_secret(client: OAuthClient, secret: str) -> bool:
    if client.secret_hash is None:
        return False
    return hmac.compare_digest(client.secret_hash, secret_digest(secret))


def check_redirect_uri(uri: str) -> None:
    """Refuse a redirect URI that cannot be compared as a plain string, or that is not
    a place to send a code: OAuth 2.1 wants absolute URIs without a fragment, and
    exact matching wants one spelling only (percent-encode spaces and non-ASCII).

    Codes travel only over TLS (https), to a native app's loopback listener (http on
    127.0.0.1, [::1] or localhost: RFC 8252 7.3), or to a native app's private-use
    scheme, which must be a reverse domain name (``com.example.app:``, RFC 8252 7.1).
    """
    fix = "use an absolute URI such as https://app.example.com/callback"
    if not uri or len(uri) > MAX_REDIRECT_URI:
        raise InvalidArgument(f"redirect URI: 1 to {MAX_REDIRECT_URI} characters; {fix}")
    if any(not ("!" <= char <= "~") or char in NOT_IN_URIS for char in uri):
        raise InvalidArgument(
            f"redirect URI {uri!r}: spaces, control and non-ASCII characters, and "
            f"{' '.join(sorted(NOT_IN_URIS))}, must be percent-encoded"
        )
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018  (raises on a port that is not a number from 0 to 65535)
    except ValueError:
        raise InvalidArgument(f"redirect URI {uri!r} is not a valid URI; {fix}") from None
    scheme = parts.scheme.lower()
    if not scheme or (scheme in ("http", "https") and not parts.hostname):
        raise InvalidArgument(f"redirect URI {uri!r} is not absolute; {fix}")
    if scheme in UNSAFE_SCHEMES:
        raise InvalidArgument(f"redirect URI {uri!r}: the {parts.scheme} scheme is refused; {fix}")
    if "#" in uri:
        raise InvalidArgument(f"redirect URI {uri!r} may not have a fragment (#)")
    if scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise InvalidArgument(
            f"redirect URI {uri!r}: http is only for a native app's loopback listener "
            "(127.0.0.1, [::1] or localhost); use https"
        )
    if scheme not in ("http", "https") and "." not in scheme:
        raise InvalidArgument(
            f"redirect URI {uri!r}: use https, http on loopback, or for a native app a "
            "private-use scheme in reverse domain order (com.example.app:/callback)"
        )


@dataclass(frozen=True)
class NewClient:
    client: OAuthClient
    secret: str | None


async def create_client(
    organization_id: int,
    name: str,
    *,
    grant_types: list[str],
    scopes: list[str],
    redirect_uris: list[str] | None = None,
    role: str = "staff",
    public: bool = False,
    client_id: str | None = None,
    secret: str | None = None,
    actor: str = SYSTEM,
    request_id: str | None = None,
) -> NewClient:
    """Register a client; its secret (confidential clients) is returned once. Audited
    (``oauth_client.created``) by ``actor``.

    ``scopes`` cap what its tokens may carry, and must all be scopes ``role`` (what the
    client holds when it acts for itself) grants: a token claiming more would
    over-authorize every consumer that reads its ``scope`` (RFC 9068, introspection).
    """
    unknown = set(grant_types) - GRANT_TYPES
    if unknown or not grant_types:
        raise InvalidArgument(f"grant types must be among {', '.join(sorted(GRANT_TYPES))}")
    bad_scopes = set(scopes) - ALL_SCOPES
    if bad_scopes:
        raise InvalidArgument(f"unknown scope(s): {', '.join(sorted(bad_scopes))}")
    if role not in USER_ROLES:
        raise InvalidArgument(f"role must be one of {', '.join(USER_ROLES)}")
    beyond_role = set(scopes) - role_scopes(role)
    if beyond_role:
        raise InvalidArgument(
            f"the role {role!r} cannot hold the scope(s) {', '.join(sorted(beyond_role))}: "
            "leave them out or choose a role that grants them"
        )
    name = check_line(name, what="client name", max_length=CLIENT_NAME_MAX)
    for uri in redirect_uris or []:
        check_redirect_uri(uri)
    if public and "client_credentials" in grant_types:
        raise InvalidArgument("a public client cannot use client_credentials")
    if "authorization_code" in grant_types and not redirect_uris:
        raise InvalidArgument("the authorization_code grant needs at least one redirect URI")
    secret = None if public else (secret or secrets.token_urlsafe(32))
    async with in_transaction():
        client = await OAuthClient.create(
            organization_id=organization_id,
            client_id=client_id or f"gw-{secrets.token_hex(8)}",
            secret_hash=secret_digest(secret) if secret else None,
            name=name,
            redirect_uris=redirect_uris or [],
            grant_types=sorted(grant_types),
            scopes=sorted(scopes),
            role=role,
        )
        row = _client_row(client)
        await record_audit(
            "oauth_client.created",
            actor=actor,
            request_id=request_id,
            organization_id=organization_id,
            target_type="oauth_client",
            target_id=client.client_id,
            details={key: row[key] for key in AUDITED_CLIENT_FIELDS},
        )
    return NewClient(client=client, secret=secret)


# --- operators: listing and deleting (the ``gateway`` command) ----------------------------


def _email(email: str) -> str:
    return email.strip().lower()


async def list_users(organization_id: int) -> list[dict[str, Any]]:
    """The organization's users, oldest first (never their password hashes)."""
    return list(
        await User.filter(organization_id=organization_id)
        .order_by("id")
        .values("id", "email", "role", "disabled", "created_at")
    )


async def delete_user(
    organization_id: int,
    email: str,
    *,
    notices: Notices,
    actor: str = SYSTEM,
    request_id: str | None = None,
) -> dict[str, Any]:
    """Delete a user of the organization, and revoke what they signed in to: their
    refresh tokens and authorization codes go with them, and the access tokens those
    issued are denied (``notices`` tells the running workers once it commits).
    Audited (``user.deleted``) by ``actor``."""
    email = _email(email)
    async with in_transaction():
        user = (
            await User.get_or_none(organization_id=organization_id, email=email)
            if _can_match(User, "email", email)
            else None
        )
        if user is None:
            raise NotFound(f"no user {email!r} in this organization")
        revoked: dict[str, float] = {}
        now = time.time()
        for jti, expires in await RefreshToken.filter(user_id=user.id).values_list(
            "access_jti", "access_expires_at"
        ):
            until = expires.timestamp() + KEPT_PAST_EXPIRY
            if until > now:  # verification refuses it anyway past that
                await record_revocation(str(jti), until)
                revoked[str(jti)] = until
        row = {"id": user.id, "email": user.email, "role": user.role}
        await user.delete()  # its codes and refresh tokens with it (foreign keys)
        await record_audit(
            "user.deleted",
            actor=actor,
            request_id=request_id,
            organization_id=organization_id,
            target_type="user",
            target_id=user.id,
            details={"email": user.email, "role": user.role, "revoked_sign_ins": len(revoked)},
        )
    _announce(notices, revoked)
    return row


def _announce(notices: Notices, revoked: dict[str, float]) -> None:
    for credential_id, expires_at in revoked.items():
        notices.announce(credential_id, expires_at)


# What an audit entry says of a client (its row without the times).
AUDITED_CLIENT_FIELDS = ("name", "type", "role", "grant_types", "scopes", "redirect_uris")


def _client_row(client: OAuthClient) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "type": "confidential" if client.secret_hash else "public",
        "role": client.role,
        "grant_types": client.grant_types,
        "scopes": client.scopes,
        "redirect_uris": client.redirect_uris,
        "created_at": client.created_at,
    }


async def list_clients(organization_id: int) -> list[dict[str, Any]]:
    """The organization's OAuth clients, oldest first (never their secret hashes)."""
    clients = await OAuthClient.filter(organization_id=organization_id).order_by("id")
    return [_client_row(client) for client in clients]


async def revoke_clients(
    organization_id: int, client_ids: list[str], access_token_ttl: float
) -> dict[str, float]:
    """Revoke everything the clients issued, in the caller's transaction: their refresh
    tokens and unused codes, and every access token carrying their ``client_id`` (the
    newest expires within ``access_token_ttl`` seconds). Returns the revocations
    recorded (``credential_id -> expires_at``)."""
    now = datetime.now(UTC)
    until = now.timestamp() + access_token_ttl + KEPT_PAST_EXPIRY
    revoked: dict[str, float] = {}
    for client_id in client_ids:
        await RefreshToken.filter(
            organization_id=organization_id, client_id=client_id, revoked_at=None
        ).update(revoked_at=now)
        await AuthorizationCode.filter(client_id=client_id).delete()
        await record_revocation(client_credential(client_id), until)
        revoked[client_credential(client_id)] = until
    return revoked


async def delete_client(
    organization_id: int,
    client_id: str,
    *,
    access_token_ttl: float,
    notices: Notices,
    actor: str = SYSTEM,
    request_id: str | None = None,
) -> dict[str, Any]:
    """Delete a client of the organization and revoke every token it issued
    (``revoke_clients``), in one transaction, audited (``oauth_client.deleted``) by
    ``actor``; ``notices`` tells the running workers once it commits."""
    async with in_transaction():
        client = (
            await OAuthClient.get_or_none(organization_id=organization_id, client_id=client_id)
            if _can_match(OAuthClient, "client_id", client_id)
            else None
        )
        if client is None:
            raise NotFound(f"no client {client_id!r} in this organization")
        revoked = await revoke_clients(organization_id, [client_id], access_token_ttl)
        await RefreshToken.filter(client_id=client_id).delete()
        await client.delete()
        await record_audit(
            "oauth_client.deleted",
            actor=actor,
            request_id=request_id,
            organization_id=organization_id,
            target_type="oauth_client",
            target_id=client_id,
            details={"name": client.name, "role": client.role},
        )
    _announce(notices, revoked)
    return _client_row(client)
