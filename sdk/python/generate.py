"""Generate the SDK's models and resource methods from the gateway's OpenAPI document.

    .venv/bin/python sdk/python/generate.py      (from the repository root)

The document is built in process by the gateway's own app factory (as
``/api/v1/openapi.json`` serves it), so every declared resource, action and
sub-collection gets its models and its methods with no hand edits. Writes
``src/gateway_client/models.py`` and ``src/gateway_client/resources.py``;
tests/sdk/test_generated.py fails when the committed files differ from what this
produces. Needs the gateway's virtualenv (it imports the gateway) and ruff (it
formats the output).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "src" / "gateway_client"
COMMAND = ".venv/bin/python sdk/python/generate.py"
HEADER = (
    f'"""Generated from the OpenAPI document by ``{COMMAND}``: do not edit."""\n\n'
    "# ruff: noqa: E501  (descriptions are the document's, unwrapped)\n"
)

sys.path.insert(0, str(HERE))  # codegen/, beside this file

from codegen.models import Models, pascal, snake  # noqa: E402
from codegen.operations import HANDWRITTEN, Operation, input_models, operations  # noqa: E402

__all__ = ["HANDWRITTEN", "Models", "Operation", "operations", "snake"]


def openapi_document() -> dict[str, Any]:
    """The document ``GET /api/v1/openapi.json`` serves, built by ``create_app``."""
    sys.path.insert(0, str(HERE.parent.parent))
    from gateway.app import create_app
    from gateway.settings import Settings

    app = create_app(Settings(database_url="sqlite://:memory:", redis_url=None, public_url=None))
    for route in app.router.routes:
        if route.name.endswith("api_v1.openapi"):
            response = asyncio.run(route.handler(None))
            doc: dict[str, Any] = json.loads(response.body)
            return doc
    raise SystemExit("no /api/v1/openapi.json route: has rest/__init__.py changed?")


def render(doc: dict[str, Any]) -> dict[str, str]:
    """``{file name: text}`` of the generated modules, formatted."""
    models = Models(doc["components"]["schemas"], input_models(doc))
    ops = operations(doc, models)
    for name in sorted(models.schemas):
        models.emit(name)
    resources = sorted(
        {
            op.models.type_of({"$ref": f"#/components/schemas/{op.model}"})
            for op in ops
            if op.paginated and any(p["name"] == "filter" for p in op.params)
        }
    )
    models_text = (
        HEADER
        + "\nfrom datetime import datetime\nfrom enum import StrEnum\n"
        + "from typing import Any, Literal, TypeAlias\n\nfrom pydantic import Field\n\n"
        + "from gateway_client._base import ApiModel, InputModel\n"
        + "from gateway_client.filters import (\n    BoolField,\n    DateTimeField,\n"
        + "    EnumField,\n    IntField,\n    TextField,\n)\n\n"
        + "\n\n".join(models.emitted)
        + "\n\n"
        + "\n\n".join(models.filter_fields(name) for name in resources)
        + "\n\n__all__ = [\n"
        + "".join(f"    {n!r},\n" for n in sorted(models.done | {f"{r}Fields" for r in resources}))
        + "]\n"
    )
    return {
        "models.py": _format(models_text, "models.py"),
        "resources.py": _format(_resources(ops, sorted(models.done)), "resources.py"),
    }


def _resources(ops: list[Operation], model_names: list[str]) -> str:
    tags: dict[str, list[Operation]] = {}
    for op in ops:
        tags.setdefault(op.tag, []).append(op)
    out = [
        HEADER,
        "\nfrom collections.abc import Mapping, Sequence\nfrom datetime import datetime\n",
        "from typing import Any, Literal\n\n",
        "from gateway_client import _parse\n",
        "from gateway_client._base import ApiModel, Done, ItemList, Page\n",
        "from gateway_client._core import Call, Plan\n",
        "from gateway_client._resource import (\n    AsyncResource,\n    AsyncRunner,\n"
        "    SyncResource,\n    SyncRunner,\n    etag,\n    headers,\n    query,\n"
        "    to_json,\n)\n",
        "from gateway_client.filters import Filter\n",
        "from gateway_client.models import (\n"
        + "".join(f"    {n},\n" for n in model_names)
        + ")\n",
        "from gateway_client.paging import AsyncPager, Pager\n\n",
    ]
    for op in ops:
        out.append("\n" + op.plan_function())
    sync_attrs, async_attrs = [], []
    for tag, tag_ops in tags.items():
        cls = pascal(tag)
        names = [op.method_name() for op in tag_ops]
        if len(set(names)) != len(names):
            raise SystemExit(f"generate.py: two methods of {tag} have one name: {names}")
        sync_methods, async_methods = zip(*(op.methods() for op in tag_ops), strict=True)
        out.append(
            f'\n\nclass {cls}(SyncResource):\n    """/api/v1/{tag}"""\n\n' + "\n".join(sync_methods)
        )
        out.append(
            f'\n\nclass Async{cls}(AsyncResource):\n    """/api/v1/{tag}"""\n\n'
            + "\n".join(async_methods)
        )
        sync_attrs.append((snake(tag), cls))
        async_attrs.append((snake(tag), f"Async{cls}"))
    for api, runner, attrs in (
        ("SyncApi", "SyncRunner", sync_attrs),
        ("AsyncApi", "AsyncRunner", async_attrs),
    ):
        out.append(f'\n\nclass {api}:\n    """The resources, as attributes of the client."""\n\n')
        out.extend(f"    {attr}: {cls}\n" for attr, cls in attrs)
        out.append(f"\n    def _attach(self, runner: {runner}) -> None:\n")
        out.extend(f"        self.{attr} = {cls}(runner)\n" for attr, cls in attrs)
    return "".join(out)


def _format(text: str, name: str) -> str:
    """The text as ``ruff`` fixes (unused imports, order) and formats it."""
    root = HERE.parent.parent
    filename = str(PACKAGE / name)
    fixed = subprocess.run(  # noqa: S603 (our own interpreter, fixed arguments)
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--fix",
            "--quiet",
            "--stdin-filename",
            filename,
            "--select",
            "F401,I",
            "-",
        ],
        input=text,
        capture_output=True,
        text=True,
        cwd=root,
        check=False,
    )
    if fixed.returncode not in (0, 1):
        raise SystemExit(f"ruff check failed on {name}:\n{fixed.stderr}")
    formatted = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "ruff", "format", "--quiet", "--stdin-filename", filename, "-"],
        input=fixed.stdout,
        capture_output=True,
        text=True,
        cwd=root,
        check=False,
    )
    if formatted.returncode != 0:
        raise SystemExit(f"ruff format failed on {name}:\n{formatted.stderr}\n{text}")
    return formatted.stdout


def main() -> None:
    for name, text in render(openapi_document()).items():
        (PACKAGE / name).write_text(text)
        print(f"wrote {PACKAGE / name}")


if __name__ == "__main__":
    main()
