"""Automatic persisted queries (Apollo APQ): hash first, query on a miss, cacheable GETs."""

from __future__ import annotations

import hashlib
import json

QUERY = "{ orders(first: 1) { nodes { databaseId } } }"
HASH = hashlib.sha256(QUERY.encode()).hexdigest()
EXT = {"persistedQuery": {"version": 1, "sha256Hash": HASH}}


async def test_the_apq_round_trip(tenant):
    unknown = {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}
    miss = await tenant.client.post("/graphql", json={"extensions": unknown})
    assert miss.status_code == 200
    assert miss.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert miss.json()["errors"][0]["message"] == "PersistedQueryNotFound"

    stored = await tenant.client.post("/graphql", json={"query": QUERY, "extensions": EXT})
    assert stored.json()["data"] == {"orders": {"nodes": []}}
    by_hash = await tenant.client.post("/graphql", json={"extensions": EXT})
    assert by_hash.json() == stored.json()
    as_get = await tenant.client.get("/graphql", params={"extensions": json.dumps(EXT)})
    assert as_get.status_code == 200
    assert as_get.json() == stored.json()


async def test_a_hash_that_does_not_match_is_refused(tenant):
    wrong = {"persistedQuery": {"version": 1, "sha256Hash": "f" * 64}}
    r = await tenant.client.post("/graphql", json={"query": QUERY, "extensions": wrong})
    assert r.status_code == 400
    assert r.json()["code"] == "INVALID_ARGUMENT"
    again = await tenant.client.post("/graphql", json={"extensions": wrong})
    assert again.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_unknown_versions_are_refused(tenant):
    bad = {"persistedQuery": {"version": 2, "sha256Hash": HASH}}
    r = await tenant.client.post("/graphql", json={"query": QUERY, "extensions": bad})
    assert r.status_code == 400
