"""What the webhook dispatcher (``realtime/webhooks``) reads and writes.

The endpoints themselves, their API and their validation are ``db/webhooks.py``;
this module is the delivery side: the enabled endpoints with their signing secrets
and state, the delivery log (one row per attempt), the cursor (moved forward only),
dead letters and their replays, and disabling an endpoint with its notice event.

The dispatcher is the only writer of the delivery state of an endpoint (one runs
per installation), so these writes touch only the columns they own and never
read-modify-write the row the API edits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.expressions import F, Q

from db import webhooks
from db.events import record_event, writing
from db.listing import fetch_row
from db.models import WebhookDeadLetter, WebhookDelivery, WebhookEndpoint
from db.principal import Principal

ACTOR = "system:webhooks"
DISABLED = "webhook_endpoint.disabled"
RESOURCE = "webhook_endpoint"
# The order of an event's members as the change stream sends them (db.events.envelope):
# a dead letter's JSON may come back from the database with its members reordered.
ENVELOPE_ORDER = (
    "position",
    "type",
    "resource",
    "resource_id",
    "organization_id",
    "actor",
    "occurred_at",
    "data",
)


@dataclass(frozen=True, slots=True)
class Target:
    """An enabled endpoint as the dispatcher needs it."""

    id: int
    organization_id: int
    url: str
    topics: tuple[str, ...]
    filter: str
    secrets: tuple[str, ...]  # the current one first, then the previous while it overlaps
    cursor: int
    failing_since: datetime | None
    consecutive_failures: int
    breaker_open_until: datetime | None
    version: int


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt's outcome, for the delivery log."""

    position: int
    event_type: str
    attempt: int
    outcome: str
    http_status: int | None
    latency_ms: int
    response_excerpt: str
    error: str | None
    replay: bool = False


@dataclass(frozen=True, slots=True)
class FailureState:
    """The endpoint's failure columns after an attempt."""

    failing_since: datetime | None
    consecutive_failures: int
    breaker_open_until: datetime | None


def stored_text(text: str, limit: int) -> str:
    """A receiver's words as a text column keeps them: at most ``limit`` characters,
    NUL replaced (PostgreSQL's text refuses it; the write, and with it the cursor's
    move, would fail on every attempt)."""
    return text[:limit].replace("\x00", "\ufffd")


def ordered_event(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` with its members in the change stream's order."""
    known = {key: event[key] for key in ENVELOPE_ORDER if key in event}
    return known | {key: value for key, value in event.items() if key not in known}


async def enabled_endpoints() -> dict[int, int]:
    """``{endpoint id: organization id}`` of every enabled endpoint."""
    rows = await WebhookEndpoint.filter(enabled=True).values_list("id", "organization_id")
    return {int(i): int(org) for i, org in rows}


async def load_target(endpoint_id: int, now: datetime) -> Target | None:
    """The endpoint if it exists and is enabled, else None."""
    row = await WebhookEndpoint.filter(id=endpoint_id, enabled=True).first()
    if row is None:
        return None
    secrets = [row.secret]
    expires = row.previous_secret_expires_at
    if row.previous_secret and expires is not None and expires > now:
        secrets.append(row.previous_secret)
    return Target(
        id=row.id,
        organization_id=row.organization_id,  # type: ignore[attr-defined]
        url=row.url,
        topics=tuple(row.topics),
        filter=row.event_filter or "",
        secrets=tuple(secrets),
        cursor=int(row.cursor),
        failing_since=row.failing_since,
        consecutive_failures=int(row.consecutive_failures),
        breaker_open_until=row.breaker_open_until,
        version=int(row.version),
    )


async def advance_cursor(endpoint_id: int, position: int) -> None:
    """Move the endpoint's cursor forward to ``position`` (never back)."""
    await WebhookEndpoint.filter(id=endpoint_id, cursor__lt=position).update(cursor=position)


async def record_attempt(
    target: Target, attempt: Attempt, state: FailureState, *, advance: bool
) -> None:
    """Log one attempt and the endpoint's failure state; with ``advance`` (a delivered
    event), move the cursor past it in the same transaction."""
    async with writing():
        await WebhookDelivery.create(
            organization_id=target.organization_id,
            endpoint_id=target.id,
            position=attempt.position,
            event_type=attempt.event_type[:64],
            attempt=attempt.attempt,
            outcome=attempt.outcome,
            http_status=attempt.http_status,
            latency_ms=attempt.latency_ms,
            response_excerpt=stored_text(attempt.response_excerpt, 1024),
            error=stored_text(attempt.error, 500) if attempt.error else None,
            replay=attempt.replay,
        )
        await WebhookEndpoint.filter(id=target.id).update(
            failing_since=state.failing_since,
            consecutive_failures=state.consecutive_failures,
            breaker_open_until=state.breaker_open_until,
        )
        if advance:
            await advance_cursor(target.id, attempt.position)


async def dead_letter(
    target: Target, event: dict[str, Any], attempts: int, last_error: str
) -> None:
    """Keep ``event`` (the JSON sent) as a dead letter and move the cursor past it."""
    position = int(event["position"])
    async with writing():
        updated = await WebhookDeadLetter.filter(endpoint_id=target.id, position=position).update(
            status="dead", attempts=attempts, last_error=stored_text(last_error, 500), event=event
        )
        if not updated:
            await WebhookDeadLetter.create(
                organization_id=target.organization_id,
                endpoint_id=target.id,
                position=position,
                event_type=str(event["type"])[:64],
                event=event,
                attempts=attempts,
                last_error=stored_text(last_error, 500),
                status="dead",
            )
        await advance_cursor(target.id, position)


@dataclass(frozen=True, slots=True)
class Replay:
    id: int
    position: int
    event_type: str
    event: dict[str, Any]
    attempts: int


async def replay_requests(endpoint_id: int, limit: int = 50) -> list[Replay]:
    """Dead letters of the endpoint whose replay was asked for, oldest request first."""
    rows = (
        await WebhookDeadLetter.filter(endpoint_id=endpoint_id, status="replay_requested")
        .order_by("id")
        .limit(limit)
    )
    return [
        Replay(row.id, int(row.position), row.event_type, ordered_event(row.event), row.attempts)
        for row in rows
    ]


async def replay_done(replay: Replay, *, delivered: bool, error: str | None, now: datetime) -> None:
    """``replayed``, or back to ``dead`` with one more attempt counted."""
    query = WebhookDeadLetter.filter(id=replay.id, status="replay_requested")
    if delivered:
        await query.update(status="replayed", replayed_at=now, attempts=replay.attempts + 1)
    else:
        await query.update(
            status="dead",
            attempts=replay.attempts + 1,
            last_error=stored_text(error or "failed", 500),
        )


async def disable(target: Target, reason: str, now: datetime) -> bool:
    """Disable the endpoint and record ``webhook_endpoint.disabled``; False if it was
    no longer enabled (disabled, changed or deleted meanwhile)."""
    async with writing():
        changed = await WebhookEndpoint.filter(id=target.id, enabled=True).update(
            enabled=False,
            disabled_reason=stored_text(reason, 200),
            disabled_at=now,
            version=F("version") + 1,
            updated_at=datetime.now(UTC),
            breaker_open_until=None,
        )
        if not changed:
            return False
        system = Principal(subject=ACTOR, organization_id=target.organization_id)
        # The endpoint as its API reads it (db/webhooks.py): the secret is never in it.
        row = await fetch_row(system, webhooks.SPEC, target.id)
        await record_event(
            system, type=DISABLED, resource=RESOURCE, resource_id=target.id, snapshot=row
        )
    return True


async def prune_floor() -> int | None:
    """The lowest cursor of an enabled endpoint: the change log is kept after it."""
    rows = await WebhookEndpoint.filter(Q(enabled=True)).order_by("cursor").limit(1)
    return int(rows[0].cursor) if rows else None


def utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
