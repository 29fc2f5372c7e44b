"""``/metrics``: scraped with prometheus-client's own parser, after real traffic.

Values are process-wide and other tests' traffic moves them too: every check
reads a value before and after its own traffic, and waits (with a deadline) for
what happens in the background (a delivery, a socket's end).
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from gateway import metrics
from gateway.app import create_app
from gateway.metrics.endpoint import MetricsForbidden, MetricsTokenRequired, check_access
from gateway.metrics.export import Exchange, merge, snapshot
from tests import realtime_clients as rt
from tests.factories import TOKENS, make_product

NAMES = {
    "http_server_request_duration_seconds": (
        "histogram",
        {"http_route", "http_request_method", "http_response_status_code"},
    ),
    "http_server_active_requests": ("gauge", {"http_request_method", "url_scheme"}),
    "gateway_graphql_operations": (
        "counter",
        {"graphql_operation_name", "graphql_operation_type", "transport"},
    ),
    "gateway_graphql_operation_errors": (
        "counter",
        {"graphql_operation_name", "graphql_operation_type", "transport"},
    ),
    "gateway_graphql_operation_cost": ("histogram", {"graphql_operation_type"}),
    "gateway_realtime_connections": ("gauge", {"channel"}),
    "gateway_realtime_subscriptions": ("gauge", {"channel"}),
    "gateway_change_lag_seconds": ("histogram", {"hop"}),
    "gateway_relay_leader": ("gauge", set()),
    "gateway_relay_position": ("gauge", set()),
    "gateway_db_pool_connections": ("gauge", {"state"}),
    "gateway_db_pool_waits": ("counter", set()),
    "gateway_redis_errors": ("counter", {"component"}),
    "gateway_redis_reconnects": ("counter", set()),
    "gateway_redis_fallback": ("gauge", {"component"}),
    "gateway_rate_limit_rejections": ("counter", {"policy"}),
    "gateway_cache_requests": ("counter", {"cache", "result"}),
}
OTEL_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
DEADLINE = 20.0

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> tuple[dict[str, Any], Samples]:
    found = {family.name: family for family in text_string_to_metric_families(text)}
    samples: Samples = {}
    for family in found.values():
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of ``name`` that has ``labels`` (and maybe more)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)[1]


async def until(client: httpx.AsyncClient, check: Callable[[Samples], bool], what: str) -> Samples:
    deadline = time.monotonic() + DEADLINE
    while True:
        samples = await scrape(client)
        if check(samples):
            return samples
        assert time.monotonic() < deadline, f"never seen: {what}"
        await asyncio.sleep(0.05)


def bearer(tenant: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS.mint(tenant.id, 'owner')}"}


async def test_every_family_has_its_name_type_and_labels(server, anon, tenant):
    await tenant.client.get("/api/v1/products")
    response = await anon.get("/metrics")
    assert response.status_code == 200
    families, samples = parse(response.text)
    for name, (kind, labels) in NAMES.items():
        assert name in families, name
        assert families[name].type == kind, name
        for sample in families[name].samples:
            assert set(sample.labels) - {"le"} == labels, (name, sample.labels)
    # OpenTelemetry's buckets, exactly, and a pool with a size.
    les = sorted(
        {
            float(ls["le"])
            for (name, labels), _ in samples.items()
            if name == "http_server_request_duration_seconds_bucket"
            for ls in [dict(labels)]
        }
    )
    assert les == [*OTEL_BUCKETS, float("inf")]
    assert value(samples, "gateway_db_pool_connections", state="max") >= 1
    assert value(samples, "gateway_relay_leader") == 1.0  # the test server runs the relay
    assert "python_info" in families
    assert "process_resident_memory_bytes" in families  # one process: its own metrics


async def test_openmetrics_when_asked_for(server, anon):
    response = await anon.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


async def test_rest_requests_are_counted_by_route_template_never_the_raw_path(server, anon, tenant):
    product = await make_product(tenant.owner)
    before = await scrape(anon)
    route = "/api/v1/products/{ident}"
    for _ in range(3):
        assert (await tenant.client.get(f"/api/v1/products/{product['id']}")).status_code == 200
    assert (await anon.get("/no/such/path/123456")).status_code == 404
    assert (await anon.request("BREW", "/api/v1/products")).status_code in (400, 405)
    after = await scrape(anon)
    name = "http_server_request_duration_seconds_count"
    ok = {"http_route": route, "http_request_method": "GET", "http_response_status_code": "200"}
    assert value(after, name, **ok) - value(before, name, **ok) == 3
    assert total(after, name, http_route="unmatched", http_response_status_code="404") > total(
        before, name, http_route="unmatched", http_response_status_code="404"
    )
    assert total(after, name, http_request_method="_OTHER") > total(
        before, name, http_request_method="_OTHER"
    )
    routes = {dict(ls).get("http_route") for (n, ls) in after if n == name}
    segments = {part for r in routes if r for part in r.split("/")}
    assert not any(part.isdigit() for part in segments), routes  # templates, never ids
    assert all(r == "unmatched" or r.startswith("/") for r in routes if r)
    # nothing is in flight once every response is back (this scrape is its own request)
    assert (
        value(after, "http_server_active_requests", http_request_method="GET", url_scheme="http")
        == 1
    )


async def test_graphql_operations_by_name_type_transport_with_errors_and_cost(server, anon, tenant):
    before = await scrape(anon)
    query = "query MetricsProbe { products(first: 5) { edges { node { id } } } }"
    ok = await tenant.client.post("/graphql", json={"query": query})
    assert ok.status_code == 200, ok.text
    assert "errors" not in ok.json(), ok.text
    bad = await tenant.client.post("/graphql", json={"query": "query Broken { nope }"})
    assert bad.json()["errors"]
    after = await scrape(anon)
    name = "gateway_graphql_operations_total"
    labels = {
        "graphql_operation_name": "MetricsProbe",
        "graphql_operation_type": "query",
        "transport": "http",
    }
    assert value(after, name, **labels) - value(before, name, **labels) == 1
    errors = "gateway_graphql_operation_errors_total"
    # refused before it ran: its names are not read (a client could send anything)
    broken = {**labels, "graphql_operation_name": "_invalid", "graphql_operation_type": "unknown"}
    assert value(after, errors, **broken) - value(before, errors, **broken) == 1
    cost = "gateway_graphql_operation_cost_count"
    assert (
        value(after, cost, graphql_operation_type="query")
        - value(before, cost, graphql_operation_type="query")
        == 1
    )
    hits = "gateway_cache_requests_total"
    await tenant.client.post("/graphql", json={"query": query})
    again = await scrape(anon)
    assert value(again, hits, cache="graphql_documents", result="hit") > value(
        after, hits, cache="graphql_documents", result="hit"
    )


async def test_sockets_streams_and_deliveries_move_the_realtime_metrics(server, anon, tenant):
    token = TOKENS.mint(tenant.id, "owner")
    before = await scrape(anon)
    connections = "gateway_realtime_connections"
    subscriptions = "gateway_realtime_subscriptions"
    delivered = "gateway_change_lag_seconds_count"
    url = server.base_url.replace("http", "ws") + "/graphql"
    async with (
        rt.realtime(server.base_url, token) as ws,
        rt.sse(anon, {"topics": "products"}, bearer(tenant)) as stream,
        websockets.connect(url, subprotocols=["graphql-transport-ws"]) as gql,
    ):
        await rt.subscribe(ws, "p", ["products"])
        init = {"Authorization": f"Bearer {token}"}
        await gql.send(orjson.dumps({"type": "connection_init", "payload": init}).decode())
        assert orjson.loads(await gql.recv())["type"] == "connection_ack"
        subscription = 'subscription { changes(resources: ["products"]) { position } }'
        message = {"id": "1", "type": "subscribe", "payload": {"query": subscription}}
        await gql.send(orjson.dumps(message).decode())

        def open_now(s: Samples) -> bool:
            return all(
                value(s, metric, channel=channel) >= value(before, metric, channel=channel) + 1
                for channel in ("json-ws", "sse", "graphql-ws")
                for metric in (connections, subscriptions)
            )

        await until(anon, open_now, "a socket, a stream and a GraphQL subscription open")
        await make_product(tenant.owner)
        await rt.events(ws, 1)
        await stream.events(1)
        reply = orjson.loads(await asyncio.wait_for(gql.recv(), 10))
        assert reply["type"] == "next", reply
        seen = await until(
            anon,
            lambda s: (
                value(s, delivered, hop="deliver") >= value(before, delivered, hop="deliver") + 3
            ),
            "three deliveries",
        )
        for hop in ("relay", "publish"):
            assert value(seen, delivered, hop=hop) > value(before, delivered, hop=hop)
        assert value(seen, "gateway_relay_position") > 0
    await until(
        anon,
        lambda s: all(
            value(s, connections, channel=c) == value(before, connections, channel=c)
            for c in ("json-ws", "sse", "graphql-ws")
        ),
        "every socket and stream counted closed",
    )


async def test_a_client_elsewhere_needs_the_token(server, anon, monkeypatch):
    settings = server.app.ctx.settings
    token = "a-metrics-token-long-enough"
    monkeypatch.setattr(settings, "trusted_proxies", [ipaddress.ip_network("127.0.0.1/32")])
    monkeypatch.setattr(settings, "metrics_token", token)
    # Forwarded by a trusted proxy (us, on loopback) for a client elsewhere: not loopback.
    elsewhere = {"X-Forwarded-For": "203.0.113.9"}
    refused = await anon.get("/metrics", headers=elsewhere)
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "METRICS_TOKEN_REQUIRED"
    wrong = await anon.get("/metrics", headers={**elsewhere, "Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "METRICS_FORBIDDEN"
    right = await anon.get("/metrics", headers={**elsewhere, "Authorization": f"Bearer {token}"})
    assert right.status_code == 200
    assert "http_server_request_duration_seconds" in right.text
    # a proxy's own loopback client is loopback
    assert (await anon.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})).status_code == 200


def test_the_access_rule() -> None:
    check_access("127.0.0.1", None, None)
    check_access("::1", None, None)
    with pytest.raises(MetricsTokenRequired):
        check_access("10.0.0.8", None, "t" * 20)
    with pytest.raises(MetricsTokenRequired):
        check_access("10.0.0.8", "Basic dXNlcjpwYXNz", "t" * 20)
    with pytest.raises(MetricsForbidden):
        check_access("10.0.0.8", "Bearer " + "t" * 19, "t" * 20)
    with pytest.raises(MetricsForbidden):  # no token configured: nobody elsewhere
        check_access("10.0.0.8", "Bearer anything", None)
    check_access("10.0.0.8", "bearer " + "t" * 20, "t" * 20)
    # A trusted proxy elsewhere saying "X-Forwarded-For: 127.0.0.1" is not loopback:
    # the socket's peer must be loopback too.
    with pytest.raises(MetricsTokenRequired):
        check_access("127.0.0.1", None, "t" * 20, peer="192.0.2.2")
    with pytest.raises(MetricsTokenRequired):
        check_access("::1", None, "t" * 20, peer="10.1.2.3")
    check_access("127.0.0.1", None, None, peer="127.0.0.1")
    check_access("10.0.0.8", "Bearer " + "t" * 20, "t" * 20, peer="192.0.2.2")


async def test_wrong_metrics_tokens_use_up_the_address_s_refused_credentials(
    server, anon, monkeypatch
):
    from gateway.ratelimit import Rate

    settings = server.app.ctx.settings
    token = "a-metrics-token-long-enough"
    monkeypatch.setattr(settings, "trusted_proxies", [ipaddress.ip_network("127.0.0.1/32")])
    monkeypatch.setattr(settings, "metrics_token", token)
    monkeypatch.setitem(server.app.ctx.throttle.rates, "auth-failures", Rate.parse("2/minute"))
    # addresses of this run's own (the counters may live in a shared Redis)
    first, second = (f"198.18.{random.randrange(256)}.{random.randrange(1, 255)}" for _ in "ab")
    elsewhere = {"X-Forwarded-For": first}
    statuses = [
        (
            await anon.get("/metrics", headers={**elsewhere, "Authorization": f"Bearer guess{n}"})
        ).status_code
        for n in range(4)
    ]
    assert statuses[:2] == [403, 403]
    assert statuses[2:] == [429, 429]
    # the address is refused without its credential being checked, the right one included
    right = await anon.get("/metrics", headers={**elsewhere, "Authorization": f"Bearer {token}"})
    assert right.status_code == 429
    assert "Retry-After" in right.headers
    # another address is not
    other = {"X-Forwarded-For": second, "Authorization": f"Bearer {token}"}
    assert (await anon.get("/metrics", headers=other)).status_code == 200


async def test_head_metrics_answers_the_headers_of_get(server, anon):
    r = await anon.head("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert r.content == b""


async def test_metrics_is_not_in_the_openapi_document(server, anon):
    document = (await anon.get("/api/v1/openapi.json")).json()
    assert not any("metrics" in path for path in document["paths"])


def test_operation_names_stop_at_the_cap(monkeypatch) -> None:
    monkeypatch.setattr(metrics, "_operation_names", set())
    names = [f"Op{n}" for n in range(metrics.MAX_OPERATION_NAMES)]
    assert [metrics.operation_name_label(n) for n in names] == names
    assert metrics.operation_name_label("OneTooMany") == metrics.OTHER_OPERATION
    assert metrics.operation_name_label("Op0") == "Op0"  # known names stay
    assert metrics.operation_name_label(None) == metrics.ANONYMOUS_OPERATION


def test_a_long_operation_name_is_other_and_takes_no_slot(monkeypatch) -> None:
    monkeypatch.setattr(metrics, "_operation_names", set())
    longest = "Q" * metrics.MAX_OPERATION_NAME_LENGTH
    assert metrics.operation_name_label(longest) == longest
    for n in range(500):
        name = f"Q{n}" + "x" * metrics.MAX_OPERATION_NAME_LENGTH
        assert metrics.operation_name_label(name) == metrics.OTHER_OPERATION
    assert metrics._operation_names == {longest}


async def test_a_60_kb_operation_name_leaves_the_scrape_small(server, anon, tenant):
    name = "Q" * 60_000
    r = await tenant.client.post("/graphql", json={"query": f"query {name} {{ __typename }}"})
    assert r.status_code == 200, r.text
    text = (await anon.get("/metrics")).text
    assert name[:101] not in text
    assert 'graphql_operation_name="_other"' in text


def test_route_templates_and_methods() -> None:
    assert metrics.route_label("api/v1/orders/<id:int>") == "/api/v1/orders/{id}"
    assert metrics.route_label("api/v1/<a>/<b:str>/x") == "/api/v1/{a}/{b}/x"
    assert metrics.route_label("") == "/"
    assert metrics.route_label("api/v1/products/<ident:(?P<ident>[^/:]+)>") == (
        "/api/v1/products/{ident}"
    )
    assert metrics.route_label("files/<name:str>.json") == "/files/{name}.json"


def test_histogram_buckets_count_a_value_on_a_bound_in_it() -> None:
    histogram = metrics.Histogram("h", "h", ("l",), (0.1, 1.0))
    for v in (0.1, 0.5, 1.0, 3.0):
        histogram.observe(("x",), v)
    assert histogram.values[("x",)] == [1, 2, 1, 4.6]


def test_workers_add_up_counters_always_and_gauges_while_alive(tmp_path: Path) -> None:
    """Two live workers and one dead one, as the scraping worker reads their files."""
    mine = snapshot({})
    base_http = sum(sum(v[:-1]) for v in mine["http_server_request_duration_seconds"].values())
    key = ("/x", "GET", 200)
    other = {name: {} for name in mine}
    other["http_server_request_duration_seconds"] = {key: [1.0] + [0.0] * 14 + [0.001]}
    other["gateway_realtime_connections"] = {("sse",): 2}
    other["gateway_relay_leader"] = {(): 1.0}
    dead = {name: {} for name in mine}
    dead["http_server_request_duration_seconds"] = {key: [2.0] + [0.0] * 14 + [0.002]}
    dead["gateway_realtime_connections"] = {("sse",): 5}
    import os
    import subprocess
    import sys

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    live = Exchange(tmp_path, pid=os.getppid())
    live.write(other)  # a live process
    Exchange(tmp_path, pid=int(gone.stdout)).write(dead)  # exited
    reader = Exchange(tmp_path)
    merged = merge([(mine, True), *reader.others()])
    http = merged["http_server_request_duration_seconds"]
    assert sum(sum(v[:-1]) for v in http.values()) == base_http + 3
    assert http[key][0] >= 3
    sse = merged["gateway_realtime_connections"].get(("sse",), 0)
    assert sse == mine["gateway_realtime_connections"].get(("sse",), 0) + 2
    assert merged["gateway_relay_leader"][()] == 1.0
    # a dead worker's file is folded into the retired workers' once it is old enough:
    # the totals do not move, the gauges were not counted anyway
    assert reader.retire() == 0
    assert reader.retire(now=time.time() + 120) == 1
    assert reader.retire(now=time.time() + 120) == 0
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["retired.json", live.path.name]
    refolded = merge([(mine, True), *reader.others()])
    assert refolded == merged
    # a stopped worker's gauges are gone, its counters stay
    live.write(other, stopped=True)
    merged = merge([(mine, True), *reader.others()])
    assert merged["gateway_realtime_connections"].get(("sse",), 0) == mine[
        "gateway_realtime_connections"
    ].get(("sse",), 0)
    assert merged["http_server_request_duration_seconds"][key][0] >= 3


def test_apps_made_in_one_process_each_have_their_own_registry(settings) -> None:
    first = create_app(settings)
    second = create_app(settings)
    assert first.router.find_route_by_view_name(f"{first.name}.metrics") is not None
    assert second.router.find_route_by_view_name(f"{second.name}.metrics") is not None


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_two_workers_are_summed_in_one_scrape(tmp_path: Path) -> None:
    """Requests that only this test sends, answered by both workers (each worker's request
    ids start with a prefix of its own): one scrape counts all of them, once. The
    workers' directory is gone once the server has stopped."""
    from tests.served import GUARD, gateways, own_database

    with own_database(tmp_path) as database, gateways(tmp_path, database) as start:
        node = start(workers=2, TMPDIR=str(tmp_path))
        (directory,) = tmp_path.glob("gateway-metrics-*")
        served: dict[str, int] = {}
        deadline = time.monotonic() + DEADLINE * 3
        while len(served) < 2 or min(served.values()) < 2:
            with httpx.Client(base_url=node.url, timeout=10) as fresh:  # a new connection
                reply = fresh.get("/api/v1/products")
            assert reply.status_code == 401
            prefix = reply.headers["x-request-id"][:16]
            served[prefix] = served.get(prefix, 0) + 1
            assert time.monotonic() < deadline, f"one worker answered every connection: {served}"
        sent = sum(served.values())
        labels = frozenset(
            {
                "http_route": "/api/v1/products",
                "http_request_method": "GET",
                "http_response_status_code": "401",
            }.items()
        )
        while True:
            with httpx.Client(base_url=node.url, timeout=10) as fresh:
                text = fresh.get("/metrics").text
            count = parse(text)[1].get(("http_server_request_duration_seconds_count", labels), 0)
            if count == sent:
                break
            assert count < sent, f"{count} counted, {sent} sent: counted twice"
            assert time.monotonic() < deadline, f"only {count} of {sent} requests ({served}) seen"
            time.sleep(0.1)
        assert "process_resident_memory_bytes" not in text  # one process's own: left out
        assert len(list(directory.glob("worker-*.json"))) == 2
        node.proc.send_signal(signal.SIGTERM)
        node.proc.wait(timeout=GUARD)
        assert not directory.exists()


async def test_rate_limit_refusals_are_counted_by_policy(server, anon, tenant, monkeypatch):
    from gateway.ratelimit import Rate

    monkeypatch.setitem(server.app.ctx.throttle.rates, "read", Rate.parse("1/minute"))
    name = "gateway_rate_limit_rejections_total"
    before = value(await scrape(anon), name, policy="read")
    assert (await tenant.client.get("/api/v1/customers")).status_code == 200
    assert (await tenant.client.get("/api/v1/customers")).status_code == 429
    assert value(await scrape(anon), name, policy="read") == before + 1


async def test_redis_away_counts_errors_and_the_fallback(server, anon, monkeypatch):
    """A limiter whose Redis does not answer: an error counted, and the fallback flag
    up while it decides in this worker alone."""
    from gateway.ratelimit import Rate, RateLimiter
    from gateway.redis_client import redis_client
    from tests.processes import free_port

    redis = redis_client(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    limiter = RateLimiter(redis, redis_timeout=0.5)
    monkeypatch.setattr(server.app.ctx.throttle, "limiter", limiter)
    before = value(await scrape(anon), "gateway_redis_errors_total", component="ratelimit")
    try:
        decision = await limiter.hit("read", "metrics-test", Rate.parse("5/minute"))
    finally:
        await redis.aclose()
    assert decision.allowed  # decided in this worker
    after = await scrape(anon)
    assert value(after, "gateway_redis_errors_total", component="ratelimit") == before + 1
    assert value(after, "gateway_redis_fallback", component="ratelimit") == 1.0


async def test_persisted_queries_count_lookups_redis_errors_and_the_fallback() -> None:
    from gateway.redis_client import redis_client
    from resolvers.persisted import PersistedQueries, PersistedQueryNotFound
    from tests.processes import free_port

    redis = redis_client(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    store = PersistedQueries(redis)
    before = snapshot({})
    unknown = {"persistedQuery": {"version": 1, "sha256Hash": "a" * 64}}
    try:
        with pytest.raises(PersistedQueryNotFound):
            await store.resolve(1, None, unknown)
    finally:
        await redis.aclose()
    after = snapshot({})
    errors, lookups = "gateway_redis_errors_total", "gateway_cache_requests_total"
    component = ("persisted_queries",)
    assert after[errors][component] == before[errors].get(component, 0) + 1
    assert after["gateway_redis_fallback"][component] == 1.0
    miss = ("persisted_queries", "miss")
    assert after[lookups][miss] == before[lookups].get(miss, 0) + 1


async def test_a_read_that_waits_for_a_connection_is_counted(server, anon, is_postgres):
    """PostgreSQL: with every connection of the reads' gate taken, a read waits, and
    says so. (SQLite has one connection and no pool: its waits are not counted.)"""
    if not is_postgres:
        pytest.skip("PostgreSQL's pool")
    from db.sql import client

    gate = client()._gate
    name = "gateway_db_pool_waits_total"
    before = value(await scrape(anon), name)
    taken = 0
    while not gate.locked():
        await gate.acquire()
        taken += 1
    try:
        waiting = asyncio.create_task(client().fetch_dicts("SELECT 1 AS one", []))
        await asyncio.sleep(0)  # it reaches the gate, and waits there
        assert not waiting.done()
    finally:
        for _ in range(taken):
            gate.release()
    assert await waiting == [{"one": 1}]
    after = await scrape(anon)
    assert value(after, name) >= before + 1
    assert value(after, "gateway_db_pool_connections", state="max") >= 1


def test_revocation_notices_count_lost_redis_and_the_fallback_until_it_answers() -> None:
    from gateway.auth.denylist import Denylist

    denylist = Denylist()
    errors, fallback, component = (
        "gateway_redis_errors_total",
        "gateway_redis_fallback",
        ("revocations",),
    )
    before = snapshot({})
    denylist._lost_redis(ConnectionError("Error 111 connecting to 127.0.0.1:6390"))
    lost = snapshot({})
    assert lost[errors][component] == before[errors].get(component, 0) + 1
    assert lost[fallback][component] == 1.0
    denylist._heard_from_redis()
    assert snapshot({})[fallback][component] == 0.0
