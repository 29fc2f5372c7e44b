"""XML on the REST wire: one mapping between JSON values and XML elements.

Every REST representation is a JSON value; its XML form is the same value under
these rules (README "Content types" has examples). The element names are the
JSON keys, so the XML reads like the JSON; a ``type`` attribute says what the
text alone cannot, so a document converts back without a schema:

====================  ==========================================================
JSON                  XML
====================  ==========================================================
string                text, no ``type`` (``<name>Widget</name>``)
integer               ``<stock type="integer">12</stock>``
other number          ``<rate type="number">0.5</rate>``
true / false          ``<active type="boolean">true</active>``
null                  ``<description xsi:nil="true"/>`` (input: ``nil="true"`` too)
object                child elements, one per key, in order (an empty object:
                      ``type="object"``); a key that is not an XML name is an
                      ``<e key="...">`` element
array                 ``type="array"``, one ``<i>`` child per item (RFC 9457's
                      convention for problem details), ``<scopes type="array"/>``
                      when empty
====================  ==========================================================

Responses: the envelope's root is ``<response>``; a problem document is RFC 9457's
``<problem xmlns="urn:ietf:rfc:7807">``. Both declare the ``xsi`` namespace.

Request bodies: the root element may have any name (``<product>``, ``<request>``);
``type`` and ``xsi:nil`` are read as above. An element **without** ``type`` takes
the type the input model expects at that place, when its text is one (``<stock>12
</stock>`` for an integer field, ``<items>`` holding ``<i>`` children for a list),
so hand-written XML needs no attributes; what still does not fit is the model's
usual 422. Whitespace between elements is ignored; text beside child elements is
an error.

Parsing is ``defusedxml`` over expat with DTDs, entities and external references
forbidden (so no XXE and no entity expansion: a DOCTYPE is refused before anything
in it is read), bounded by the body size limit and by ``MAX_DEPTH`` levels of
nesting and ``MAX_ELEMENTS`` elements, checked as each element opens. Every failure
is a 400 ``MALFORMED_XML`` whose ``errors[].type`` says why (``xml_syntax``,
``xml_dtd_forbidden``, ``xml_entity_forbidden``, ``xml_too_deep``, ``xml_too_large``,
``xml_structure``, ``xml_value``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser, ParseError
from pydantic import BaseModel

from db.errors import FieldError
from gateway.errors import MalformedXml

XSI = "http://www.w3.org/2001/XMLSchema-instance"
PROBLEM_NS = "urn:ietf:rfc:7807"
MAX_DEPTH = 32
# The largest input (an order of 100 lines) has about 350 elements; a 1 MiB body of
# empty elements would have some 250,000, each a Python object: refuse past this.
MAX_ELEMENTS = 10_000

_NIL = f"{{{XSI}}}nil"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
# XML 1.0 cannot carry these (C0 controls other than tab and line breaks, lone
# surrogates, U+FFFE/U+FFFF): they are written as U+FFFD. Input text never has them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})
_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)\Z")
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?\Z")


# --- writing ---------------------------------------------------------------------


def _text(value: str) -> str:
    if not (value.isascii() and value.isprintable()):
        value = _NOT_XML.sub("\ufffd", value)
    return value.translate(_ESCAPES)


def _element(name: str, value: Any, out: list[str]) -> None:
    if _NAME.match(name) and not name.lower().startswith("xml"):
        open_tag, close_tag = f"<{name}", f"</{name}>"
    else:
        open_tag, close_tag = f'<e key="{_text(name)}"', "</e>"
    if isinstance(value, str):
        out.append(f"{open_tag}>{_text(value)}{close_tag}" if value else f"{open_tag}/>")
    elif value is None:
        out.append(f'{open_tag} xsi:nil="true"/>')
    elif value is True or value is False:
        out.append(f'{open_tag} type="boolean">{"true" if value else "false"}{close_tag}')
    elif isinstance(value, int):
        out.append(f'{open_tag} type="integer">{value}{close_tag}')
    elif isinstance(value, float):
        out.append(f'{open_tag} type="number">{value!r}{close_tag}')
    elif isinstance(value, dict):
        if not value:
            out.append(f'{open_tag} type="object"/>')
            return
        out.append(f"{open_tag}>")
        for key, item in value.items():
            _element(str(key), item, out)
        out.append(close_tag)
    elif isinstance(value, list | tuple):
        if not value:
            out.append(f'{open_tag} type="array"/>')
            return
        out.append(f'{open_tag} type="array">')
        for item in value:
            _element("i", item, out)
        out.append(close_tag)
    else:  # the wire has nothing else; say so rather than guess
        raise TypeError(f"no XML form for {type(value).__name__}")


def dumps(value: Any, root: str = "response", namespace: str | None = None) -> bytes:
    """``value`` (a decoded JSON document) as an XML document under ``root``."""
    out: list[str] = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    _element(root, value, out)
    declare = f' xmlns:xsi="{XSI}"'
    if namespace:
        declare = f' xmlns="{namespace}"{declare}'
    first = out[1]
    cut = len(root) + 1  # after "<root"
    out[1] = first[:cut] + declare + first[cut:]
    return "".join(out).encode()


def problem(body: dict[str, Any]) -> bytes:
    """An RFC 9457 problem document as ``application/problem+xml``."""
    return dumps(body, root="problem", namespace=PROBLEM_NS)


# --- reading ---------------------------------------------------------------------


class _Node:
    __slots__ = ("attrs", "children", "name", "text")

    def __init__(self, name: str, attrs: dict[str, str]) -> None:
        self.name = name
        self.attrs = attrs
        self.children: list[_Node] = []
        self.text: list[str] = []


class _Builder:
    """An ElementTree parser target that builds ``_Node``s and refuses deep nesting
    as each element opens (before any deeper input is read)."""

    def __init__(self) -> None:
        self.stack: list[_Node] = []
        self.root: _Node | None = None
        self.count = 0

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise _TooDeep
        self.count += 1
        if self.count > MAX_ELEMENTS:
            raise _TooMany
        node = _Node(tag.rpartition("}")[2], attrs)
        if self.stack:
            self.stack[-1].children.append(node)
        else:
            self.root = node
        self.stack.append(node)

    def end(self, tag: str) -> None:
        self.stack.pop()

    def data(self, text: str) -> None:
        if self.stack:
            self.stack[-1].text.append(text)

    def close(self) -> _Node | None:
        return self.root


class _TooDeep(Exception):
    pass


class _TooMany(Exception):
    pass


def _refuse(kind: str, msg: str, loc: tuple[str | int, ...] = ("body",)) -> MalformedXml:
    return MalformedXml(f"the XML body was refused: {msg}", errors=[FieldError(loc, msg, kind)])


def _parse(body: bytes) -> _Node:
    builder = _Builder()
    parser = DefusedXMLParser(
        target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(body)
        root = parser.close()
    except DTDForbidden:
        raise _refuse("xml_dtd_forbidden", "a DOCTYPE (DTD) is not allowed") from None
    except (EntitiesForbidden, ExternalReferenceForbidden):
        raise _refuse("xml_entity_forbidden", "entity declarations are not allowed") from None
    except _TooDeep:
        raise _refuse("xml_too_deep", f"elements nest deeper than {MAX_DEPTH} levels") from None
    except _TooMany:
        raise _refuse("xml_too_large", f"more than {MAX_ELEMENTS} elements") from None
    except ParseError as exc:
        raise _refuse("xml_syntax", f"not well-formed XML ({exc})") from None
    if not isinstance(root, _Node):
        raise _refuse("xml_syntax", "no root element")
    return root


def _kind(schema: dict[str, Any] | None, defs: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema at a place with ``$ref`` and ``X | None`` resolved."""
    seen = 0
    while schema is not None and seen < 8:
        seen += 1
        if "$ref" in schema:
            schema = defs.get(schema["$ref"].rpartition("/")[2])
            continue
        options = [s for s in schema.get("anyOf", ()) if s.get("type") != "null"]
        if len(options) == 1:
            schema = options[0]
            continue
        return schema
    return schema


def _scalar(text: str, expected: str | None) -> Any:
    """Untyped text, as the type the model expects when the text is one."""
    stripped = text.strip()
    if expected == "integer" and _INTEGER.match(stripped):
        return int(stripped)
    if expected == "number" and _NUMBER.match(stripped):
        return float(stripped) if any(c in stripped for c in ".eE") else int(stripped)
    if expected == "boolean" and stripped in ("true", "false"):
        return stripped == "true"
    return text


def _value(
    node: _Node, schema: dict[str, Any] | None, defs: dict[str, Any], loc: tuple[str | int, ...]
) -> Any:
    schema = _kind(schema, defs)
    if (node.attrs.get(_NIL) or node.attrs.get("nil")) in ("true", "1"):
        if node.children or "".join(node.text).strip():
            raise _refuse("xml_structure", "a nil element must be empty", loc)
        return None
    declared = node.attrs.get("type")
    expected = schema.get("type") if schema else None
    if node.children:
        if "".join(node.text).strip():
            raise _refuse("xml_structure", "text beside child elements", loc)
        if declared not in (None, "array", "object"):
            raise _refuse("xml_value", f"type={declared!r} cannot have child elements", loc)
        as_list = declared == "array" or (
            declared is None
            and (
                expected == "array"
                or (expected is None and all(c.name == "i" for c in node.children))
            )
        )
        if as_list:
            items = schema.get("items") if schema else None
            out_list = []
            for index, child in enumerate(node.children):
                if child.name != "i":
                    raise _refuse("xml_structure", f"list items are <i>, not <{child.name}>", loc)
                out_list.append(_value(child, items, defs, (*loc, index)))
            return out_list
        props = schema.get("properties", {}) if schema else {}
        out: dict[str, Any] = {}
        for child in node.children:
            key = child.attrs.get("key", child.name) if child.name == "e" else child.name
            if key in out:
                raise _refuse("xml_structure", f"<{key}> appears twice", (*loc, key))
            out[key] = _value(child, props.get(key), defs, (*loc, key))
        return out
    text = "".join(node.text)
    if declared is None:
        if expected == "array" and not text.strip():
            return []
        if expected == "object" and not text.strip():
            return {}
        return _scalar(text, expected)
    stripped = text.strip()
    if declared == "string":
        return text
    if declared == "integer" and _INTEGER.match(stripped):
        return int(stripped)
    if declared == "number" and _NUMBER.match(stripped):
        return _scalar(stripped, "number")
    if declared == "boolean" and stripped in ("true", "false"):
        return stripped == "true"
    if declared == "array" and not stripped:
        return []
    if declared == "object" and not stripped:
        return {}
    if declared in ("integer", "number", "boolean", "array", "object"):
        raise _refuse("xml_value", f"{text[:40]!r} is not a valid {declared}", loc)
    raise _refuse("xml_value", f"unknown type {declared!r}", loc)


@lru_cache(maxsize=64)
def _schema(model: type[BaseModel]) -> tuple[dict[str, Any], dict[str, Any]]:
    schema = model.model_json_schema()
    return schema, schema.get("$defs", {})


def loads(body: bytes, model: type[BaseModel] | None = None) -> Any:
    """A request body's XML as the JSON value it stands for (see the module doc);
    ``model`` types the elements that do not say their type."""
    root = _parse(body)
    schema, defs = _schema(model) if model is not None else ({}, {})
    return _value(root, schema or None, defs, ("body",))
