"""``Idempotency-Key`` on POST: retries return the first response, never a second write."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from db.idempotency import write_once
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
    written = await write_once(
        request.ctx.principal,
        request.headers.get("idempotency-key"),
        _fingerprint(request),
        run,
        ttl_seconds=request.app.ctx.settings.idempotency_ttl_seconds,
    )
    headers = written.headers
    if written.replayed:
        headers["Idempotent-Replayed"] = "true"
    return single(request, written.row, status=written.status, headers=headers)
