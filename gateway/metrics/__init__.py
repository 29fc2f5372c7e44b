"""Prometheus metrics, counted by each worker in plain Python and exported at ``/metrics``.

Why not prometheus-client's own metric objects on the request path: in its
multiprocess mode every ``inc``/``observe`` takes a lock and writes an mmap'd
file, and the request path is benchmarked against bare Sanic with thin margins.
Here a counter is an entry in a dict, a histogram a list of bucket counts (the
bucket found with ``bisect``): about a microsecond per request in all
(``gateway.metrics.export`` says how the workers' numbers are put together).

The families below are the whole catalogue: names and labels are fixed (a
Grafana dashboard reads them). Every label has a bounded set of values: routes
are Sanic's route templates (``/api/v1/orders/{id}``, ``unmatched`` for a path
no route serves), methods outside HTTP's own are ``_OTHER``, GraphQL operation
names are kept for the first ``MAX_OPERATION_NAMES`` distinct ones a worker
sees and are ``_other`` after that.

Counters, histograms and the gauges kept here are process-wide (one app per
worker process; several test apps in one process share them). What belongs to
one app (its relay, its database pool, its Redis components) is read from that
app when a scrape or a flush asks (``export.pull``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from datetime import UTC, datetime
from time import perf_counter, time
from typing import TYPE_CHECKING, Any, Literal, Protocol

from graphql import DocumentNode, OperationDefinitionNode

if TYPE_CHECKING:
    from sanic import Request

Labels = tuple[Any, ...]

# OpenTelemetry's semantic conventions: http.server.request.duration's buckets.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
LAG_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
COST_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 20000, 50000)
MAX_OPERATION_NAMES = 100
# A longer name is a client's text, not an operation anyone charts: ``_other``, and it
# takes no slot (a 60 KB name would otherwise be in every scrape until a restart).
MAX_OPERATION_NAME_LENGTH = 100
OTHER_OPERATION = "_other"
ANONYMOUS_OPERATION = "_anonymous"
INVALID_OPERATION = "_invalid"  # refused before it ran: did not parse, or not valid
INVALID_OPERATION = "_invalid"  # refused before it ran: did not parse, or not valid
UNMATCHED_ROUTE = "unmatched"
OTHER_METHOD = "_OTHER"
# RFC 9110's methods (OpenTelemetry's list for http.request.method), plus PATCH.
METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
)


class Counter:
    """A counter family: a value per label tuple, only ever growing in this process."""

    kind = "counter"
    __slots__ = ("documentation", "labels", "name", "values")

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...]) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = labels
        self.values: dict[Labels, float] = {}

    def inc(self, labels: Labels = (), amount: float = 1) -> None:
        values = self.values
        values[labels] = values.get(labels, 0) + amount


class Gauge:
    """A gauge family. ``merge`` says how the workers' values add up: ``sum`` (open
    sockets: every worker's count) or ``max`` (0/1 flags, positions); only the
    workers alive are counted."""

    kind = "gauge"
    __slots__ = ("documentation", "labels", "merge", "name", "values")

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: tuple[str, ...],
        merge: Literal["sum", "max"] = "sum",
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = labels
        self.merge = merge
        self.values: dict[Labels, float] = {}

    def add(self, labels: Labels, amount: float) -> None:
        values = self.values
        values[labels] = values.get(labels, 0) + amount

    def set(self, labels: Labels, value: float) -> None:
        self.values[labels] = value


class Histogram:
    """A histogram family: per label tuple, the count in each bucket (not cumulative;
    the last one is +Inf) and, last, the sum of the observations."""

    kind = "histogram"
    __slots__ = ("bounds", "documentation", "labels", "name", "values")

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: tuple[str, ...],
        bounds: Iterable[float],
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = labels
        self.bounds = tuple(float(b) for b in bounds)
        self.values: dict[Labels, list[float]] = {}

    def observe(self, labels: Labels, value: float) -> None:
        series = self.values.get(labels)
        if series is None:
            series = self.values[labels] = [0.0] * (len(self.bounds) + 2)
        series[bisect_left(self.bounds, value)] += 1  # "le": a value on a bound counts in it
        series[-1] += value


Family = Counter | Gauge | Histogram

HTTP_DURATION = Histogram(
    "http_server_request_duration_seconds",
    "Duration of HTTP server requests.",
    ("http_route", "http_request_method", "http_response_status_code"),
    HTTP_BUCKETS,
)
HTTP_ACTIVE = Gauge(
    "http_server_active_requests",
    "Number of active HTTP server requests.",
    ("http_request_method", "url_scheme"),
)
GRAPHQL_OPERATIONS = Counter(
    "gateway_graphql_operations_total",
    "GraphQL operations run, by name, type and transport.",
    ("graphql_operation_name", "graphql_operation_type", "transport"),
)
GRAPHQL_ERRORS = Counter(
    "gateway_graphql_operation_errors_total",
    "GraphQL operations that answered with errors.",
    ("graphql_operation_name", "graphql_operation_type", "transport"),
)
GRAPHQL_COST = Histogram(
    "gateway_graphql_operation_cost",
    "Estimated cost of GraphQL operations (objects they may make the server build).",
    ("graphql_operation_type",),
    COST_BUCKETS,
)
REALTIME_CONNECTIONS = Gauge(
    "gateway_realtime_connections", "Open real-time connections, by channel.", ("channel",)
)
REALTIME_SUBSCRIPTIONS = Gauge(
    "gateway_realtime_subscriptions", "Active real-time subscriptions, by channel.", ("channel",)
)
CHANGE_LAG = Histogram(
    "gateway_change_lag_seconds",
    "Seconds from a change's commit to each hop: relay (numbered), publish (on the bus), "
    "deliver (written to a socket or stream).",
    ("hop",),
    LAG_BUCKETS,
)
RELAY_LEADER = Gauge(
    "gateway_relay_leader", "1 while a worker here runs the change-log relay.", (), "max"
)
RELAY_POSITION = Gauge(
    "gateway_relay_position", "The last stream position the relay published.", (), "max"
)
DB_POOL = Gauge("gateway_db_pool_connections", "Database pool connections, by state.", ("state",))
DB_POOL_WAITS = Counter(
    "gateway_db_pool_waits_total", "Database acquires that had to wait for a connection.", ()
)
REDIS_ERRORS = Counter(
    "gateway_redis_errors_total", "Redis commands that failed, by component.", ("component",)
)
REDIS_RECONNECTS = Counter(
    "gateway_redis_reconnects_total", "Times the event bus reconnected to Redis.", ()
)
REDIS_FALLBACK = Gauge(
    "gateway_redis_fallback",
    "1 while a component decides per worker because Redis is away.",
    ("component",),
    "max",
)
RATE_LIMIT_REJECTIONS = Counter(
    "gateway_rate_limit_rejections_total", "Requests refused by a rate limit.", ("policy",)
)
CACHE_REQUESTS = Counter(
    "gateway_cache_requests_total", "Cache lookups, by cache and result.", ("cache", "result")
)
WEBHOOK_ATTEMPTS = Counter(
    "gateway_webhook_attempts_total",
    "Webhook delivery attempts, by outcome (delivered, failed, timeout, refused, error).",
    ("outcome",),
)

FAMILIES: tuple[Family, ...] = (
    HTTP_DURATION,
    HTTP_ACTIVE,
    GRAPHQL_OPERATIONS,
    GRAPHQL_ERRORS,
    GRAPHQL_COST,
    REALTIME_CONNECTIONS,
    REALTIME_SUBSCRIPTIONS,
    CHANGE_LAG,
    RELAY_LEADER,
    RELAY_POSITION,
    DB_POOL,
    DB_POOL_WAITS,
    REDIS_ERRORS,
    REDIS_RECONNECTS,
    REDIS_FALLBACK,
    RATE_LIMIT_REJECTIONS,
    CACHE_REQUESTS,
    WEBHOOK_ATTEMPTS,
)


def reset() -> None:
    """Forget every value of this process (tests that count from zero)."""
    for family in FAMILIES:
        family.values.clear()
    _operation_names.clear()


# -- HTTP (gateway.edge: Edge.begin and Edge.finish) ---------------------------------

_route_labels: dict[str, str] = {}
_active = HTTP_ACTIVE.values
_durations = HTTP_DURATION.values
_HTTP_WIDTH = len(HTTP_BUCKETS) + 2


def _template(path: str) -> str:
    """``api/v1/<ident:(?P<ident>[^/:]+)>.json`` as ``/api/v1/{ident}.json``: each
    parameter by its name, its type or pattern (which may hold ``<`` and ``>``) left out."""
    out, i = ["/"], 0
    path = path.lstrip("/")
    while i < len(path):
        char = path[i]
        if char != "<":
            out.append(char)
            i += 1
            continue
        depth, j = 0, i
        while j < len(path):
            depth += {"<": 1, ">": -1}.get(path[j], 0)
            if depth == 0:
                break
            j += 1
        name = path[i + 1 : j].split(":", 1)[0]
        out.append("{" + name + "}")
        i = j + 1
    return "".join(out)


def route_label(path: str) -> str:
    """Sanic's route path (``api/v1/orders/<id:int>``) as ``/api/v1/orders/{id}``."""
    label = _route_labels.get(path)
    if label is None:
        label = _route_labels[path] = _template(path)
    return label


def request_started(ctx: Any, method: str, https: bool) -> None:
    """Count the request (``ctx``: its ``request.ctx``) as active until its response,
    or its upgrade to a WebSocket."""
    key = (method if method in METHODS else OTHER_METHOD, "https" if https else "http")
    ctx.metrics = key
    _active[key] = _active.get(key, 0) + 1


def request_finished(request: Request, ctx: Any, status: int) -> None:
    """The request's duration, by route template, method and status; no longer active."""
    key = getattr(ctx, "metrics", None)
    if key is None:
        return
    ctx.metrics = None  # once, even if the response step runs twice
    _active[key] -= 1
    route = request.route
    if route is None:
        label = UNMATCHED_ROUTE
    else:
        label = _route_labels.get(route.path) or route_label(route.path)
    series = _durations.get((label, key[0], status))
    if series is None:
        series = _durations[(label, key[0], status)] = [0.0] * _HTTP_WIDTH
    seconds = perf_counter() - ctx.started
    series[bisect_left(HTTP_BUCKETS, seconds)] += 1
    series[-1] += seconds


def upgraded(request: Request) -> None:
    """A WebSocket upgrade: no response will end the request, so it ends here, as
    101 (from then on ``gateway_realtime_connections`` counts the socket)."""
    request_finished(request, request.ctx, 101)


# -- GraphQL (resolvers.http, resolvers.ws) -------------------------------------------


class Prepared(Protocol):
    """What ``graphql_operation`` reads of ``resolvers.engine.Prepared``."""

    @property
    def document(self) -> DocumentNode | None: ...

    @property
    def memo(self) -> dict[Any, Any]: ...


_MEMO_KEY = "gateway.metrics.operation"
_operation_names: set[str] = set()


def operation_name_label(name: str | None) -> str:
    """A bounded label: the first ``MAX_OPERATION_NAMES`` names seen, then ``_other``
    (and ``_other`` for any name over ``MAX_OPERATION_NAME_LENGTH`` characters)."""
    if name is None:
        return ANONYMOUS_OPERATION
    if name in _operation_names:
        return name
    if len(name) > MAX_OPERATION_NAME_LENGTH:
        return OTHER_OPERATION
    if len(_operation_names) >= MAX_OPERATION_NAMES:
        return OTHER_OPERATION
    _operation_names.add(name)
    return name


def _operation_labels(document: DocumentNode | None, operation_name: str | None) -> Labels:
    if document is None:  # refused: its names were never read (they may be anything)
        return (INVALID_OPERATION, "unknown")
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = None
    if operation_name is None and len(operations) == 1:
        chosen = operations[0]
    else:
        for operation in operations:
            if operation.name is not None and operation.name.value == operation_name:
                chosen = operation
    if chosen is None:  # no such operation in the document: an error
        return (INVALID_OPERATION, "unknown")
    name = chosen.name.value if chosen.name is not None else None
    return (operation_name_label(name), chosen.operation.value)


_operations = GRAPHQL_OPERATIONS.values
_costs = GRAPHQL_COST.values
_COST_BOUNDS = GRAPHQL_COST.bounds
_COST_WIDTH = len(_COST_BOUNDS) + 2


def graphql_operation(
    prepared: Prepared, operation_name: str | None, transport: str, failed: bool, cost: int
) -> None:
    """One operation run (or refused): its labels are worked out once per prepared
    document, operation name and transport, and kept with the document."""
    memo = prepared.memo
    key = (_MEMO_KEY, operation_name, transport)
    labels = memo.get(key)
    if labels is None:
        name, kind = _operation_labels(prepared.document, operation_name)
        labels = memo[key] = ((name, kind, transport), (kind,))
    series = labels[0]
    _operations[series] = _operations.get(series, 0) + 1
    if failed:
        GRAPHQL_ERRORS.inc(series)
    costs = _costs.get(labels[1])
    if costs is None:
        costs = _costs[labels[1]] = [0.0] * _COST_WIDTH
    costs[bisect_left(_COST_BOUNDS, cost)] += 1
    costs[-1] += cost


# -- real time -------------------------------------------------------------------------

_connections = REALTIME_CONNECTIONS.values
_subscriptions = REALTIME_SUBSCRIPTIONS.values


def connection_opened(channel: str) -> None:
    _connections[(channel,)] = _connections.get((channel,), 0) + 1


def connection_closed(channel: str) -> None:
    _connections[(channel,)] -= 1


def subscriptions_changed(channel: str, amount: int) -> None:
    _subscriptions[(channel,)] = _subscriptions.get((channel,), 0) + amount


_last_commit: list[Any] = [None, 0.0]  # (occurred_at, its time stamp): one event, many sockets


def _committed(occurred_at: datetime | str) -> float:
    if _last_commit[0] is occurred_at:
        return float(_last_commit[1])
    when = occurred_at if isinstance(occurred_at, datetime) else _parse_time(occurred_at)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    stamp = when.timestamp()
    _last_commit[0], _last_commit[1] = occurred_at, stamp
    return stamp


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def change_lag(hop: str, occurred_at: Iterable[datetime | str | None]) -> None:
    """Seconds from each change's commit (its ``occurred_at``) to ``hop``, now."""
    now = time()
    observe = CHANGE_LAG.observe
    labels = (hop,)
    for when in occurred_at:
        if when is None:
            continue
        try:
            observe(labels, max(0.0, now - _committed(when)))
        except (TypeError, ValueError):  # not a time stamp: nothing to measure
            continue


def delivered(events: Iterable[Any]) -> None:
    """Change events just written to a socket or stream (other items are skipped)."""
    change_lag(
        "deliver",
        [occurred for event in events if (occurred := getattr(event, "occurred_at", None))],
    )


def relay_published(events: list[dict[str, Any]]) -> None:
    """A batch the relay published: its lag, and the position it reached."""
    if events:
        change_lag("publish", [event.get("occurred_at") for event in events])
        position = events[-1].get("position")
        if isinstance(position, int):
            RELAY_POSITION.set((), position)


# -- Redis, rate limits, caches ----------------------------------------------------------


def redis_error(component: str) -> None:
    REDIS_ERRORS.inc((component,))


def webhook_attempt(outcome: str) -> None:
    """One webhook delivery attempt (realtime/webhooks)."""
    WEBHOOK_ATTEMPTS.inc((outcome,))


def redis_fallback(component: str, falling_back: bool) -> None:
    """Whether ``component`` works without Redis (in this worker alone) since its last try."""
    REDIS_FALLBACK.values[(component,)] = 1.0 if falling_back else 0.0


def rate_limited(policy: str) -> None:
    RATE_LIMIT_REJECTIONS.inc((policy,))


_cache = CACHE_REQUESTS.values
_HIT, _MISS = "hit", "miss"


def cache_lookup(cache: str, hit: bool) -> None:
    key = (cache, _HIT if hit else _MISS)
    _cache[key] = _cache.get(key, 0) + 1
