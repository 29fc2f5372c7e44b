"""JSON Schema to pydantic model source, for generate.py: names, types, fields, filters."""

from __future__ import annotations

import json
import keyword
import re
import textwrap
from typing import Any

Schema = dict[str, Any]
# Names a model field cannot have (pydantic's and ApiModel's own attributes).
RESERVED = {"meta", "copy", "dict", "json", "schema", "construct", "validate", "fields"}


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
            self.emitted.append(f"class {name}(StrEnum):\n{doc(schema, 4)}{members}")
            return
        if schema.get("type") != "object":
            self.emitted.append(f"{name}: TypeAlias = {self.type_of(schema)}\n")
            return
        base = "InputModel" if name in self.inputs else "ApiModel"
        lines = [f"class {name}({base}):\n", doc(schema, 4)]
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


def doc(schema: Schema, indent: int) -> str:
    text = schema.get("description")
    if not text:
        return ""
    pad = " " * indent
    return f'{pad}"""{escape(text)}"""\n\n'


def wrap(text: str, width: int = 88) -> str:
    """Docstring lines that fit the line length (a method's body is indented 8)."""
    lines = []
    for paragraph in text.split("\n\n        "):
        lines.append(textwrap.fill(paragraph, width, subsequent_indent=" " * 8))
    return "\n\n        ".join(lines)


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
