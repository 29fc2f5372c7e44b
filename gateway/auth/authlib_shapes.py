"""What authlib sees: our rows and Sanic's request in the shapes authlib's server reads.

The clients, codes and tokens are rows (``db.models``) or verified claims wrapped in
authlib's mixins; a Sanic request becomes an ``OAuth2Request`` whose payload merges the
query and the urlencoded form, every value of every parameter kept (OAuth 2.1 refuses a
parameter sent twice, so the checks must see both).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from authlib.oauth2 import OAuth2Request
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, OAuth2Payload, TokenMixin
from sanic import Request

from db import accounts
from db.models import AuthorizationCode, OAuthClient, RefreshToken
from gateway.auth.tokens import scope_list


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
