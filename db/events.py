"""The change log: one event row per committed write, in the same transaction.

Writes open their transaction with :func:`writing` and append with
:func:`record_event`; once it has committed, :func:`writing` tells the database
client's ``Commits`` (``db.commits``), which wakes this process's relay. The relay
(``realtime/relay.py``) gives committed rows their stream position with
:data:`ASSIGN` (through Tortoise with :func:`assign_positions`, or on the relay's
own PostgreSQL connection), and subscribers catch up with :func:`events_after`.

A position is a gap-free, increasing number per installation: one relay at a
time numbers the committed rows it has not numbered yet, in id order, in one
statement, so a reader that sees position ``n`` also sees every position below.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import orjson
from tortoise.transactions import in_transaction

from db.commits import Commits
from db.models import Event
from db.pg import GatewayAsyncpgClient
from db.principal import Principal
from db.sql import Params, client, select
from db.sqlite import GatewaySqliteClient
from db.tracing import current_traceparent

EVENT_COLUMNS = (
    "position, type, resource, resource_id, organization_id, actor, snapshot, created_at"
)

MAX_POSITION = 2**63 - 1

# The relay's numbering step (``$1`` = batch size), for PostgreSQL and SQLite alike.
# Only the advisory-lock holder runs it on PostgreSQL, so ``max(position)`` cannot race;
# on SQLite the write lock serialises callers and the unique index refuses a duplicate.
ASSIGN = f"""
WITH pending AS (
    SELECT id, row_number() OVER (ORDER BY id) AS n
    FROM events WHERE position IS NULL ORDER BY id LIMIT $1
), head AS (SELECT coalesce(max(position), 0) AS p FROM events)
UPDATE events SET position = head.p + pending.n
FROM pending, head WHERE events.id = pending.id
RETURNING {EVENT_COLUMNS}, traceparent
"""


def to_snapshot(row: dict[str, Any]) -> Any:
    """The JSON form of a row as stored in the event (ISO 8601 UTC times)."""
    return orjson.loads(orjson.dumps(row, option=orjson.OPT_UTC_Z))


def local_commits() -> Commits | None:
    """The ``Commits`` of this process's database client (None on a client without one)."""
    conn = client()
    if isinstance(conn, GatewayAsyncpgClient | GatewaySqliteClient):
        return conn.commits
    return None


@asynccontextmanager
async def writing() -> AsyncIterator[None]:
    """A write transaction (``in_transaction``) that tells its commit.

    Inside another transaction (a nested ``writing``, say) nothing has committed
    when it ends: the client is then the outer transaction's, which tells nothing.
    """
    async with in_transaction():
        yield
    commits = local_commits()
    if commits is not None:
        commits.notify()


async def record_event(
    principal: Principal, *, type: str, resource: str, resource_id: int, snapshot: dict[str, Any]
) -> None:
    """Append ``type`` (e.g. ``order.created``) for ``resource`` to the change log.

    Must be called inside the write's transaction so the event commits (or rolls
    back) with the change.
    """
    await Event.create(
        organization_id=principal.organization_id,
        type=type,
        resource=resource,
        resource_id=str(resource_id),
        actor=principal.subject,
        snapshot=to_snapshot(snapshot),
        traceparent=current_traceparent(),
    )


def envelope(row: dict[str, Any]) -> dict[str, Any]:
    """The published form of a numbered event row."""
    snapshot = row["snapshot"]
    if isinstance(snapshot, str | bytes):
        snapshot = orjson.loads(snapshot)
    created = row["created_at"]
    if isinstance(created, str):
        created = datetime.fromisoformat(created)
    event = {
        "position": row["position"],
        "type": row["type"],
        "resource": row["resource"],
        "resource_id": row["resource_id"],
        "organization_id": row["organization_id"],
        "actor": row["actor"],
        "occurred_at": created,
        "data": snapshot,
    }
    # Only ``ASSIGN`` reads it, for the relay: last, so that the change stream can cut
    # it off what clients get (realtime/tracing.py).
    traceparent = row.get("traceparent")
    if traceparent is not None:
        event["traceparent"] = traceparent
    return event


def parse_position(value: object) -> int | None:
    """A stream position from an integer or a string of ASCII digits; None if not one."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if type(value) is int and 0 <= value <= MAX_POSITION:
        return value
    return None


def numbered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``ASSIGN``'s rows as envelopes, in position order."""
    return sorted((envelope(row) for row in rows), key=lambda event: event["position"])


async def assign_positions(limit: int) -> list[dict[str, Any]]:
    """Number up to ``limit`` committed, unnumbered events through Tortoise; their envelopes."""
    async with in_transaction():
        rows = await select(ASSIGN, [limit])
    return numbered(rows)


async def events_after(
    position: int,
    *,
    organization_id: int | None = None,
    resources: Collection[str] | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Numbered events after ``position``, oldest first, as envelopes."""
    param = Params()
    where = [f"position > {param(position)}"]
    if organization_id is not None:
        where.append(f"organization_id = {param(organization_id)}")
    if resources is not None:
        if not resources:
            return []
        where.append(f"resource IN ({param.many(sorted(resources))})")
    rows = await select(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)}"
        f" ORDER BY position LIMIT {param(limit)}",
        param.values,
        datetimes=("created_at",),
        json=("snapshot",),
    )
    return [envelope(row) for row in rows]


async def installation_key() -> str:
    """This installation's key (one per database, made by its migration)."""
    rows = await select("SELECT key FROM installation WHERE id = 1")
    if not rows:
        raise RuntimeError("the installation table is empty: run `gateway migrate`")
    key: str = rows[0]["key"]
    return key


async def head_position() -> int:
    """The newest position (0 before the first event)."""
    rows = await select("SELECT coalesce(max(position), 0) AS head FROM events")
    return int(rows[0]["head"])


async def oldest_unnumbered_at() -> datetime | None:
    """When the oldest committed event the relay has not numbered yet was written
    (None when the relay is caught up): how far the change stream lags behind."""
    rows = await select(
        "SELECT min(created_at) AS oldest FROM events WHERE position IS NULL",
        datetimes=("oldest",),
    )
    oldest: datetime | None = rows[0]["oldest"]
    return oldest


async def oldest_position() -> int:
    """The oldest position still kept (0 when nothing is numbered yet).

    Resuming after ``p`` is possible while ``p >= oldest - 1``.
    """
    rows = await select("SELECT coalesce(min(position), 0) AS oldest FROM events")
    return int(rows[0]["oldest"])


# The webhook hold: the first event an enabled webhook endpoint still has to handle
# (its organization's first position after its cursor); NULL when none waits. The
# prune keeps it and everything after it, so a failing endpoint loses nothing until
# it is disabled (realtime/webhooks). One index probe per enabled endpoint.
WEBHOOK_HOLD = """
SELECT min(held.position) AS held FROM (
    SELECT (
        SELECT min(e.position) FROM events e
        WHERE e.organization_id = w.organization_id AND e.position > w."cursor"
    ) AS position
    FROM webhook_endpoints w WHERE w.enabled
) held
"""

# The prune in one statement, for the relay's own PostgreSQL connection (``$1`` =
# ``before``); ``prune`` does the same through Tortoise. LEAST ignores a NULL hold.
PRUNE = f"""
DELETE FROM events WHERE position < LEAST(
    coalesce(
        (SELECT min(position) FROM events WHERE position IS NOT NULL AND created_at >= $1),
        (SELECT max(position) FROM events)
    ),
    ({WEBHOOK_HOLD})
)
"""


async def prune(before: datetime) -> int:
    """Delete the numbered events below the oldest one created at or after ``before``
    (below the newest when none is); the number deleted.

    The cut is a position, not a time: positions follow commit order while
    ``created_at`` is taken earlier, in the writing transaction, so under concurrent
    writes a later position can hold an older time. Deleting by time would then
    leave a hole inside the kept window, and a resume across it would skip events
    without knowing. Cutting by position keeps what is left one contiguous run
    (events a few milliseconds past ``before`` may stay a little longer), so
    ``oldest_position`` tells exactly which resumes are still complete. Keeping the
    newest tells a resuming client whether what it missed is gone. Unnumbered rows
    are never touched: their positions will come after every kept one. Nothing an
    enabled webhook endpoint has still to handle is deleted (``WEBHOOK_HOLD``).
    """
    first_kept = (
        await Event.filter(position__isnull=False, created_at__gte=before)
        .order_by("position")
        .limit(1)
        .values_list("position", flat=True)
    )
    cut = first_kept[0] if first_kept else await head_position()
    held = (await select(WEBHOOK_HOLD))[0]["held"]
    if held is not None:
        cut = min(cut, int(held))
    if not cut:
        return 0
    return await Event.filter(position__lt=cut).delete()
