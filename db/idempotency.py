"""Idempotent writes: a retried request with the same key gets the first outcome.

The write and the record of its outcome commit in one transaction. Two
concurrent requests with one key race on the record's unique index: the loser's
transaction (its write included) rolls back and it answers with the winner's
stored outcome, so a key never produces two writes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tortoise.exceptions import IntegrityError

from db.errors import DomainError, FieldError, IdempotencyKeyReused, InvalidArgument
from db.events import to_snapshot, writing
from db.models import IdempotencyRecord
from db.principal import Principal
from db.rows import now

MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    result: Any
    replayed: bool = False


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidArgument(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters",
            errors=[FieldError(("header", "Idempotency-Key"), "invalid key", "invalid_header")],
        )
    return key


async def _stored(principal: Principal, key: str, fingerprint: str) -> Outcome | None:
    record = await IdempotencyRecord.filter(
        organization_id=principal.organization_id, subject=principal.subject, key=key
    ).first()
    if record is None:
        return None
    if record.expires_at <= now():
        await record.delete()
        return None
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request; "
            "use a new key for a new request"
        )
    return Outcome(status=record.status, result=record.result, replayed=True)


async def run_idempotent(
    principal: Principal,
    key: str,
    fingerprint: str,
    operation: Callable[[], Awaitable[Outcome]],
    *,
    ttl_seconds: int,
) -> Outcome:
    """Run ``operation`` once per ``key``; a repeat with the same fingerprint replays it.

    Only successful outcomes are stored: a request that failed changed nothing
    and may be retried with the same key.
    """
    check_key(key)
    previous = await _stored(principal, key, fingerprint)
    if previous is not None:
        return previous
    try:
        async with writing():
            outcome = await operation()
            await IdempotencyRecord.create(
                organization_id=principal.organization_id,
                subject=principal.subject,
                key=key,
                fingerprint=fingerprint,
                status=outcome.status,
                result=outcome.result,
                expires_at=now() + timedelta(seconds=ttl_seconds),
            )
    except (IntegrityError, DomainError):
        # A concurrent request with this key committed first: our insert of the record
        # clashed, or our write clashed with its write (a unique email, the last unit of
        # stock). Either way the first outcome is the answer; with no winner, re-raise.
        winner = await _stored(principal, key, fingerprint)
        if winner is None:
            raise
        return winner
    return outcome


Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Written:
    """What a write done once answers: its status, the row (on a replay, as the first
    call stored it: JSON types, times as text), its headers, and whether it is a replay."""

    status: int
    row: Row
    headers: dict[str, str]
    replayed: bool


async def write_once(
    principal: Principal,
    key: str | None,
    fingerprint: str,
    write: Callable[[], Awaitable[tuple[int, Row, dict[str, str]]]],
    *,
    ttl_seconds: int,
) -> Written:
    """Every door's idempotent write: without a key ``write`` just runs; with one, a retry
    with the same fingerprint answers what the first call answered, and nothing is written
    twice (``run_idempotent``). REST and GraphQL share the store and this answer."""
    if key is None:
        status, row, headers = await write()
        return Written(status, row, headers, replayed=False)
    fresh: list[Row] = []

    async def operation() -> Outcome:
        status, row, headers = await write()
        fresh.append(row)
        return Outcome(status=status, result={"data": to_snapshot(row), "headers": headers})

    outcome = await run_idempotent(principal, key, fingerprint, operation, ttl_seconds=ttl_seconds)
    row = fresh[0] if fresh and not outcome.replayed else outcome.result["data"]
    return Written(outcome.status, row, dict(outcome.result["headers"]), outcome.replayed)
