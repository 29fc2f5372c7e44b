"""What REST adds by hand to ``/api/v1/webhook-endpoints`` (``db/webhooks.py`` declares
the rest): an endpoint's delivery log and dead letters, and replays.

- ``GET /webhook-endpoints/{id}/deliveries``: one row per attempt, newest first;
- ``GET /webhook-endpoints/{id}/dead-letters``: the events given up on, newest first;
- ``POST /webhook-endpoints/{id}/dead-letters/{letter}:replay``: send one again;
- ``POST /webhook-endpoints/{id}:replayDeadLetters``: send every dead one again.

Lists take the same ``filter``, ``order_by``, ``fields`` and keyset pages as every
list. ``db.webhook_log`` decides (scope ``webhooks:admin``, the organization).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from sanic import Blueprint, HTTPResponse, Request

from db import webhook_log
from db.listing import Page
from db.principal import Principal
from db.webhooks import SCOPE
from rest.docs import ID_PARAM, IF_NONE_MATCH, LIST_PARAMS, envelope, ref
from rest.standard import page_limits
from rest.wire import collection, list_query, parse_id, parse_mask, single

if TYPE_CHECKING:
    from rest.docs import ApiDoc

BASE = "/webhook-endpoints"
ITEM = BASE + "/<ident:(?P<ident>[^/:]+)>"
TAG = "webhook-endpoints"
ENDPOINT = "webhook endpoint"


class WebhookReplay(BaseModel):
    replay_requested: int = Field(description="How many dead letters will be sent again.")


Lister = Callable[..., Awaitable[Page]]


def _list_route(
    lister: Lister, fields: tuple[str, ...]
) -> Callable[..., Coroutine[Any, Any, HTTPResponse]]:
    async def handler(request: Request, ident: str) -> HTTPResponse:
        mask = parse_mask(request, fields)
        principal: Principal = request.ctx.principal
        page = await lister(
            principal,
            parse_id(ident, ENDPOINT),
            list_query(request),
            fields=mask,
            encoded=True,
            **page_limits(request),
        )
        return collection(request, page, mask=mask)

    return handler


def add_routes(bp: Blueprint, doc: ApiDoc) -> None:
    delivery_fields = tuple(webhook_log.WebhookDelivery.model_fields)
    letter_fields = tuple(webhook_log.WebhookDeadLetter.model_fields)

    async def replay_one(request: Request, ident: str, letter: str) -> HTTPResponse:
        row = await webhook_log.replay_dead_letter(
            request.ctx.principal,
            parse_id(ident, ENDPOINT),
            parse_id(letter, webhook_log.DEAD_LETTERS.name),
        )
        return single(request, row)

    async def replay_all(request: Request, ident: str) -> HTTPResponse:
        count = await webhook_log.replay_dead_letters(
            request.ctx.principal, parse_id(ident, ENDPOINT)
        )
        return single(request, {"replay_requested": count})

    bp.add_route(
        _list_route(webhook_log.list_deliveries, delivery_fields),
        ITEM + "/deliveries",
        methods=["GET", "HEAD"],
        name="webhook_endpoints_deliveries",
    )
    bp.add_route(
        _list_route(webhook_log.list_dead_letters, letter_fields),
        ITEM + "/dead-letters",
        methods=["GET", "HEAD"],
        name="webhook_endpoints_dead_letters",
    )
    bp.add_route(
        replay_one,
        ITEM + "/dead-letters/<letter:(?P<letter>[^/:]+):replay>",
        methods=["POST"],
        name="webhook_endpoints_dead_letter_replay",
    )
    bp.add_route(
        replay_all,
        BASE + "/<ident:(?P<ident>[^/:]+):replayDeadLetters>",
        methods=["POST"],
        name="webhook_endpoints_replayDeadLetters",
    )
    _document(doc)


def _document(doc: ApiDoc) -> None:
    delivery, letter = webhook_log.WebhookDelivery, webhook_log.WebhookDeadLetter
    letter_param = {"name": "letter", "in": "path", "required": True, "schema": {"type": "integer"}}
    lists: tuple[tuple[str, str, type[BaseModel], Any], ...] = (
        ("deliveries", "list_webhook_endpoint_deliveries", delivery, webhook_log.DELIVERIES),
        ("dead-letters", "list_webhook_endpoint_dead_letters", letter, webhook_log.DEAD_LETTERS),
    )
    for path, operation_id, model, spec in lists:
        filterable = ", ".join(sorted(spec.filterable))
        doc.operation(
            "get",
            f"{BASE}/{{id}}/{path}",
            summary=f"List a webhook endpoint's {path.replace('-', ' ')}, newest first "
            f"(filter on {filterable})",
            operation_id=operation_id,
            scope=SCOPE,
            tag=TAG,
            response=envelope({"type": "array", "items": ref(model)}, paginated=True),
            params=[ID_PARAM, *LIST_PARAMS, IF_NONE_MATCH],
            errors=(400, 404),
            models=(model,),
        )
    doc.operation(
        "post",
        f"{BASE}/{{id}}/dead-letters/{{letter}}:replay",
        summary="Send a dead letter again (status replay_requested until the dispatcher has)",
        operation_id="replay_webhook_dead_letter",
        scope=SCOPE,
        tag=TAG,
        response=envelope(ref(letter)),
        params=[ID_PARAM, letter_param],
        errors=(400, 404),
        models=(letter,),
    )
    doc.operation(
        "post",
        f"{BASE}/{{id}}:replayDeadLetters",
        summary="Send every dead letter of a webhook endpoint again",
        operation_id="replay_webhook_dead_letters",
        scope=SCOPE,
        tag=TAG,
        response=envelope(ref(WebhookReplay)),
        params=[ID_PARAM],
        errors=(400, 404),
        models=(WebhookReplay,),
    )
