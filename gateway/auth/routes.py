"""OAuth2 and discovery routes: token, authorize (login and consent), revoke,
introspect, RFC 8414 metadata and the JWKS."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import html
import logging
import secrets
import string
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import UnsupportedResponseTypeError
from sanic import Blueprint, HTTPResponse, Request
from sanic.request import RequestParameters

from db import accounts
from db.catalog import ALL_SCOPES
from db.models import OAuthClient
from gateway.auth.authlib_shapes import claimed_client_id, request_values
from gateway.csp import page_policy
from gateway.edge import client_address
from gateway.errors import RateLimited

if TYPE_CHECKING:
    from gateway.auth.server import OAuthServer
    from gateway.context import GatewayApp

log = logging.getLogger("gateway.auth")

CSRF_COOKIE = "gw_csrf"
_TEMPLATE = string.Template(
    (Path(__file__).parent / "templates" / "authorize.html").read_text(encoding="utf-8")
)
_ERROR_TEMPLATE = string.Template(
    (Path(__file__).parent / "templates" / "error.html").read_text(encoding="utf-8")
)
# no-store: a page holds a CSRF token. Each page's Content-Security-Policy allows its
# own inline <style> and scripts by hash (gateway.csp), from the page as sent.
PAGE_HEADERS = {
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


def _html(body: str, status: int) -> HTTPResponse:
    """A sign-in page: no form-action limit, as a browser applies it to the redirect
    that follows the form (to the client's redirect URI, any origin)."""
    headers = {**PAGE_HEADERS, "Content-Security-Policy": page_policy(body, form_action=None)}
    return HTTPResponse(
        body, status=status, content_type="text/html; charset=utf-8", headers=headers
    )


FORWARDED = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)


def _json(body: dict[str, Any], status: int = 200) -> HTTPResponse:
    return HTTPResponse(orjson.dumps(body), status=status, content_type="application/json")


def _page(
    request: Request,
    client: OAuthClient,
    scope: str,
    *,
    csrf: str,
    error: str | None = None,
    status: int = 200,
) -> HTTPResponse:
    e = html.escape
    sent = {
        **{k: v[0] for k, v in request.args.items()},
        **{k: v[0] for k, v in (request.form or {}).items()},
    }
    body = _TEMPLATE.substitute(
        client=e(client.name),
        scopes="".join(f"<li><code>{e(s)}</code></li>" for s in scope.split()) or "<li>-</li>",
        notice=f'<p class="error" role="alert">{e(error)}</p>' if error else "",
        hidden="\n".join(
            f'<input type="hidden" name="{name}" value="{e(sent.get(name, ""))}">'
            for name in FORWARDED
        ),
        csrf=e(csrf),
        # What the person typed stays (never the password) after a failed attempt.
        email=e(str(sent.get("email", ""))[:320]),
    )
    response = _html(body, status)
    response.add_cookie(
        CSRF_COOKIE,
        csrf,
        path="/oauth/authorize",
        httponly=True,
        samesite="Strict",
        secure=request.scheme == "https",
    )
    return response


def _error_page(message: str, status: int = 400) -> HTTPResponse:
    """The authorization endpoint's own error page, for a request whose errors cannot
    go back to the client: it names no known client or no registered redirect URI."""
    e = html.escape
    body = _ERROR_TEMPLATE.substitute(title="This sign-in link is not valid", message=e(message))
    return _html(body, status)


async def _unverified(values: dict[str, list[str]]) -> str | None:
    """Why errors of this authorization request cannot be sent to its redirect URI
    (None: they can). Until ``client_id`` and ``redirect_uri`` are known good, nothing
    may go to the URI (RFC 6749 4.1.2.1); it must be one the client registered,
    compared as strings (OAuth 2.1), and sent even when only one is registered. The
    values are never repeated on the page: it would lend the gateway's name to them."""
    client_ids = values.get("client_id", [])
    if len(client_ids) != 1:
        return "The link must name one application (client_id is missing or repeated)."
    client = await accounts.find_client(client_ids[0])
    if client is None:
        return "The link names an application that is not registered here (client_id)."
    uris = values.get("redirect_uri", [])
    if len(uris) != 1:
        return "The link must name one redirect_uri (it is missing or repeated)."
    if uris[0] not in client.redirect_uris:
        return "The link's redirect_uri is not one the application registered."
    return None


def setup_oauth(app: GatewayApp, server: OAuthServer) -> None:
    bp = Blueprint("oauth")
    settings = app.ctx.settings

    @app.before_server_start
    async def bind(app: GatewayApp) -> None:
        server.bind(asyncio.get_running_loop())

    async def limited(
        request: Request, respond: Callable[[Request], Awaitable[HTTPResponse]]
    ) -> HTTPResponse:
        """Charge the ``token`` limit of the client the request names, answer, and count
        a failed client authentication against the address (``gateway.throttling``)."""
        throttle = app.ctx.throttle
        await throttle.charge_oauth(request, claimed_client_id(request))
        response = await respond(request)
        if response.status == 401:
            await throttle.credential_refused(request)
        return response

    async def token(request: Request) -> HTTPResponse:
        return await limited(request, server.token_response)

    async def revoke(request: Request) -> HTTPResponse:
        return await limited(request, functools.partial(server.endpoint_response, "revocation"))

    async def introspect(request: Request) -> HTTPResponse:
        return await limited(request, functools.partial(server.endpoint_response, "introspection"))

    async def authorize(request: Request) -> HTTPResponse:
        values = request_values(request)
        refusal = await _unverified(values)
        if refusal is not None:
            log.info("authorization request refused", extra={"reason": refusal})
            return _error_page(refusal)
        response_type = values.get("response_type", [])
        if response_type and response_type[0] != "code":
            # Answered here, at the verified URI: authlib would quote the value in its
            # error description and fail on a character the description may not hold.
            states = values.get("state", [])
            unsupported = UnsupportedResponseTypeError(
                "", redirect_uri=values["redirect_uri"][0], state=states[0] if states else None
            )
            return server.handle_error_response(request, unsupported)  # type: ignore[no-any-return]
        try:
            grant = await asyncio.to_thread(server.get_consent_grant, request)
        except OAuth2Error as error:
            if error.redirect_uri:  # authlib sets it only to the verified URI
                return server.handle_error_response(request, error)  # type: ignore[no-any-return]
            return _error_page(error.description or "The sign-in link is not valid.")
        client_row: OAuthClient = grant.client.row
        scope = grant.client.get_allowed_scope(grant.request.payload.scope)
        if request.method == "GET":
            return _page(request, client_row, scope, csrf=secrets.token_urlsafe(24))

        form = request.form or RequestParameters()
        cookie = request.cookies.get(CSRF_COOKIE) or ""
        sent = form.get("csrf_token") or ""
        if not cookie or not hmac.compare_digest(cookie, sent):
            log.warning(
                "authorize form without a valid CSRF token",
                extra={"client_id": client_row.client_id},
            )
            return _page(
                request,
                client_row,
                scope,
                csrf=secrets.token_urlsafe(24),
                status=400,
                error="The form expired. Please try again.",
            )
        if form.get("decision") == "deny":
            denied: HTTPResponse = await asyncio.to_thread(
                server.create_authorization_response, grant.request, None, grant
            )
            return denied
        email = (form.get("email") or "").strip().lower()
        ip = client_address(request)
        tag = hashlib.sha256(email.encode()).hexdigest()[:12]
        try:
            attempt = await app.ctx.throttle.begin_sign_in(request, email)
        except RateLimited as limited_out:
            log.warning("login rate limited", extra={"ip": ip, "email_hash": tag})
            page = _page(
                request,
                client_row,
                scope,
                csrf=secrets.token_urlsafe(24),
                status=429,
                error="Too many attempts. Wait a minute and try again.",
            )
            page.headers.update(limited_out.headers)
            return page
        user = await accounts.authenticate_user(email, form.get("password") or "")
        if user is None or user.organization_id != client_row.organization_id:  # type: ignore[attr-defined]
            log.warning(
                "login failed",
                extra={"ip": ip, "email_hash": tag, "client_id": client_row.client_id},
            )
            return _page(
                request,
                client_row,
                scope,
                csrf=secrets.token_urlsafe(24),
                status=401,
                error="The email or password is incorrect.",
            )
        await attempt.succeeded()
        grant.request.user = user  # what get_consent_grant(request, user) would set
        response: HTTPResponse = await asyncio.to_thread(
            server.create_authorization_response, grant.request, user, grant
        )
        return response

    async def metadata(request: Request) -> HTTPResponse:
        issuer = settings.issuer
        return _json(
            {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}/oauth/authorize",
                "token_endpoint": f"{issuer}/oauth/token",
                "revocation_endpoint": f"{issuer}/oauth/revoke",
                "introspection_endpoint": f"{issuer}/oauth/introspect",
                "jwks_uri": f"{issuer}/.well-known/jwks.json",
                "response_types_supported": ["code"],
                "grant_types_supported": [
                    "authorization_code",
                    "client_credentials",
                    "refresh_token",
                ],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                    "none",
                ],
                "revocation_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                    "none",
                ],
                "introspection_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "scopes_supported": sorted(ALL_SCOPES),
            }
        )

    async def jwks(request: Request) -> HTTPResponse:
        response = _json(server.tokens.keys.jwks())
        response.headers["Cache-Control"] = "public, max-age=300"
        return response

    bp.add_route(token, "/oauth/token", methods=["POST"], name="oauth_token")
    bp.add_route(authorize, "/oauth/authorize", methods=["GET", "POST"], name="oauth_authorize")
    bp.add_route(revoke, "/oauth/revoke", methods=["POST"], name="oauth_revoke")
    bp.add_route(introspect, "/oauth/introspect", methods=["POST"], name="oauth_introspect")
    bp.add_route(
        metadata, "/.well-known/oauth-authorization-server", methods=["GET"], name="oauth_metadata"
    )
    bp.add_route(jwks, "/.well-known/jwks.json", methods=["GET"], name="jwks")
    app.blueprint(bp)
