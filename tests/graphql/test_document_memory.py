"""Caches of documents stay within their byte budgets, whatever clients send.

Issue 12 measured one worker going from 117 to 897 MiB after 400 distinct ~1 MB
documents: the prepare cache kept 1,000 entries by full text and the persisted
query store 10,000, shared by every organization.
"""

from __future__ import annotations

import gc
import hashlib
import tracemalloc
import uuid

import pytest
from graphql import get_introspection_query

from gateway.settings import Settings
from resolvers.engine import MAX_CACHED_CHARACTERS, PreparedCache, Runner
from resolvers.persisted import (
    ENTRY_OVERHEAD,
    MAX_DOCUMENT_BYTES,
    PersistedQueries,
    PersistedQueryNotFound,
)
from tests.conftest import BACKEND, REDIS_URL


def distinct_document(i: int, size: int) -> str:
    """A valid document of about ``size`` characters, dense with tokens, unique per ``i``."""
    fields = " ".join(["databaseId status totalCents note createdAt"] * 3)
    body = f"query Q{i} {{ orders(first: {i % 50 + 1}) {{ nodes {{ {fields} }} }} }}"
    return body + "\n#" + "x" * max(0, size - len(body) - 2)


@pytest.mark.backend_independent  # parsing only
def test_the_prepare_cache_keeps_to_its_byte_budget_over_400_large_documents():
    budget = 4 * 1024 * 1024
    runner = Runner(Settings(environment="test", graphql_cache_bytes=budget))
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(400):
            assert not runner.prepare(distinct_document(i, 8000)).errors
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert runner.cache.bytes <= budget
    assert 0 < len(runner.cache) < 400  # the oldest went out
    assert after - before <= budget, f"{(after - before) / 2**20:.1f} MiB held"


@pytest.mark.backend_independent  # parsing only
def test_documents_over_the_cacheable_size_are_prepared_but_never_kept():
    runner = Runner(Settings(environment="test"))
    big = distinct_document(1, MAX_CACHED_CHARACTERS + 1)
    assert not runner.prepare(big).errors
    assert len(runner.cache) == 0
    small = distinct_document(2, 500)
    runner.prepare(small)
    assert runner.prepare(small) is runner.prepare(small)
    assert len(runner.cache) == 1


@pytest.mark.backend_independent  # parsing only
@pytest.mark.parametrize(
    "query",
    [
        distinct_document(7, 2000),
        get_introspection_query(),
        "{ " + " ".join(f"a{i}: __typename" for i in range(25)) + " }",
        "query(" + " ".join(f"$v{i}: Int" for i in range(300)) + ") { __typename }",  # refused
    ],
    ids=["dense", "introspection", "aliases", "refused"],
)
def test_the_cache_estimate_is_never_below_what_an_entry_holds(query):
    runner = Runner(Settings(environment="test"))
    runner.prepare("{ __typename }")
    runner.cache.clear()
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        prepared, tokens = runner._prepare(query)
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert prepared.document is not None or prepared.errors
    assert after - before <= PreparedCache.estimate(query, tokens)


# -- persisted queries ---------------------------------------------------------------


class Clock:
    """Time as the test says; each reading a microsecond later, as a real clock moves."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        self.now += 1e-6
        return self.now


def apq(query: str) -> dict[str, object]:
    return {
        "persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(query.encode()).hexdigest()}
    }


@pytest.fixture(params=["memory", "redis"])
async def store_factory(request):
    """A persisted-query store per backend (Redis only where the suite has one)."""
    clients = []

    def make(**options: object) -> PersistedQueries:
        if request.param == "memory":
            return PersistedQueries(None, **options)  # type: ignore[arg-type]
        from redis.asyncio import Redis

        client = Redis.from_url(REDIS_URL)
        clients.append(client)
        return PersistedQueries(client, **options)  # type: ignore[arg-type]

    if request.param == "redis" and BACKEND != "services":
        pytest.skip("Redis runs in the services pass")
    yield make
    for client in clients:
        await client.aclose()


async def test_persisted_queries_stay_within_each_organizations_budget(store_factory):
    budget = 64 * 1024
    store = store_factory(budget_bytes=budget, clock=Clock())
    org = int(uuid.uuid4().int % 10**9) + 10**9  # an organization no other test uses
    queries = [distinct_document(i, 4000) for i in range(400)]
    for query in queries:
        await store.resolve(org, query, apq(query))
    kept = 0
    for query in queries:
        try:
            await store.resolve(org, None, apq(query))
            kept += 1
        except PersistedQueryNotFound:
            pass
    assert 0 < kept <= budget // (4000 + ENTRY_OVERHEAD)
    # the newest are the ones kept
    assert await store.resolve(org, None, apq(queries[-1])) == queries[-1]
    if store.redis is not None:
        total = await store.redis.hget(f"gateway:apq:{org}:docs", "#bytes")
        assert int(total) <= budget
    else:
        assert store.memory_bytes <= budget


async def test_persisted_queries_are_per_organization_and_expire(store_factory):
    clock = Clock()
    store = store_factory(ttl_seconds=3600, clock=clock)
    org, other = (int(uuid.uuid4().int % 10**9) + 10**9 for _ in range(2))
    query = distinct_document(1, 300)
    await store.resolve(org, query, apq(query))
    assert await store.resolve(org, None, apq(query)) == query
    with pytest.raises(PersistedQueryNotFound):
        await store.resolve(other, None, apq(query))
    clock.now += 3599  # used within the hour: kept, and the use renews it
    assert await store.resolve(org, None, apq(query)) == query
    clock.now += 3601
    with pytest.raises(PersistedQueryNotFound):
        await store.resolve(org, None, apq(query))


async def test_documents_over_the_persisted_size_run_but_are_not_stored(store_factory):
    store = store_factory(clock=Clock())
    org = int(uuid.uuid4().int % 10**9) + 10**9
    query = distinct_document(3, MAX_DOCUMENT_BYTES + 1)
    assert await store.resolve(org, query, apq(query)) == query
    with pytest.raises(PersistedQueryNotFound):
        await store.resolve(org, None, apq(query))


async def test_one_organization_cannot_run_anothers_persisted_query(tenant, other_tenant):
    query = "{ orders(first: 2) { nodes { databaseId } } }"
    stored = await tenant.client.post("/graphql", json={"query": query, "extensions": apq(query)})
    assert "errors" not in stored.json()
    mine = await tenant.client.post("/graphql", json={"extensions": apq(query)})
    assert mine.json() == stored.json()
    theirs = await other_tenant.client.post("/graphql", json={"extensions": apq(query)})
    assert theirs.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
