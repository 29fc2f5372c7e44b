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
import keyword
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "src" / "gateway_client"
COMMAND = ".venv/bin/python sdk/python/generate.py"
HANDWRITTEN = {"stream_events"}  # Client.stream_events (gateway_client.realtime)
# Names a model field cannot have (pydantic's and ApiModel's own attributes).
RESERVED = {"meta", "copy", "dict", "json", "schema", "construct", "validate", "fields"}
HEADER = (
    f'"""Generated from the OpenAPI document by ``{COMMAND}``: do not edit."""\n\n'
    "# ruff: noqa: E501  (descriptions are the document's, unwrapped)\n"
)

Schema = dict[str, Any]


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


def snake(name: str) -> str:
    name = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    name = re.sub(r"\W+", "_", name).strip("_").lower()
    if not name or name[0].isdigit():
        name = f"n_{name}"
    return f"{name}_" if keyword.iskeyword(name) else name


def pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[\W_]+", name) if part)


def ref_name(schema: Schema) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[1] if isinstance(ref, str) else None


class Models:
    """Pydantic models for ``components.schemas`` and inline response objects."""

    def __init__(self, schemas: dict[str, Schema], inputs: set[str]) -> None:
        self.schemas = dict(schemas)
        self.inputs = inputs
        self.emitted: list[str] = []
        self.done: set[str] = set()

    def type_of(self, schema: Schema) -> str:
        name = ref_name(schema)
        if name is not None:
            self.emit(name)
            return name
        for key in ("anyOf", "oneOf"):
            if key in schema:
                parts = [self.type_of(s) for s in schema[key]]
                return " | ".join(dict.fromkeys(p for p in parts if p != "None")) + (
                    " | None" if "None" in parts else ""
                )
        if "allOf" in schema and len(schema["allOf"]) == 1:
            return self.type_of(schema["allOf"][0])
        if "enum" in schema:
            return "Literal[" + ", ".join(repr(v) for v in schema["enum"]) + "]"
        if "const" in schema:
            return f"Literal[{schema['const']!r}]"
        kind = schema.get("type")
        if isinstance(kind, list):
            return " | ".join(self.type_of({**schema, "type": k}) for k in kind)
        if kind == "array":
            return f"list[{self.type_of(schema.get('items', {}))}]"
        if kind == "object":
            extra = schema.get("additionalProperties")
            value = self.type_of(extra) if isinstance(extra, dict) and extra else "Any"
            return f"dict[str, {value}]"
        if kind == "string":
            return "datetime" if schema.get("format") == "date-time" else "str"
        simple = {"integer": "int", "number": "float", "boolean": "bool", "null": "None"}
        if kind in simple:
            return simple[kind]
        if not schema:
            return "Any"
        raise SystemExit(f"generate.py: no Python type for the schema {json.dumps(schema)}")

    def emit(self, name: str) -> None:
        if name in self.done:
            return
        self.done.add(name)
        schema = self.schemas[name]
        if "enum" in schema and schema.get("type") == "string":
            members = "".join(f"    {snake(str(v)).upper()} = {v!r}\n" for v in schema["enum"])
            self.emitted.append(f"class {name}(StrEnum):\n{_doc(schema, 4)}{members}")
            return
        if schema.get("type") != "object":
            self.emitted.append(f"{name}: TypeAlias = {self.type_of(schema)}\n")
            return
        base = "InputModel" if name in self.inputs else "ApiModel"
        lines = [f"class {name}({base}):\n", _doc(schema, 4)]
        required = set(schema.get("required", []))
        for prop, sub in schema.get("properties", {}).items():
            lines.append(self.field(prop, sub, prop in required, base == "InputModel"))
        if len(lines) == 2 and not lines[1]:
            lines.append("    pass\n")
        self.emitted.append("".join(lines))

    def field(self, prop: str, schema: Schema, required: bool, constrained: bool) -> str:
        python = snake(prop)
        if python in RESERVED or python.startswith("model_"):
            python += "_"
        kind = self.type_of(schema)
        args: list[str] = []
        if "default" in schema:
            default = schema["default"]
            if isinstance(default, list | dict):
                args.append(f"default_factory={type(default).__name__}")
            else:
                args.append(f"default={default!r}")
        elif not required:
            if "None" not in kind.split(" | "):
                kind += " | None"
            args.append("default=None")
        if python != prop:
            args.append(f"alias={prop!r}")
        if constrained:
            for key, arg in (
                ("minLength", "min_length"),
                ("maxLength", "max_length"),
                ("minItems", "min_length"),
                ("maxItems", "max_length"),
                ("minimum", "ge"),
                ("maximum", "le"),
                ("exclusiveMinimum", "gt"),
                ("exclusiveMaximum", "lt"),
                ("pattern", "pattern"),
            ):
                if key in schema:
                    args.append(f"{arg}={schema[key]!r}")
        if schema.get("description"):
            args.append(f"description={schema['description']!r}")
        if not args:
            return f"    {python}: {kind}\n"
        return f"    {python}: {kind} = Field({', '.join(args)})\n"

    def filter_fields(self, name: str) -> str:
        """``<Model>Fields``: a typed filter field per scalar property of a resource."""
        lines = [
            f"class {name}Fields:\n",
            f'    """Typed filter fields of {name} (see gateway_client.filters)."""\n\n',
        ]
        for prop, schema in self.schemas[name].get("properties", {}).items():
            kind = self.filter_kind(schema)
            if kind is not None:
                lines.append(f"    {snake(prop)} = {kind}({prop!r})\n")
        return "".join(lines)

    def filter_kind(self, schema: Schema) -> str | None:
        options = schema.get("anyOf", [schema])
        options = [s for s in options if s.get("type") != "null"]
        if len(options) != 1:
            return None
        (schema,) = options
        name = ref_name(schema)
        if name is not None:
            target = self.schemas[name]
            return f"EnumField[{name}]" if "enum" in target else None
        kind = schema.get("type")
        if kind == "string":
            return "DateTimeField" if schema.get("format") == "date-time" else "TextField"
        return {"integer": "IntField", "boolean": "BoolField"}.get(str(kind))


def _doc(schema: Schema, indent: int) -> str:
    text = schema.get("description")
    if not text:
        return ""
    pad = " " * indent
    return f'{pad}"""{_escape(text)}"""\n\n'


def _wrap(text: str, width: int = 88) -> str:
    """Docstring lines that fit the line length (a method's body is indented 8)."""
    lines = []
    for paragraph in text.split("\n\n        "):
        lines.append(textwrap.fill(paragraph, width, subsequent_indent=" " * 8))
    return "\n\n        ".join(lines)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


class Operation:
    """One documented operation, turned into a plan function and two methods."""

    def __init__(self, path: str, method: str, op: Schema, models: Models) -> None:
        self.path, self.method, self.op, self.models = path, method.upper(), op, models
        self.op_id: str = op["operationId"]
        self.tag: str = op["tags"][0]
        self.params = op.get("parameters", [])
        self.response_kind, self.model = self._response()
        names = {p["name"] for p in self.params}
        self.paginated = self.response_kind == "page"
        self.retry_safe = self.method in {"GET", "HEAD", "PUT", "DELETE"} or (
            "Idempotency-Key" in names
        )
        self.body_model = self._body()

    def _response(self) -> tuple[str, str]:
        responses = self.op["responses"]
        status = min(code for code in responses if code.startswith("2"))
        content = responses[status].get("content")
        if not content:
            return "done", "Done"
        if "application/json" not in content:
            raise SystemExit(f"generate.py: {self.op_id} answers {list(content)}; no support")
        schema = content["application/json"]["schema"]
        props = schema.get("properties", {})
        if "data" in props and "metadata" in props:
            data = props["data"]
            if data.get("type") == "array":
                item = self.models.type_of(data["items"])
                paginated = "pagination" in props["metadata"].get("properties", {})
                return ("page" if paginated else "many"), item
            return "one", self.models.type_of(data)
        name = ref_name(schema)
        if name is None:
            name = f"{pascal(self.op_id)}Result"
            self.models.schemas[name] = schema
        self.models.emit(name)
        return "bare", name

    def _body(self) -> str | None:
        content = self.op.get("requestBody", {}).get("content", {})
        if not content:
            return None
        if "application/json" not in content:
            raise SystemExit(f"generate.py: {self.op_id} takes {list(content)}; no support")
        schema = content["application/json"]["schema"]
        name = ref_name(schema)
        if name is None:  # an inline body: a model of its own
            name = f"{pascal(self.op_id)}Body"
            self.models.schemas[name] = schema
            self.models.inputs.add(name)
        self.models.emit(name)
        return name

    def method_name(self) -> str:
        """The operation id less the resource's name: ``list_orders`` is
        ``orders.list``, ``rotateSecret_webhook_endpoint`` ``rotate_secret``."""
        plural = snake(self.tag)
        for noun in (plural, plural.removesuffix("s")):
            for pattern in (f"_{noun}_", f"_{noun}$", f"^{noun}_"):
                shorter = re.sub(pattern, "_", self.op_id, count=1).strip("_")
                if shorter != self.op_id and shorter:
                    return snake(shorter)
        return snake(self.op_id)

    @property
    def plan_name(self) -> str:
        return f"_{snake(self.op_id)}"

    def arguments(self) -> tuple[list[str], list[str], list[str], list[str], list[str]]:
        """(signature parts, call arguments, path args, query args, header args)."""
        positional: list[str] = []
        keyword_only: list[str] = []
        passing: list[str] = []
        query: list[str] = []
        header: list[str] = []
        for p in self.params:
            name, where = p["name"], p["in"]
            python = snake(name)
            if where == "path":
                positional.append(f"{python}: {self.param_type(p['schema'])}")
                passing.append(python)
            elif where == "query":
                if self.paginated and name in {"page_token", "page", "per_page"}:
                    continue
                kind = self.param_type(p["schema"])
                if name == "filter":
                    kind = "str | Filter"
                if p.get("required"):
                    keyword_only.insert(0, f"{python}: {kind}")
                else:
                    keyword_only.append(f"{python}: {kind} | None = None")
                passing.append(f"{python}={python}")
                query.append(f"{name!r}: {python}" if python != name else f"{name}={python}")
            elif where == "header":
                if name == "If-None-Match":
                    continue  # a 304 has no body to type
                kind = "str | ApiModel" if name == "If-Match" else "str"
                keyword_only.append(f"{python}: {kind} | None = None")
                passing.append(f"{python}={python}")
                value = f"etag({python})" if name == "If-Match" else python
                header.append(f"{name!r}: {value}")
        if self.body_model is not None:
            positional.append(f"body: {self.body_model} | Mapping[str, Any]")
            passing.insert(len([a for a in passing if "=" not in a]), "body")
        if self.paginated:
            query.append("page_token=page_token")
        signature = positional + (["*", *keyword_only] if keyword_only else [])
        return signature, passing, [], query, header

    def param_type(self, schema: Schema) -> str:
        """A parameter's type: a list is any ``Sequence`` (and the name ``list`` in a
        resource class is its ``list`` method, so annotations there never say it)."""
        kind = self.models.type_of(schema)
        return re.sub(r"^list\[", "Sequence[", kind)

    def masked(self) -> str:
        names = {p["name"] for p in self.params}
        return "fields is not None" if "fields" in names else "False"

    def returns(self) -> str:
        return {
            "done": "Done",
            "one": self.model,
            "bare": self.model,
            "many": f"ItemList[{self.model}]",
            "page": f"Page[{self.model}]",
        }[self.response_kind]

    def plan_function(self) -> str:
        signature, _, _, query, header = self.arguments()
        if self.paginated:
            signature = [
                *signature,
                *([] if "*" in signature else ["*"]),
                "page_token: str | None = None",
            ]
        path = re.sub(r"\{(\w+)\}", lambda m: "{" + snake(m[1]) + "}", self.path)
        parse = {
            "done": "_parse.done",
            "one": f"_parse.one({self.model}, {self.masked()})",
            "many": f"_parse.many({self.model}, {self.masked()})",
            "page": f"_parse.page({self.model}, {self.masked()})",
            "bare": f"_parse.bare({self.model})",
        }[self.response_kind]
        parts = [repr(self.method), f'f"{path}"' if "{" in path else repr(path)]
        if query:
            parts.append(
                f"params=query({', '.join(q if '=' in q else '**{' + q + '}' for q in query)})"
            )
        if header:
            parts.append(f"headers=headers(**{{{', '.join(header)}}})")
        if self.body_model is not None:
            parts.append(f"json=to_json({self.body_model}, body)")
        if self.retry_safe:
            parts.append("retry_safe=True")
        return (
            f"def {self.plan_name}({', '.join(signature)}) -> Call[{self.returns()}]:\n"
            f"    return Call(Plan({', '.join(parts)}), {parse})\n"
        )

    def methods(self) -> tuple[str, str]:
        signature, passing, *_ = self.arguments()
        name = self.method_name()
        doc = self.op.get("summary", "")
        if self.op.get("description"):
            doc += "\n\n        " + self.op["description"]
        doc_line = f'        """{_escape(_wrap(doc))}"""\n'
        args = ", ".join(["self", *signature])
        if self.paginated:
            call = f"{self.plan_name}({', '.join([*passing, 'page_token=token'])})"
            sync = (
                f"    def {name}({args}) -> Pager[{self.model}]:\n{doc_line}"
                f"        return self._pages(lambda token: {call})\n"
            )
            asyn = (
                f"    def {name}({args}) -> AsyncPager[{self.model}]:\n{doc_line}"
                f"        return self._pages(lambda token: {call})\n"
            )
            return sync, asyn
        call = f"{self.plan_name}({', '.join(passing)})"
        sync = (
            f"    def {name}({args}) -> {self.returns()}:\n{doc_line}"
            f"        return self._client._run({call})\n"
        )
        asyn = (
            f"    async def {name}({args}) -> {self.returns()}:\n{doc_line}"
            f"        return await self._client._run({call})\n"
        )
        return sync, asyn


def operations(doc: dict[str, Any], models: Models) -> list[Operation]:
    found = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if "servers" in op or op.get("security") == []:
                continue  # outside the API (health, the token endpoint) or the document
            if op["operationId"] in HANDWRITTEN:
                continue
            found.append(Operation(path, method, op, models))
    return found


def input_models(doc: dict[str, Any]) -> set[str]:
    names = set()
    for ops in doc["paths"].values():
        for op in ops.values():
            for media in op.get("requestBody", {}).get("content", {}).values():
                name = ref_name(media.get("schema", {}))
                if name:
                    names.add(name)
    schemas = doc["components"]["schemas"]
    closure = set(names)
    while True:  # models only bodies refer to (OrderItemInput) are inputs too
        more = {
            n
            for name in closure
            for n in re.findall(r"#/components/schemas/(\w+)", json.dumps(schemas[name]))
        } - closure
        if not more:
            return closure
        closure |= more


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
