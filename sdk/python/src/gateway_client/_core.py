"""The one implementation behind ``Client`` and ``AsyncClient``: plans, retries, auth.

A call is *planned* (method, path, query, body, whether a retry is safe) by the
generated resource methods, then *executed* by :func:`execute`, a generator that
yields what it needs done (send this request, sleep this long, call this function,
get credentials under the client's lock) and receives the outcome. The sync and
async clients are the two drivers of that generator (``_drivers.py``): they do the
I/O and nothing else, so retries, backoff, idempotency keys, token refresh and error
mapping exist once.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeAlias, TypeVar

import httpx

from gateway_client._base import RateLimit, ResponseMeta
from gateway_client.errors import ConnectionFailed, UnexpectedResponse, from_problem

T = TypeVar("T")
Param: TypeAlias = str | int | bool | list[str | int | bool] | None
Query: TypeAlias = Mapping[str, Param]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Plan:
    """One API call, before any I/O. ``path`` is relative to the API base (``/api/v1``).

    ``retry_safe``: a repeat cannot do the work twice (an idempotent method, or an
    operation the gateway de-duplicates by ``Idempotency-Key``). Refusals that did no
    work (429, and connections never made) are retried regardless.
    """

    method: str
    path: str
    params: Query = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    retry_safe: bool = False
    stream: bool = False

    @property
    def write(self) -> bool:
        return self.method not in {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """A plan and how to turn its successful response into the caller's object."""

    plan: Plan
    parse: Callable[[httpx.Response, ResponseMeta], T]


# What the flow asks its driver for.
@dataclass(frozen=True, slots=True)
class Send:
    request: httpx.Request
    stream: bool = False


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Invoke:
    """Call ``function`` (a token callable); the async driver awaits what it returns."""

    function: Callable[[], Any]


@dataclass(frozen=True, slots=True)
class Authenticate:
    """Run ``flow`` (an ``AuthFlow``'s headers) holding the client's credentials lock, so
    concurrent calls that all find the token stale fetch one, not one each."""

    flow: Generator[Step, Any, dict[str, str]]


Step: TypeAlias = Send | Sleep | Invoke | Authenticate
Flow: TypeAlias = Generator[Step, Any, T]


@dataclass(frozen=True, slots=True)
class RetryInfo:
    """Passed to ``on_retry`` before each wait: which attempt failed, why, how long."""

    method: str
    url: str
    attempt: int
    delay: float
    status: int | None
    error: BaseException | None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, at least what ``Retry-After`` / ``RateLimit`` ask.

    The n-th wait is drawn from ``[d/2, d]`` with ``d = min(max_delay, base * 2**n)``
    ("equal jitter": spread out, yet growing), raised to the gateway's own figure when
    it gave one. A wait the gateway asks for beyond ``max_wait`` is not waited for: the
    error is raised at once.
    """

    max_retries: int = 5
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_wait: float = 60.0
    statuses: frozenset[int] = frozenset({429, 503})

    def backoff(self, attempt: int) -> float:
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        return float(ceiling / 2 + random.uniform(0, ceiling / 2))

    def delay(self, attempt: int, response: httpx.Response | None) -> float:
        wait = self.backoff(attempt)
        if response is not None:
            asked = server_wait(response)
            if asked is not None:
                wait = max(asked, min(wait, asked + 1.0))  # asked, plus up to 1 s of jitter
        return wait


def server_wait(response: httpx.Response) -> float | None:
    """Seconds the gateway asked us to wait: ``Retry-After``, else ``RateLimit``'s ``t``
    when it says nothing remains."""
    raw = response.headers.get("retry-after")
    if raw is not None:
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass  # an HTTP date: the gateway sends seconds; fall back to RateLimit
    limit = RateLimit.parse(response.headers.get("ratelimit"))
    if limit is not None and limit.remaining <= 0:
        return limit.reset
    return None


def meta_of(response: httpx.Response, attempts: int) -> ResponseMeta:
    return ResponseMeta(
        status=response.status_code,
        request_id=response.headers.get("x-request-id"),
        etag=response.headers.get("etag"),
        rate_limit=RateLimit.parse(response.headers.get("ratelimit")),
        attempts=attempts,
        replayed=response.headers.get("idempotent-replayed") == "true",
        headers=dict(response.headers),
    )


def raise_for_problem(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body: object = response.json()
    except ValueError:
        body = None
    raise from_problem(
        response.status_code, body, dict(response.headers), response.headers.get("x-request-id")
    )


class AuthFlow:
    """Credentials as a flow: ``headers()`` yields what getting them takes (a token
    request, a callable), ``invalidate()`` after a 401 says whether asking again may
    help (then the call is repeated once)."""

    def headers(self, config: Config) -> Flow[dict[str, str]]:
        return {}
        yield  # pragma: no cover  (makes this a generator)

    def invalidate(self) -> bool:
        return False


@dataclass
class Config:
    """What both clients share: where the gateway is, credentials, retries, hooks."""

    base_url: str
    auth: AuthFlow
    retry: RetryPolicy
    user_agent: str
    on_retry: Callable[[RetryInfo], None] | None = None
    # Each attempt's timeouts, and the most one call may take over all its attempts and
    # waits (None: no bound beyond the attempts'); a change stream has no such bound.
    timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(30.0, connect=5.0))
    deadline: float | None = 60.0

    @property
    def api_url(self) -> str:
        return self.base_url.rstrip("/") + "/api/v1"


def send_with_retries(
    config: Config,
    build: Callable[[], httpx.Request],
    *,
    retry_safe: bool,
    stream: bool = False,
) -> Flow[tuple[httpx.Response, int]]:
    """Send what ``build`` makes until it is answered with something other than a
    retryable refusal, or retries run out. Returns the response and the attempt count.

    Retried: a connection never made (nothing was sent), a 429 (refused before any
    work), and, when ``retry_safe``, a 503 or a connection lost mid-request."""
    policy = config.retry
    attempt = 0
    started = time.monotonic()
    deadline = None if stream else config.deadline

    def left() -> float:
        return math.inf if deadline is None else deadline - (time.monotonic() - started)

    while True:
        request = build()
        if deadline is not None:
            if left() <= 0:
                raise ConnectionFailed(
                    f"{request.method} {request.url}: no answer within the call's deadline "
                    f"of {deadline:g} s ({attempt} attempts)"
                )
            request.extensions["timeout"] = _shrunk(config.timeout, left())
        try:
            response: httpx.Response = yield Send(request, stream)
        except httpx.TransportError as exc:
            never_sent = isinstance(
                exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
            )
            delay = policy.delay(attempt, None)
            if attempt >= policy.max_retries or not (never_sent or retry_safe) or delay >= left():
                raise ConnectionFailed(f"{request.method} {request.url}: {exc!r}") from exc
            _tell(config, request, attempt, delay, None, exc)
            yield Sleep(delay)
            attempt += 1
            continue
        status = response.status_code
        retryable = status in policy.statuses and (status == 429 or retry_safe)
        if retryable and attempt < policy.max_retries:
            delay = policy.delay(attempt, response)
            if delay <= policy.max_wait and delay < left():
                _tell(config, request, attempt, delay, status, None)
                yield Sleep(delay)
                attempt += 1
                continue
        return response, attempt + 1


def _shrunk(timeout: httpx.Timeout, left: float) -> dict[str, float | None]:
    """``timeout``'s parts, none longer than ``left`` seconds (httpx's request extension)."""
    parts = timeout.as_dict()
    return {k: left if v is None else min(v, left) for k, v in parts.items()}


def _tell(
    config: Config,
    request: httpx.Request,
    attempt: int,
    delay: float,
    status: int | None,
    error: BaseException | None,
) -> None:
    if config.on_retry is not None:
        config.on_retry(
            RetryInfo(request.method, str(request.url), attempt + 1, delay, status, error)
        )


def execute(config: Config, plan: Plan) -> Flow[tuple[httpx.Response, int]]:
    """Run ``plan``: credentials, an ``Idempotency-Key`` for a write (the same on every
    retry), retries, and one fresh credential after a 401. Error responses are returned,
    not raised (see :func:`run`)."""
    headers = {"User-Agent": config.user_agent, "Accept": "application/json", **plan.headers}
    if plan.write and "Idempotency-Key" not in headers:
        headers["Idempotency-Key"] = str(uuid.uuid4())
    params = {k: _query_value(v) for k, v in plan.params.items() if v is not None}
    url = config.api_url + plan.path
    renewed = False
    while True:
        credentials: dict[str, str] = yield Authenticate(config.auth.headers(config))

        def build(credentials: dict[str, str] = credentials) -> httpx.Request:
            return httpx.Request(
                plan.method,
                url,
                params=params,
                headers={**headers, **credentials},
                json=plan.json,
            )

        response, attempts = yield from send_with_retries(
            config, build, retry_safe=plan.retry_safe or not plan.write, stream=plan.stream
        )
        if response.status_code == 401 and not renewed and config.auth.invalidate():
            renewed = True
            continue
        return response, attempts


def run(config: Config, call: Call[T]) -> Flow[T]:
    """Execute ``call`` and parse its answer, or raise its typed error."""
    response, attempts = yield from execute(config, call.plan)
    raise_for_problem(response)
    try:
        return call.parse(response, meta_of(response, attempts))
    except (ValueError, AttributeError, TypeError, KeyError) as exc:
        raise UnexpectedResponse(
            response.status_code,
            response.headers.get("content-type"),
            response.headers.get("x-request-id"),
            response.content,
        ) from exc


def _query_value(value: Param) -> str | list[str]:
    if isinstance(value, list):
        return [str(_query_value(v)) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
