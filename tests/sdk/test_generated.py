"""The SDK's generated modules are what the gateway's OpenAPI document makes them.

Regenerate with ``.venv/bin/python sdk/python/generate.py`` and commit the diff.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, get_type_hints

import httpx
import pydantic
import pytest
from gateway_client import AsyncClient, Client
from gateway_client.resources import AsyncApi, SyncApi

SDK = Path(__file__).resolve().parents[2] / "sdk" / "python"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sdk_generate", SDK / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_generated_modules_match_the_openapi_document(anon: httpx.AsyncClient) -> None:
    """The document the running gateway serves (built by ``create_app``) regenerates
    the committed files exactly."""
    doc: dict[str, Any] = (await anon.get("/api/v1/openapi.json")).json()
    gen = generator()
    for name, text in gen.render(doc).items():
        committed = (gen.PACKAGE / name).read_text()
        assert committed == text, (
            f"sdk/python/src/gateway_client/{name} is out of date with the OpenAPI document: "
            f"run `{gen.COMMAND}` and commit the result"
        )


async def test_every_documented_operation_has_a_method(anon: httpx.AsyncClient) -> None:
    doc: dict[str, Any] = (await anon.get("/api/v1/openapi.json")).json()
    gen = generator()
    operations = gen.operations(doc, gen.Models(doc["components"]["schemas"], set()))
    documented = {
        op["operationId"]
        for ops in doc["paths"].values()
        for op in ops.values()
        if "servers" not in op and op.get("security") != []
    }
    assert {op.op_id for op in operations} | gen.HANDWRITTEN == documented
    for op in operations:
        attribute = gen.snake(op.tag)
        for api in (SyncApi, AsyncApi):
            resource = get_type_hints(api)[attribute]
            assert hasattr(resource, op.method_name()), (op.op_id, resource)
    assert callable(Client.stream_events)
    assert callable(AsyncClient.stream_events)


def _problem(code: str) -> dict[str, Any]:
    return {
        "description": code,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def _envelope(data: dict[str, Any], paginated: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"type": "object", "properties": {"request_id": {"type": "string"}}}
    if paginated:
        meta["properties"]["pagination"] = {"type": "object"}
    return {
        "description": "Success",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"data": data, "metadata": meta},
                    "required": ["data", "metadata"],
                }
            }
        },
    }


ENDPOINT = {"$ref": "#/components/schemas/FutureThing"}
ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
SECURITY = [{"oauth2": ["things:admin"]}]
# A resource added after this SDK was written (``future-things``), in the shapes the gateway's
# declarations produce: a create returning a one-time secret, an action with an inline
# body, a paginated sub-collection with an array parameter, a second path parameter.
NEW_PATHS: dict[str, Any] = {
    "/future-things": {
        "post": {
            "operationId": "create_future_thing",
            "summary": "Create a future thing",
            "tags": ["future-things"],
            "security": SECURITY,
            "parameters": [
                {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}
            ],
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/FutureThingInput"}
                    }
                }
            },
            "responses": {
                "201": _envelope({"$ref": "#/components/schemas/NewFutureThing"}),
                "422": _problem("x"),
            },
        },
        "get": {
            "operationId": "list_future_things",
            "summary": "List future things",
            "tags": ["future-things"],
            "security": SECURITY,
            "parameters": [
                {"name": "filter", "in": "query", "schema": {"type": "string"}},
                {"name": "page_token", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {"200": _envelope({"type": "array", "items": ENDPOINT}, paginated=True)},
        },
    },
    "/future-things/{id}:rotateSecret": {
        "post": {
            "operationId": "rotateSecret_future_thing",
            "summary": "Rotate the secret",
            "tags": ["future-things"],
            "security": SECURITY,
            "parameters": [ID, {"name": "If-Match", "in": "header", "schema": {"type": "string"}}],
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"overlap_seconds": {"type": "integer", "minimum": 0}},
                        }
                    }
                }
            },
            "responses": {"200": _envelope({"$ref": "#/components/schemas/NewFutureThing"})},
        }
    },
    "/future-things/{id}/deliveries": {
        "get": {
            "operationId": "list_future_thing_deliveries",
            "summary": "List deliveries",
            "tags": ["future-things"],
            "security": SECURITY,
            "parameters": [
                ID,
                {
                    "name": "status",
                    "in": "query",
                    "schema": {"type": "array", "items": {"type": "string"}},
                },
            ],
            "responses": {
                "200": _envelope(
                    {"type": "array", "items": {"$ref": "#/components/schemas/FutureDelivery"}},
                    paginated=True,
                )
            },
        }
    },
    "/future-things/{id}/dead-letters/{delivery_id}:replay": {
        "post": {
            "operationId": "replay_future_thing_dead_letter",
            "summary": "Replay a dead letter",
            "tags": ["future-things"],
            "security": SECURITY,
            "parameters": [
                ID,
                {
                    "name": "delivery_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer"},
                },
            ],
            "responses": {"202": {"description": "Queued"}},
        }
    },
}
NEW_SCHEMAS: dict[str, Any] = {
    "FutureThing": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "url": {"type": "string"},
            "topics": {"type": "array", "items": {"type": "string"}},
            "filter": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "enabled": {"type": "boolean"},
            "meta": {"type": "object", "additionalProperties": True},
            "version": {"type": "integer"},
        },
        "required": ["id", "url", "topics", "enabled", "version"],
    },
    "NewFutureThing": {
        "allOf": [ENDPOINT],
        "type": "object",
        "properties": {"secret": {"type": "string"}},
        "required": ["secret"],
    },
    "FutureThingInput": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "url": {"type": "string", "maxLength": 2000},
            "topics": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "enabled": {"type": "boolean", "default": True},
        },
        "required": ["url", "topics"],
    },
    "FutureDelivery": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "status": {"type": "string", "enum": ["ok", "failed", "dead"]},
            "latency_ms": {"anyOf": [{"type": "number"}, {"type": "null"}]},
            "attempted_at": {"type": "string", "format": "date-time"},
        },
        "required": ["id", "status", "attempted_at"],
    },
}


async def test_a_new_resource_is_generated_with_no_hand_edits(
    anon: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The generator on the real document plus a resource of tomorrow's shapes: the
    modules it writes import, and each new operation has a method and a plan."""
    doc: dict[str, Any] = (await anon.get("/api/v1/openapi.json")).json()
    doc["paths"].update(NEW_PATHS)
    doc["components"]["schemas"].update(NEW_SCHEMAS)
    texts = generator().render(doc)
    models = ModuleType("gateway_client.models")
    exec(compile(texts["models.py"], "models.py", "exec", dont_inherit=True), models.__dict__)  # noqa: S102
    monkeypatch.setitem(sys.modules, "gateway_client.models", models)
    resources: dict[str, Any] = {}
    exec(compile(texts["resources.py"], "resources.py", "exec", dont_inherit=True), resources)  # noqa: S102
    sync, asyn = resources["FutureThings"], resources["AsyncFutureThings"]
    for name in ("create", "list", "rotate_secret", "list_deliveries", "replay_dead_letter"):
        assert callable(getattr(sync, name)), name
        assert callable(getattr(asyn, name)), name
    assert resources["SyncApi"].__annotations__["future_things"] is sync
    endpoint = models.FutureThing.model_validate(
        {
            "id": 1,
            "url": "https://x.test",
            "topics": ["orders"],
            "enabled": True,
            "version": 1,
            "meta": {"a": 1},
        }
    )
    assert endpoint.meta_ == {"a": 1}  # a field named like ApiModel.meta is renamed
    assert models.FutureThingFields.url.name == "url"
    call = resources["_rotate_secret_future_thing"](7, {"overlap_seconds": 60}, if_match='"v3"')
    assert (call.plan.method, call.plan.path) == ("POST", "/future-things/7:rotateSecret")
    assert call.plan.json == {"overlap_seconds": 60}
    assert call.plan.headers == {"If-Match": '"v3"'}
    with pytest.raises(pydantic.ValidationError):
        resources["_rotate_secret_future_thing"](7, {"overlap_seconds": -1})
    listed = resources["_list_future_thing_deliveries"](7, status=["failed", "dead"])
    assert listed.plan.params == {"status": ["failed", "dead"]}
    replay = resources["_replay_future_thing_dead_letter"](7, 9)
    assert replay.plan.path == "/future-things/7/dead-letters/9:replay"
    assert replay.plan.retry_safe is False
    secret = models.NewFutureThing.model_validate(
        {"id": 1, "url": "u", "topics": [], "enabled": True, "version": 1, "secret": "whsec_x"}
    )
    assert secret.secret == "whsec_x"
