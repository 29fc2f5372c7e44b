"""``Idempotency-Key`` on POST: retries return the first response, never a second write."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from db.events import to_snapshot
from db.idempotency import Outcome, run_idempotent
from rest.wire import single

if TYPE_CHECKING:
    from sanic import HTTPResponse, Request

Result = tuple[int, dict[str, Any], dict[str, str]]


def _fingerprint(request: Request) -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.path, request.query_string):
        digest.update(part.encode() + b"\0")
    digest.update(request.body or b"")
    return digest.hexdigest()


async def respond_once(request: Request, run: Callable[[], Awaitable[Result]]) -> HTTPResponse:
    """Run a POST's write, once per ``Idempotency-Key`` when the client sends one."""
    key = request.headers.get("idempotency-key")
    if key is None:
        status, row, headers = await run()
        return single(request, row, status=status, headers=headers)

    async def operation() -> Outcome:
        status, row, headers = await run()
        return Outcome(status=status, result={"data": to_snapshot(row), "headers": headers})

    outcome = await run_idempotent(
        request.ctx.principal,
        key,
        _fingerprint(request),
        operation,
        ttl_seconds=request.app.ctx.settings.idempotency_ttl_seconds,
    )
    headers = dict(outcome.result["headers"])
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return single(request, outcome.result["data"], status=outcome.status, headers=headers)
