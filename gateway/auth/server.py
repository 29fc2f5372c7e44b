"""The OAuth2 authorization server: authlib's grants and endpoints, adapted to Sanic.

authlib's server API is synchronous and calls its storage hooks synchronously,
while the data lives behind Tortoise's async connections on the event loop. The
bridge (see ../shared/TRAPS.md):

- every authlib call runs in a worker thread (``asyncio.to_thread``), so the
  loop keeps serving other requests while a token is minted;
- each storage hook runs its query back on the loop with
  ``run_coroutine_threadsafe(...).result()``: the thread waits, the loop does not.

Calling authlib on the loop thread itself would deadlock (the hook would wait
for the loop it is blocking), so ``Bridge.run`` refuses to.

Defaults authlib gets wrong for us are set explicitly: lifetimes come from
settings (not authlib's 10 days), PKCE is required for every client with S256
only and is checked already at the authorization endpoint, refresh tokens
rotate on every use and are accepted from public clients, and presenting a
rotated refresh token again revokes its whole family.

Beyond authlib, to the letter of OAuth 2.1 and the RFCs:

- ``redirect_uri`` is required in every authorization request (even when the
  client registered one) and equals a registered URI character for character; the
  token request must repeat it (``gateway.auth.routes`` checks the authorization
  request before authlib sees it, so no error is ever sent to an unverified URI);
- a reused authorization code revokes what its first redemption issued (RFC 6749
  4.1.2): the refresh family and the access token are both named after the code
  (``code_family``, ``code_access_jti``), so the revocation needs no record of them
  and can even come first, and a redemption that saves its refresh token after a
  reuse was noticed revokes it itself (the reuse deletes the code row as a mark);
- a token holds at most the requested scopes that both the client's registration
  and the role allow (the user's role, or for client credentials the client's);
- revocation (RFC 7009) answers every token it does not revoke exactly as it
  answers one it does, and a ``token_type_hint`` never ends the search.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import secrets
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import unquote

import orjson
from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    ClientMixin,
    OAuth2Payload,
    TokenMixin,
    grants,
)
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from sanic import HTTPResponse, Request

from db import accounts
from db.catalog import role_scopes
from db.models import AuthorizationCode, OAuthClient, RefreshToken, User
from gateway.auth.tokens import LEEWAY, TokenService, scope_list
from gateway.settings import Settings

log = logging.getLogger("gateway.auth")

T = TypeVar("T")

CODE_TTL_SECONDS = 300
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
BRIDGE_TIMEOUT = 15.0


class Bridge:
    """Runs coroutines on the event loop from authlib's worker threads."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self.loop
        if loop is None or threading.current_thread() is threading.main_thread():
            coro.close()
            raise RuntimeError("authlib storage hooks must run in a worker thread")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(BRIDGE_TIMEOUT)


async def _active_user(user_id: int) -> User | None:
    return await User.get_or_none(id=user_id, disabled=False)


def _digest(value: str) -> str:
    return accounts.secret_digest(value)


def code_family(code_hash: str) -> str:
    """The refresh-token family of the tokens a code's redemption issues."""
    return code_hash[:32]


def code_access_jti(code_hash: str) -> str:
    """The ``jti`` of the access token a code's redemption issues: known before the
    token exists, so a reuse can deny it whether or not the redemption has finished.
    (One-way from the stored hash: the jti, which its holder can read, tells nothing
    about the code.)"""
    return _digest(f"access-token:{code_hash}")[:32]


def request_values(request: Request) -> dict[str, list[str]]:
    """Every value of every parameter, query and urlencoded form merged, as authlib
    reads the request (``SanicOAuth2Request``)."""
    merged = {k: list(v) for k, v in request.args.items()}
    if request.method == "POST" and request.content_type.startswith(
        "application/x-www-form-urlencoded"
    ):
        for key, values in (request.form or {}).items():
            merged.setdefault(key, []).extend(values)
    return merged


# --- what authlib sees --------------------------------------------------------------


@dataclass
class Client(ClientMixin):  # type: ignore[misc]
    row: OAuthClient

    @property
    def public(self) -> bool:
        return self.row.secret_hash is None

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        """None: OAuth 2.1 requires ``redirect_uri`` in every authorization request."""
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = self.row.scopes
        if not scope:
            return " ".join(allowed)
        return " ".join(s for s in scope_list(scope) if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Simple string comparison (RFC 3986 6.2.1), as OAuth 2.1 requires: no
        # normalization of case, ports, escapes or trailing slashes.
        return redirect_uri in self.row.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return accounts.check_client_secret(self.row, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.row.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.row.grant_types


@dataclass
class Code(AuthorizationCodeMixin):  # type: ignore[misc]
    row: AuthorizationCode

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope

    @property
    def code_challenge(self) -> str:
        return self.row.code_challenge

    @property
    def code_challenge_method(self) -> str:
        return self.row.code_challenge_method


@dataclass
class Refresh(TokenMixin):  # type: ignore[misc]
    row: RefreshToken

    def check_client(self, client: Client) -> bool:
        return self.row.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.row.scope

    def get_expires_in(self) -> int:
        return max(0, int((self.row.expires_at - datetime.now(UTC)).total_seconds()))

    def is_expired(self) -> bool:
        return self.row.expires_at <= datetime.now(UTC)

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None or self.row.rotated_at is not None


@dataclass
class Access(TokenMixin):  # type: ignore[misc]
    """A verified access token of ours (for revocation and introspection)."""

    claims: dict[str, Any]
    revoked: bool

    def check_client(self, client: Client) -> bool:
        return bool(self.claims.get("client_id") == client.get_client_id())

    def get_scope(self) -> str:
        return str(self.claims.get("scope", ""))

    def get_expires_in(self) -> int:
        return max(0, int(self.claims["exp"] - time.time()))

    def is_expired(self) -> bool:
        return bool(self.claims["exp"] <= time.time())

    def is_revoked(self) -> bool:
        return self.revoked


class Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, values: dict[str, list[str]]) -> None:
        self._datalist = values
        self._data = {key: items[0] for key, items in values.items() if items}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        return self._datalist


class SanicOAuth2Request(OAuth2Request):  # type: ignore[misc]
    """A Sanic request as authlib reads it: query and form merged into the payload."""

    def __init__(self, request: Request, uri: str) -> None:
        super().__init__(request.method, uri, headers=request.headers)  # case-insensitive
        self._args = {k: v[0] for k, v in request.args.items() if v}
        form: dict[str, list[str]] = {}
        if request.method == "POST" and request.content_type.startswith(
            "application/x-www-form-urlencoded"
        ):
            form = {k: list(v) for k, v in (request.form or {}).items()}
        self._form = {k: v[0] for k, v in form.items() if v}
        self.payload = Payload(request_values(request))

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


# --- grants -------------------------------------------------------------------------


class S256Required(CodeChallenge):  # type: ignore[misc]
    """PKCE for every client, S256 only, refused already at the authorization endpoint."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge (S256)")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")
        super().validate_code_verifier(grant, result)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    server: OAuthServer

    def validate_requested_scope(self) -> None:
        """Refuse, before the sign-in page, a request whose scopes are all outside the
        client's registration (an empty grant would otherwise read as "every scope")."""
        super().validate_requested_scope()
        requested = self.request.payload.scope
        if requested and not self.request.client.get_allowed_scope(requested):
            raise InvalidScopeError("none of the requested scopes can be granted to this client")

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        data = request.payload.data
        allowed = role_scopes(request.user.role)
        granted = scope_list(request.client.get_allowed_scope(request.payload.scope))
        scope = " ".join(s for s in granted if s in allowed)
        self.server.bridge.run(
            AuthorizationCode.create(
                code_hash=_digest(code),
                client_id=request.client.get_client_id(),
                user_id=request.user.id,
                redirect_uri=data["redirect_uri"],  # required and verified at authorize
                scope=scope,
                code_challenge=data["code_challenge"],
                code_challenge_method="S256",
                expires_at=datetime.now(UTC) + timedelta(seconds=CODE_TTL_SECONDS),
            )
        )

    def validate_token_request(self) -> None:
        """authlib's checks, and OAuth 2.1 4.1.3 to the letter: ``redirect_uri`` is sent
        once and is the authorization request's, character for character. (authlib skips
        the comparison for a code that holds no URI; such a code is refused here.)"""
        if len(self.request.payload.datalist.get("redirect_uri", [])) > 1:
            raise InvalidRequestError("send redirect_uri once")
        super().validate_token_request()
        stored = self.request.authorization_code.get_redirect_uri()
        if not stored or self.request.payload.redirect_uri != stored:
            raise InvalidGrantError(
                "redirect_uri must be the one sent in the authorization request"
            )

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        return self.server.bridge.run(self.server.claim_code(code, client.get_client_id()))

    def delete_authorization_code(self, authorization_code: Code) -> None:
        """Already marked used when it was claimed."""

    def authenticate_user(self, authorization_code: Code) -> User | None:
        return self.server.bridge.run(
            _active_user(authorization_code.row.user_id)  # type: ignore[attr-defined]
        )

    def generate_token(
        self,
        user: User | None = None,
        scope: str | None = None,
        grant_type: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        """authlib's, with the access token named after the code (``code_access_jti``)."""
        code: Code = self.request.authorization_code
        return self.server.issue_token(
            grant_type or self.GRANT_TYPE,
            self.request.client,
            user=user,
            scope=scope,
            include_refresh_token=include_refresh_token,
            jti=code_access_jti(code.row.code_hash),
        )


class RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: OAuthServer

    def authenticate_refresh_token(self, refresh_token: str) -> Refresh | None:
        return self.server.bridge.run(
            self.server.use_refresh_token(
                refresh_token, self.request.client, self.request.payload.scope
            )
        )

    def authenticate_user(self, refresh_token: Refresh) -> User | None:
        return self.server.bridge.run(
            _active_user(refresh_token.row.user_id)  # type: ignore[attr-defined]
        )

    def revoke_old_credential(self, refresh_token: Refresh) -> None:
        """Rotated when it was claimed (``use_refresh_token``)."""


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


# --- endpoints ----------------------------------------------------------------------


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009 for both kinds: an access token's jti is denied until it expires;
    a refresh token's whole family is revoked (with the access tokens it issued).

    Only the client a token was issued to revokes it. Every other token (garbage,
    unknown, expired, another client's, under any hint) is answered exactly as a
    revocation is, so the endpoint tells no client whether a token exists (2.2)."""

    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS
    server: OAuthServer

    def authenticate_token(self, request: OAuth2Request, client: Client) -> Any:
        # authlib's answers invalid_grant for another client's token and
        # unsupported_token_type for an unknown hint: both tell a live token from garbage.
        if not request.form.get("token"):
            raise InvalidRequestError("send the token to revoke in 'token'")
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        return token if token is not None and token.check_client(client) else None

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return self.server.bridge.run(self.server.find_token(token_string, token_type_hint))

    def revoke_token(self, token: Any, request: OAuth2Request) -> None:
        self.server.bridge.run(self.server.revoke(token))


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    """RFC 7662: a client may introspect tokens of its own organization."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
    server: OAuthServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return self.server.bridge.run(self.server.find_token(token_string, token_type_hint))

    def check_permission(self, token: Any, client: Client, request: OAuth2Request) -> bool:
        org = token.claims.get("org") if isinstance(token, Access) else token.row.organization_id
        return bool(org == client.row.organization_id)  # type: ignore[attr-defined]

    def introspect_token(self, token: Any) -> dict[str, Any]:
        if isinstance(token, Access):
            claims = token.claims
            keys = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti", "org")
            return {"token_type": "Bearer", **{k: claims[k] for k in keys if k in claims}}
        row = token.row
        return {
            "token_type": "refresh_token",
            "scope": row.scope,
            "client_id": row.client_id,
            "sub": f"user:{row.user_id}",
            "exp": int(row.expires_at.timestamp()),
            "iat": int(row.created_at.timestamp()),
            "org": row.organization_id,
        }


# --- the server ---------------------------------------------------------------------


class OAuthServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, settings: Settings, tokens: TokenService) -> None:
        super().__init__(scopes_supported=None)
        if settings.environment != "production" and settings.issuer.startswith("http://"):
            # authlib refuses plain-HTTP URLs; production requires an https issuer.
            os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")
        self.settings = settings
        self.tokens = tokens
        self.bridge = Bridge()
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(AuthorizationCodeGrant, [S256Required(required=True)])
        self.register_grant(RefreshTokenGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)
        self.register_token_generator("default", self.issue_token)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.bridge.loop = loop

    # authlib hooks ---------------------------------------------------------------

    def query_client(self, client_id: str) -> Client | None:
        row = self.bridge.run(accounts.find_client(client_id))
        return Client(row) if row is not None else None

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return SanicOAuth2Request(request, self.settings.issuer + request.path)

    def handle_response(self, status: int, body: Any, headers: Any) -> HTTPResponse:
        out = dict(headers)
        out.setdefault("Cache-Control", "no-store")
        if isinstance(body, dict):
            out["Content-Type"] = "application/json"
            return HTTPResponse(orjson.dumps(body), status=status, headers=out)
        return HTTPResponse(body or "", status=status, headers=out)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def issue_token(
        self,
        grant_type: str,
        client: Client,
        user: User | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
        *,
        jti: str | None = None,
    ) -> dict[str, Any]:
        """The token response of every grant (authlib's token generator).

        Scopes are the requested ones (none asked for: the client's registered ones;
        a code holds what was granted at sign-in, so an empty one grants nothing) that
        both the registration and the role allow: the user's role when a person signed
        in, the client's own for client credentials.
        """
        row = client.row
        requested = scope_list(scope)
        if not requested and grant_type != "authorization_code":
            requested = list(row.scopes)
        role = user.role if user is not None else row.role
        allowed = role_scopes(role)
        scopes = [s for s in dict.fromkeys(requested) if s in row.scopes and s in allowed]
        if not scopes:
            raise InvalidScopeError("none of the requested scopes can be granted to this client")
        if user is not None:
            subject, org = f"user:{user.id}", user.organization_id  # type: ignore[attr-defined]
        else:
            subject, org = f"client:{row.client_id}", row.organization_id  # type: ignore[attr-defined]
        access, claims = self.tokens.issue(
            subject=subject,
            organization_id=org,
            client_id=row.client_id,
            scopes=scopes,
            roles=[role],
            jti=jti,
        )
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": access,
            "expires_in": self.settings.access_token_ttl_seconds,
            "scope": " ".join(scopes),
            "_claims": claims,
        }
        if include_refresh_token and user is not None and "refresh_token" in row.grant_types:
            token["refresh_token"] = secrets.token_urlsafe(32)
        return token

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        claims = token.pop("_claims")
        refresh = token.get("refresh_token")
        if refresh is None:
            return
        code = request.authorization_code
        previous = request.refresh_token
        if isinstance(code, Code):
            family = code_family(code.row.code_hash)
        elif isinstance(previous, Refresh):
            family = previous.row.family
        else:
            family = secrets.token_hex(16)
        self.bridge.run(
            self._save_refresh_token(
                RefreshToken(
                    token_hash=_digest(refresh),
                    family=family,
                    client_id=claims["client_id"],
                    user_id=request.user.id,
                    organization_id=claims["org"],
                    scope=token["scope"],
                    access_jti=claims["jti"],
                    access_expires_at=datetime.fromtimestamp(claims["exp"], UTC),
                    expires_at=datetime.now(UTC)
                    + timedelta(seconds=self.settings.refresh_token_ttl_seconds),
                ),
                code.row if isinstance(code, Code) else None,
            )
        )

    # storage on the loop ------------------------------------------------------------

    async def _save_refresh_token(self, row: RefreshToken, code: AuthorizationCode | None) -> None:
        await row.save()
        if code is not None and not await AuthorizationCode.filter(id=code.id).exists():
            # The code was presented again while this redemption ran, and that reuse's
            # revocation may have looked for this family before the row existed.
            await self.revoke_code(code)

    async def claim_code(self, code: str, client_id: str) -> Code | None:
        """Claim a code for its one redemption (of two concurrent ones, one wins).

        The client presenting a used code again gets nothing, and what the first
        redemption issued is revoked (RFC 6749 4.1.2). Another client presenting it
        revokes nothing: the code was never theirs to use.
        """
        code_hash = _digest(code)
        row = await AuthorizationCode.get_or_none(code_hash=code_hash, client_id=client_id)
        if row is None:
            return None
        # The row is read before the claim: a concurrent reuse deletes it (below), and
        # the winner must still hold what it claimed.
        claimed = await AuthorizationCode.filter(
            id=row.id, used=False, expires_at__gt=datetime.now(UTC)
        ).update(used=True)
        if claimed:
            row.used = True
            return Code(row)
        used = await AuthorizationCode.get_or_none(
            code_hash=code_hash, client_id=client_id, used=True
        )
        if used is not None:
            log.warning(
                "authorization code reuse: revoking its tokens", extra={"client_id": client_id}
            )
            await self.revoke_code(used)
        return None

    async def revoke_code(self, code: AuthorizationCode) -> None:
        """Revoke every token a code's redemption issued, and forget the code."""
        # Deleting the row first marks the reuse for a redemption still saving its
        # refresh token (``_save_refresh_token``), which then revokes it itself.
        await AuthorizationCode.filter(id=code.id).delete()
        await self.revoke_family(code_family(code.code_hash))
        # Redeemed before the code expired, the access token expires at most one
        # lifetime later (LEEWAY covers the redemption's own duration).
        until = code.expires_at.timestamp() + self.settings.access_token_ttl_seconds + LEEWAY
        await self.tokens.denylist.deny(code_access_jti(code.code_hash), until)

    async def use_refresh_token(
        self, refresh_token: str, client: Client, scope: str | None
    ) -> Refresh | None:
        """Claim a refresh token for one rotation; a second use revokes its family.

        A request for a current token that will be refused anyway (another client's, or
        a wider scope) is refused before the claim: it must not use the token up, nor
        make the owner's next use look like a reuse.
        """
        now = datetime.now(UTC)
        row = await RefreshToken.get_or_none(token_hash=_digest(refresh_token))
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            return None
        if row.rotated_at is None:
            if row.client_id != client.get_client_id():
                return None
            if not set(scope_list(scope)) <= set(scope_list(row.scope)):
                raise InvalidScopeError("a refresh cannot widen the scope")
        claimed = await RefreshToken.filter(id=row.id, rotated_at=None).update(rotated_at=now)
        if not claimed:
            log.warning(
                "refresh token reuse: revoking its family",
                extra={"client_id": row.client_id, "family": row.family},
            )
            await self.revoke_family(row.family)
            return None
        return Refresh(row)

    async def revoke_family(self, family: str) -> None:
        now = datetime.now(UTC)
        rows = await RefreshToken.filter(family=family)
        await RefreshToken.filter(family=family, revoked_at=None).update(revoked_at=now)
        for row in rows:
            # Verification accepts a token up to LEEWAY seconds past its expiry.
            if row.access_expires_at > now - timedelta(seconds=LEEWAY):
                await self.tokens.denylist.deny(row.access_jti, row.access_expires_at.timestamp())

    async def find_token(self, token: str, hint: str | None) -> Access | Refresh | None:
        """Our access or refresh token ``token`` is, whatever ``hint`` says: a hint does
        not end the search (RFC 7009 2.1, RFC 7662 2.1), and the two kinds cannot be
        mistaken for each other (only an access token holds dots)."""
        if token.count(".") == 2:
            claims = await self.tokens.own_claims(token)
            if claims is not None:
                jti = claims.get("jti")
                return Access(claims, revoked=isinstance(jti, str) and jti in self.tokens.denylist)
        row = await RefreshToken.get_or_none(token_hash=_digest(token))
        return Refresh(row) if row is not None else None

    async def revoke(self, token: Access | Refresh) -> None:
        if isinstance(token, Access):
            await self.tokens.denylist.deny(str(token.claims["jti"]), float(token.claims["exp"]))
        else:
            await self.revoke_family(token.row.family)
        log.info("token revoked", extra={"kind": type(token).__name__.lower()})

    # async entry points for the routes -------------------------------------------------

    async def token_response(self, request: Request) -> HTTPResponse:
        response: HTTPResponse = await asyncio.to_thread(self.create_token_response, request)
        _log_client_failure(request, response)
        return response

    async def endpoint_response(self, name: str, request: Request) -> HTTPResponse:
        response: HTTPResponse = await asyncio.to_thread(
            self.create_endpoint_response, name, request
        )
        _log_client_failure(request, response)
        return response


def claimed_client_id(request: Request) -> str | None:
    """The client id a token, revocation or introspection request names (HTTP Basic
    first, then the form), before it is authenticated; None when it names none."""
    if request.headers.get("authorization", "").lower().startswith("basic "):
        try:
            decoded = base64.b64decode(request.headers["authorization"][6:], validate=True)
            return unquote(decoded.decode().partition(":")[0])[:256] or None
        except (ValueError, UnicodeDecodeError):
            return None
    values = request.form.getlist("client_id") if request.form else []
    return values[0][:256] if len(values) == 1 and values[0] else None


def _log_client_failure(request: Request, response: HTTPResponse) -> None:
    """A client that failed to authenticate is a failed login: log who tried (never the
    secret). authlib itself logs it only at DEBUG."""
    if response.status != 401:
        return
    log.warning(
        "client authentication failed",
        extra={
            "client_id": (claimed_client_id(request) or "")[:64],
            "path": request.path,
            "ip": request.ip,
        },
    )
