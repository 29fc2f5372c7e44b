"""The SDK's decisions, without I/O: waits, error classes, the stream's frames.

The live tests cover these against the gateway; these pin the cases a live gateway
rarely shows (a pruned log mid-stream, an unknown code, a Retry-After of 30 s).
"""

from __future__ import annotations

import httpx
import pytest
from gateway_client import (
    ApiKey,
    Conflict,
    InvalidTransition,
    RateLimit,
    ResyncRequired,
    RetryPolicy,
    ServerError,
    StreamEnded,
    Unauthenticated,
)
from gateway_client._core import Config, server_wait
from gateway_client.auth import BearerToken
from gateway_client.errors import from_problem
from gateway_client.realtime import RECONNECT, ChangeEvent, StreamState

pytestmark = pytest.mark.backend_independent


def _response(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers)


def test_the_wait_is_what_the_gateway_asked_at_least() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0)
    for attempt in range(8):
        wait = policy.backoff(attempt)
        ceiling = min(8.0, 0.5 * 2**attempt)
        assert ceiling / 2 <= wait <= ceiling
    assert server_wait(_response(429, **{"retry-after": "3"})) == 3
    assert server_wait(_response(429, ratelimit='"write";r=0;t=7')) == 7
    assert server_wait(_response(200, ratelimit='"read";r=5;t=7')) is None
    assert 3 <= policy.delay(0, _response(429, **{"retry-after": "3"})) <= 4
    assert RateLimit.parse('"read";r=598;t=1') == RateLimit("read", 598, 1)
    assert RateLimit.parse("garbage") is None


def test_errors_are_classed_by_code_then_status() -> None:
    def error(status: int, code: str) -> Exception:
        body = {
            "type": "about:blank",
            "title": "t",
            "status": status,
            "detail": "d",
            "code": code,
            "request_id": "r1",
            "errors": [{"loc": ["body", "x"], "msg": "m", "type": "missing"}],
        }
        return from_problem(status, body, {}, None)

    transition = error(409, "INVALID_TRANSITION")
    assert isinstance(transition, InvalidTransition)
    assert isinstance(transition, Conflict)
    assert transition.errors[0].loc == ("body", "x")
    assert transition.request_id == "r1"
    assert type(error(409, "SOMETHING_NEW")) is Conflict  # the family, for a new code
    assert isinstance(error(502, "BAD_GATEWAY"), ServerError)
    oauth = from_problem(401, {"error": "invalid_client"}, {}, "r2")
    assert isinstance(oauth, Unauthenticated)
    assert oauth.code == "INVALID_CLIENT"


def _state(auth: object = None) -> StreamState:
    config = Config("http://gw", auth or ApiKey("k"), RetryPolicy(), "test")  # type: ignore[arg-type]
    return StreamState(config, ["orders"], None, None)


def _frame(state: StreamState, *lines: str) -> object:
    out = None
    for line in [*lines, ""]:
        out = state.feed(line)
    return out


EVENT = (
    '{"position": %d, "type": "order.paid", "resource": "order", "resource_id": "1",'
    ' "organization_id": 1, "actor": "user:1", "occurred_at": "2026-01-01T00:00:00Z",'
    ' "data": {"id": 1}}'
)


def test_the_stream_resumes_from_where_it_was_and_skips_what_it_had() -> None:
    state = _state()
    assert _frame(state, "retry: 2000", ": position 41") is None
    assert state.position == 41  # before any event: resume after what it started from
    assert state.call().plan.params["after"] == 41
    event = _frame(state, "id: 42", "event: order.paid", "data: " + EVENT % 42)
    assert isinstance(event, ChangeEvent)
    assert state.position == 42
    assert _frame(state, "id: 42", "event: order.paid", "data: " + EVENT % 42) is None
    assert _frame(state, ": keep-alive") is None
    shutdown = _frame(state, "event: close", 'data: {"code": 1001, "reason": "shutting down"}')
    assert shutdown is RECONNECT
    assert state.call().plan.params["after"] == 42


def test_the_stream_raises_when_the_gateway_says_the_position_is_gone() -> None:
    state = _state()
    with pytest.raises(ResyncRequired) as gone:
        _frame(state, "event: close", 'data: {"code": 4410, "reason": "pruned"}')
    assert gone.value.code == "RESYNC_REQUIRED"
    with pytest.raises(Unauthenticated):
        _frame(_state(), "event: close", 'data: {"code": 4403, "reason": "revoked"}')
    with pytest.raises(StreamEnded):
        _frame(_state(), "event: close", 'data: {"code": 4999, "reason": "?"}')


def test_an_expired_token_mid_stream_is_renewed_when_it_can_be() -> None:
    renewable = _state(BearerToken(lambda: "t"))
    closed = 'data: {"code": 4401, "reason": "token expired"}'
    assert _frame(renewable, "event: close", closed) is RECONNECT
    with pytest.raises(Unauthenticated):
        _frame(_state(BearerToken("fixed")), "event: close", closed)
