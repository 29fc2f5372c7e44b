"""Keyset page tokens: ``order_by`` parsed, the last row's sort key encoded, and the
condition that continues after it.

A token is URL-safe base64 of JSON: the sort key's values and a fingerprint of the
filter and order it was issued for (another filter or order refuses it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from db.errors import FieldError, InvalidArgument

if TYPE_CHECKING:
    from db.spec import ResourceSpec
    from db.sql import Params


def invalid(param: str, msg: str) -> InvalidArgument:
    return InvalidArgument(
        f"{param}: {msg}",
        errors=[FieldError(loc=("query", param), msg=msg, type=f"invalid_{param}")],
    )


def parse_order_by(text: str | None, spec: ResourceSpec) -> list[tuple[str, bool]]:
    """``"created_at desc, id"`` -> ``[("created_at", True), ("id", False)]``, id always last."""
    raw = text if text and text.strip() else spec.default_order
    keys: list[tuple[str, bool]] = []
    for part in raw.split(","):
        words = part.split()
        if not words or len(words) > 2:
            raise invalid("order_by", f"cannot parse {part.strip()!r}; use 'field [asc|desc], ...'")
        name = words[0]
        direction = words[1].lower() if len(words) == 2 else "asc"
        if name not in spec.sortable:
            raise invalid(
                "order_by",
                f"cannot sort by {name!r}; sortable fields: {', '.join(spec.sortable)}",
            )
        if direction not in ("asc", "desc"):
            raise invalid("order_by", f"direction must be asc or desc, not {words[1]!r}")
        if any(existing == name for existing, _ in keys):
            raise invalid("order_by", f"{name!r} appears twice")
        keys.append((name, direction == "desc"))
    if not any(name == "id" for name, _ in keys):
        keys.append(("id", keys[-1][1]))
    return keys


def order_fingerprint(filter_text: str | None, order: Sequence[tuple[str, bool]]) -> str:
    basis = f"{(filter_text or '').strip()}|{order}"
    return hashlib.blake2b(basis.encode(), digest_size=6).hexdigest()


def encode_token(values: Sequence[Any], fingerprint: str) -> str:
    payload = orjson.dumps({"k": list(values), "f": fingerprint}, option=orjson.OPT_UTC_Z)
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


def decode_token(
    token: str, spec: ResourceSpec, order: Sequence[tuple[str, bool]], fingerprint: str
) -> list[Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        values = payload["k"]
        if payload["f"] != fingerprint:
            raise invalid(
                "page_token",
                "the token was issued for another filter or order_by; "
                "repeat the same filter and order_by, or start without a page_token",
            )
        if not isinstance(values, list) or len(values) != len(order):
            raise ValueError("shape")
        return [
            _coerce_key(spec, name, value) for (name, _), value in zip(order, values, strict=True)
        ]
    except InvalidArgument:
        raise
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise invalid("page_token", "not a token this API issued; start without one") from None


def _coerce_key(spec: ResourceSpec, name: str, value: Any) -> Any:
    kind = spec.filterable[name].kind if name in spec.filterable else "int"
    if kind == "datetime":
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool) or abs(value) >= 2**31:
            raise ValueError("int expected")
        return value
    if not isinstance(value, str):
        raise ValueError("str expected")
    return value


def after_keys(
    spec: ResourceSpec, order: Sequence[tuple[str, bool]], values: Sequence[Any], p: Params
) -> str:
    """Rows strictly after ``values`` in ``order``: (a > x) OR (a = x AND b > y) ..."""
    alternatives: list[str] = []
    for i, (name, desc) in enumerate(order):
        terms = [f"t.{spec.column(n)} = {p(values[j])}" for j, (n, _) in enumerate(order[:i])]
        terms.append(f"t.{spec.column(name)} {'<' if desc else '>'} {p(values[i])}")
        alternatives.append("(" + " AND ".join(terms) + ")")
    return "(" + " OR ".join(alternatives) + ")"


def clamp_page_size(value: int | None, *, default: int, maximum: int, param: str) -> int:
    if value is None:
        return default
    if value < 1:
        raise invalid(param, f"must be at least 1, got {value}")
    return min(value, maximum)
