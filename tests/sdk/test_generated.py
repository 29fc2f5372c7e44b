"""The SDK's generated modules are what the gateway's OpenAPI document makes them.

Regenerate with ``.venv/bin/python sdk/python/generate.py`` and commit the diff.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any, get_type_hints

import httpx
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
