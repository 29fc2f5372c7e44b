"""REST v1: versioned resources under ``/api/v1``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from sanic import Blueprint, HTTPResponse, Request

from db.catalog import CATALOG
from rest import api_keys, audit, orders, stats, webhooks
from rest.docs import ApiDoc
from rest.negotiation import negotiate, problem_renderer
from rest.standard import add_resources

if TYPE_CHECKING:
    from gateway.context import GatewayApp

PUBLIC_PATHS = frozenset({"/api/v1/openapi.json"})


def setup_rest(app: GatewayApp) -> ApiDoc:
    """Mount ``/api/v1`` and its OpenAPI document; every route needs a Principal.

    Returns the document, so operations other doors serve under ``/api/v1`` (the
    SSE stream) can be added to it before it is first rendered.
    """
    bp = Blueprint("api_v1", url_prefix="/api/v1")
    app.ctx.problem_negotiator = problem_renderer  # XML problems for XML clients
    doc = ApiDoc(title="Commerce gateway REST API", version="1.0.0")
    orders.add_routes(bp, doc)  # before the standard routes: ``orders:batchGet``
    add_resources(bp, doc, CATALOG)
    for module in (stats, api_keys, audit, webhooks):
        module.add_routes(bp, doc)

    async def authenticate(request: Request) -> None:
        negotiate(request)  # 406 before anything else; sets request.ctx.media
        if request.path not in PUBLIC_PATHS:
            await app.ctx.throttle.authenticate(request)  # and spend a read or a write

    rendered: dict[str, bytes] = {}

    async def openapi(request: Request) -> HTTPResponse:
        if "doc" not in rendered:
            base = app.ctx.settings.public_url or ""
            rendered["doc"] = orjson.dumps(doc.render([{"url": f"{base}/api/v1"}]))
        return HTTPResponse(rendered["doc"], content_type="application/json")

    bp.add_route(openapi, "/openapi.json", methods=["GET", "HEAD"], name="openapi")
    app.blueprint(bp)
    for route in bp.routes:  # every route of the blueprint, after the edge's steps
        app.ctx.door_steps[route.name] = authenticate
    return doc
