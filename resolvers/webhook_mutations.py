"""GraphQL's webhook replays: REST's ``POST .../dead-letters/{id}:replay`` and
``POST /webhook-endpoints/{id}:replayDeadLetters``, over the same ``db.webhook_log``.
Merged into ``Mutation`` beside the derived ones (``resolvers/mutations.py``)."""

from __future__ import annotations

import strawberry

from db import webhook_log
from resolvers.types import Info, parse_global_id
from resolvers.webhooks import WebhookDeadLetter, as_object


def _endpoint_id(value: strawberry.ID) -> int:
    return parse_global_id(value, "WebhookEndpoint")[1]


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(  # type: ignore[untyped-decorator]
        description="Send a dead letter again (REST: POST .../dead-letters/{id}:replay)."
    )
    async def replay_webhook_dead_letter(
        self, info: Info, endpoint_id: strawberry.ID, dead_letter_id: int
    ) -> WebhookDeadLetter:
        row = await webhook_log.replay_dead_letter(
            info.context.principal, _endpoint_id(endpoint_id), dead_letter_id
        )
        return as_object(WebhookDeadLetter, row)  # type: ignore[no-any-return]

    @strawberry.mutation(  # type: ignore[untyped-decorator]
        description="Send every dead letter of an endpoint again; answers how many "
        "(REST: POST /webhook-endpoints/{id}:replayDeadLetters)."
    )
    async def replay_webhook_dead_letters(self, info: Info, endpoint_id: strawberry.ID) -> int:
        return await webhook_log.replay_dead_letters(
            info.context.principal, _endpoint_id(endpoint_id)
        )
