"""What every response object carries, and the bases of the generated models."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, PrivateAttr

T = TypeVar("T")

_RATELIMIT = re.compile(r'"(?P<policy>[^"]*)"\s*;\s*(?P<params>.*)')


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The gateway's ``RateLimit`` field: ``remaining`` units of ``policy``, full again
    (or, after a refusal, allowed again) in ``reset`` seconds."""

    policy: str
    remaining: int
    reset: float

    @classmethod
    def parse(cls, raw: str | None) -> RateLimit | None:
        """``"read";r=598;t=1`` (draft-ietf-httpapi-ratelimit-headers); None if absent or
        not understood (a header we cannot read never fails a call)."""
        if not raw:
            return None
        match = _RATELIMIT.match(raw.split(",")[0].strip())
        if match is None:
            return None
        params = dict(
            part.strip().split("=", 1) for part in match["params"].split(";") if "=" in part
        )
        try:
            return cls(match["policy"], int(params["r"]), float(params["t"]))
        except (KeyError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class ResponseMeta:
    """The HTTP side of a response: the request id to quote, the ETag for ``if_match``,
    the rate-limit state, and how many attempts the call took."""

    status: int
    request_id: str | None
    etag: str | None = None
    rate_limit: RateLimit | None = None
    attempts: int = 1
    replayed: bool = False  # an Idempotency-Key repeat answered with the first response
    headers: Mapping[str, str] = field(default_factory=dict)


_NO_RESPONSE = ResponseMeta(status=0, request_id=None)


class ApiModel(BaseModel):
    """A resource as the gateway returns it. Unknown fields (from a newer gateway) are
    kept, not refused; ``meta`` is the response it came in (status 0 when built by hand).
    ``meta`` is a property rather than a field so that no resource field can clash with
    it: a resource field named ``meta`` is generated as ``meta_``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    _meta: ResponseMeta | None = PrivateAttr(default=None)

    @property
    def meta(self) -> ResponseMeta:
        return self._meta if self._meta is not None else _NO_RESPONSE

    def __eq__(self, other: object) -> bool:
        """Equal when the resources are: the responses they came in do not count."""
        if not isinstance(other, BaseModel) or type(other) is not type(self):
            return NotImplemented
        return bool(
            self.__dict__ == other.__dict__ and self.__pydantic_extra__ == other.__pydantic_extra__
        )


class InputModel(BaseModel):
    """A request body. Fields the gateway does not know are refused before sending;
    fields you did not set are not sent (a patch changes only what it names)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Done(ApiModel):
    """The answer to a call that returns no resource (a delete): its ``meta`` only."""


class ItemList(list[T]):
    """A list of resources that also carries the response's ``meta``."""

    def __init__(self, items: Iterable[T], meta: ResponseMeta) -> None:
        super().__init__(items)
        self.meta = meta

    @property
    def request_id(self) -> str | None:
        return self.meta.request_id


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list, with the token of the next one (None on the last)."""

    items: list[T]
    next_page_token: str | None
    meta: ResponseMeta

    @property
    def request_id(self) -> str | None:
        return self.meta.request_id

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)
