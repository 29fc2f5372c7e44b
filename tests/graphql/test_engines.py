"""The engine is the one ``GRAPHQL_ENGINE`` names, and both answer the edge cases alike.

The whole GraphQL suite runs on each engine (``GATEWAY_TEST_GRAPHQL_ENGINE``;
ops/scripts/test runs it both ways); these are the cases where the standard engine
has to answer for Strawberry, which would raise instead.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.settings import SettingsError, load_settings
from resolvers.engine import ENGINES
from resolvers.engine.fast import FastExecution
from resolvers.engine.standard import StandardExecution
from tests.conftest import GRAPHQL_ENGINE

TWO = "query A { orders(first: 1) { totalCount } } query B { customers(first: 1) { totalCount } }"


def test_the_app_runs_the_engine_its_settings_name(server: Any) -> None:
    runner = server.app.ctx.graphql
    assert runner is not None
    assert runner.engine == GRAPHQL_ENGINE
    expected = {"fast": FastExecution, "standard": StandardExecution}[GRAPHQL_ENGINE]
    assert type(runner.execution) is expected


def test_an_unknown_engine_is_refused_at_startup() -> None:
    assert ENGINES == ("fast", "standard")
    with pytest.raises(SettingsError, match="GRAPHQL_ENGINE"):
        load_settings(graphql_engine="turbo")


@pytest.mark.parametrize(
    ("query", "operation_name", "message"),
    [
        (TWO, "C", "Unknown operation named 'C'."),
        (TWO, None, "Must provide operation name if query contains multiple operations."),
    ],
)
async def test_an_operation_that_is_not_there_is_a_request_error(
    tenant: Any, query: str, operation_name: str | None, message: str
) -> None:
    for accept, status in (("application/json", 200), ("application/graphql-response+json", 400)):
        r = await tenant.client.post(
            "/graphql",
            json={"query": query, "operationName": operation_name},
            headers={"Accept": accept},
        )
        assert r.status_code == status, r.text
        assert r.json() == {
            "errors": [{"message": message, "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]
        }
