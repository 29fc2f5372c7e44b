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

What is stored (codes, refresh tokens) is read and written by ``db.oauth_tokens``;
the rows and requests in authlib's shapes are ``gateway.auth.authlib_shapes``; this
module holds the grants, the endpoints and the server, which decides what to issue
and what to deny.

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
import logging
import os
import secrets
import threading
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from sanic import HTTPResponse, Request

from db import accounts, oauth_tokens
from db.catalog import role_scopes
from db.models import AuthorizationCode, User
from db.oauth_tokens import Use, code_access_jti, code_family
from gateway.auth.authlib_shapes import (
    Access,
    Client,
    Code,
    Refresh,
    SanicOAuth2Request,
    claimed_client_id,
)
from gateway.auth.tokens import LEEWAY, TokenService, scope_list
from gateway.errors import database_unavailable, note_database_outage
from gateway.settings import Settings

log = logging.getLogger("gateway.auth")

T = TypeVar("T")

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
        return asyncio.run_coroutine_threadsafe(_classified(coro), loop).result(BRIDGE_TIMEOUT)


async def _classified(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` on the loop; a database outage leaves as ``DatabaseUnavailable``.

    Classified here, not in the waiting thread: crossing threads, asyncio replaces a
    ``TimeoutError`` (asyncpg's connect timeout when packets are dropped) by a new one
    without traceback or cause, which the error handler could no longer tell from a
    bug (it would answer 500). A ``DomainError`` crosses unchanged.
    """
    try:
        return await coro
    except Exception as error:
        outage = database_unavailable(error)
        if outage is None:
            raise
        note_database_outage(error, "/oauth")
        raise outage from error


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
            oauth_tokens.save_code(
                code,
                client_id=request.client.get_client_id(),
                user_id=request.user.id,
                redirect_uri=data["redirect_uri"],  # required and verified at authorize
                scope=scope,
                code_challenge=data["code_challenge"],
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
            oauth_tokens.active_user(authorization_code.row.user_id)  # type: ignore[attr-defined]
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
            oauth_tokens.active_user(refresh_token.row.user_id)  # type: ignore[attr-defined]
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
        fields = {
            "family": family,
            "client_id": claims["client_id"],
            "user_id": request.user.id,
            "organization_id": claims["org"],
            "scope": token["scope"],
            "access_jti": claims["jti"],
            "access_expires_at": datetime.fromtimestamp(claims["exp"], UTC),
        }
        self.bridge.run(
            self._save_refresh_token(refresh, fields, code.row if isinstance(code, Code) else None)
        )

    # on the loop: what authlib's hooks ask for, stored by db.oauth_tokens -----------

    async def _save_refresh_token(
        self, token: str, fields: dict[str, Any], code: AuthorizationCode | None
    ) -> None:
        await oauth_tokens.save_refresh_token(
            token, ttl_seconds=self.settings.refresh_token_ttl_seconds, **fields
        )
        if code is not None and await oauth_tokens.code_forgotten(code):
            # The code was presented again while this redemption ran, and that reuse's
            # revocation may have looked for this family before the row existed.
            await self.revoke_code(code)

    async def claim_code(self, code: str, client_id: str) -> Code | None:
        """Claim a code for its one redemption (of two concurrent ones, one wins).

        The client presenting a used code again gets nothing, and what the first
        redemption issued is revoked (RFC 6749 4.1.2). Another client presenting it
        revokes nothing: the code was never theirs to use.
        """
        claim = await oauth_tokens.claim_code(code, client_id)
        if claim.reused is not None:
            log.warning(
                "authorization code reuse: revoking its tokens", extra={"client_id": client_id}
            )
            await self.revoke_code(claim.reused)
        return Code(claim.won) if claim.won is not None else None

    async def revoke_code(self, code: AuthorizationCode) -> None:
        """Revoke every token a code's redemption issued, and forget the code."""
        # Forgetting the code first marks the reuse for a redemption still saving its
        # refresh token (``_save_refresh_token``), which then revokes it itself.
        await oauth_tokens.forget_code(code)
        await self.revoke_family(code_family(code.code_hash))
        # Redeemed before the code expired, the access token expires at most one
        # lifetime later (LEEWAY covers the redemption's own duration).
        until = code.expires_at.timestamp() + self.settings.access_token_ttl_seconds + LEEWAY
        await self.tokens.denylist.deny(code_access_jti(code.code_hash), until)

    async def use_refresh_token(
        self, refresh_token: str, client: Client, scope: str | None
    ) -> Refresh | None:
        """Claim a refresh token for one rotation; a second use revokes its family."""
        use, row = await oauth_tokens.use_refresh_token(
            refresh_token, client.get_client_id(), scope_list(scope)
        )
        if use is Use.WIDER_SCOPE:
            raise InvalidScopeError("a refresh cannot widen the scope")
        if use is Use.REUSED and row is not None:
            log.warning(
                "refresh token reuse: revoking its family",
                extra={"client_id": row.client_id, "family": row.family},
            )
            await self.revoke_family(row.family)
            return None
        return Refresh(row) if use is Use.ROTATED and row is not None else None

    async def revoke_family(self, family: str) -> None:
        for jti, expires_at in await oauth_tokens.revoke_family(family, leeway=LEEWAY):
            await self.tokens.denylist.deny(jti, expires_at)

    async def find_token(self, token: str, hint: str | None) -> Access | Refresh | None:
        """Our access or refresh token ``token`` is, whatever ``hint`` says: a hint does
        not end the search (RFC 7009 2.1, RFC 7662 2.1), and the two kinds cannot be
        mistaken for each other (only an access token holds dots)."""
        if token.count(".") == 2:
            claims = await self.tokens.own_claims(token)
            if claims is not None:
                jti = claims.get("jti")
                return Access(claims, revoked=isinstance(jti, str) and jti in self.tokens.denylist)
        row = await oauth_tokens.find_refresh_token(token)
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
