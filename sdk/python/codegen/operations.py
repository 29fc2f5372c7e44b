"""OpenAPI operations to plan functions and sync/async methods, for generate.py."""

from __future__ import annotations

import json
import re
from typing import Any

from codegen.models import Models, Schema, escape, pascal, ref_name, snake, wrap

HANDWRITTEN = {"stream_events"}  # Client.stream_events (gateway_client.realtime)


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

    def arguments(self) -> tuple[list[str], list[str], list[str], list[str]]:
        """The method's parameters, the arguments it passes to the plan function, and
        the plan's query and header entries (source text, each)."""
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
        return signature, passing, query, header

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
        signature, _, query, header = self.arguments()
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
        signature, passing, _, _ = self.arguments()
        name = self.method_name()
        doc = self.op.get("summary", "")
        if self.op.get("description"):
            doc += "\n\n        " + self.op["description"]
        doc_line = f'        """{escape(wrap(doc))}"""\n'
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
