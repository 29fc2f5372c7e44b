"""Rows for the webhook API tests: endpoints through ``db.webhooks``, and delivery-log
rows and dead letters inserted directly (the dispatcher writes them for real)."""

from __future__ import annotations

import itertools
from typing import Any

from db import webhooks
from db.models import WebhookDeadLetter, WebhookDelivery
from db.principal import Principal

_positions = itertools.count(1_000_000)


async def make_endpoint(principal: Principal, **overrides: Any) -> dict[str, Any]:
    """A new endpoint, disabled unless asked: the gateway's own dispatcher then leaves
    it alone, so what a test inserts is all its log holds."""
    body = {"url": "https://hooks.example.com/in", "topics": ["orders"], "enabled": False}
    body.update(overrides)
    return await webhooks.create(principal, webhooks.WebhookEndpointInput.model_validate(body))


async def add_delivery(organization_id: int, endpoint_id: int, **overrides: Any) -> WebhookDelivery:
    values: dict[str, Any] = {
        "position": next(_positions),
        "event_type": "order.created",
        "attempt": 1,
        "outcome": "failed",
        "http_status": 500,
        "latency_ms": 12,
        "response_excerpt": "oops",
        "error": "HTTP 500",
    }
    values.update(overrides)
    return await WebhookDelivery.create(
        organization_id=organization_id, endpoint_id=endpoint_id, **values
    )


async def add_dead_letter(
    organization_id: int, endpoint_id: int, **overrides: Any
) -> WebhookDeadLetter:
    position = overrides.pop("position", next(_positions))
    values: dict[str, Any] = {
        "position": position,
        "event_type": "order.created",
        "event": {"position": position, "type": "order.created", "data": {"id": 1}},
        "attempts": 8,
        "last_error": "HTTP 500",
        "status": "dead",
    }
    values.update(overrides)
    return await WebhookDeadLetter.create(
        organization_id=organization_id, endpoint_id=endpoint_id, **values
    )
