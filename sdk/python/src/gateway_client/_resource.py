"""What the generated resource classes stand on: runners, bodies, queries, ETags."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Any, Protocol, TypeVar

from gateway_client._base import ApiModel, InputModel, Page
from gateway_client._core import Call, Param
from gateway_client.filters import Filter
from gateway_client.paging import AsyncPager, MakeCall, Pager

T = TypeVar("T")
M = TypeVar("M", bound=ApiModel)
I = TypeVar("I", bound=InputModel)  # noqa: E741


class SyncRunner(Protocol):
    def _run(self, call: Call[T]) -> T: ...


class AsyncRunner(Protocol):
    def _run(self, call: Call[T]) -> Awaitable[T]: ...


class SyncResource:
    def __init__(self, client: SyncRunner) -> None:
        self._client = client

    def _pages(self, make: MakeCall[M]) -> Pager[M]:
        return Pager(self._client._run, make)


class AsyncResource:
    def __init__(self, client: AsyncRunner) -> None:
        self._client = client

    def _pages(self, make: MakeCall[M]) -> AsyncPager[M]:
        return AsyncPager(self._client._run, make)


def to_json(model: type[I], value: I | Mapping[str, Any]) -> dict[str, Any]:
    """The JSON of a request body: a model, or a mapping checked against the model
    first (pydantic's ``ValidationError`` before anything is sent). Only the fields
    set are sent."""
    item = value if isinstance(value, model) else model.model_validate(value)
    return item.model_dump(mode="json", by_alias=True, exclude_unset=True)


Scalar = str | int | bool | float | datetime | Enum | Filter
QueryValue = Scalar | Sequence[Scalar] | None


def _scalar(value: Scalar) -> str | int | bool:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Filter | float):
        return str(value)
    return value


def query(**values: QueryValue) -> dict[str, Param]:
    """Query parameters; a sequence repeats the parameter (``?topic=a&topic=b``)."""
    out: dict[str, Param] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, Sequence) and not isinstance(value, str):
            out[name] = [_scalar(v) for v in value]
        else:
            out[name] = _scalar(value)
    return out


def headers(**values: str | None) -> dict[str, str]:
    return {name: value for name, value in values.items() if value is not None}


def etag(value: str | ApiModel | None) -> str | None:
    """``If-Match`` from an ETag, or from a resource read earlier (the ETag of its
    ``version``, else of its response): the update applies only if nobody changed it
    since. The version comes first: a masked or expanded read's ETag names more than
    the version, and a write accepts only the version's."""
    if value is None or isinstance(value, str):
        return value
    version = getattr(value, "version", None)
    if isinstance(version, int):
        return f'"v{version}"'
    if value.meta.etag:
        return value.meta.etag
    raise ValueError("if_match: this object has neither an ETag nor a version")


__all__ = ["Page"]
