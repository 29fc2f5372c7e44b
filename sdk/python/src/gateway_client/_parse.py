"""Turning a successful response into typed objects (used by the generated methods).

REST v1 wraps resources in ``{"data": ..., "metadata": {"request_id", "pagination"}}``.
A response asked for with a field mask (``fields=``) lacks fields the model requires,
so it is built without validation (``model_construct``): what the gateway sent, as is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import httpx

from gateway_client._base import ApiModel, Done, ItemList, Page, ResponseMeta

M = TypeVar("M", bound=ApiModel)


def _build(model: type[M], raw: Any, meta: ResponseMeta, masked: bool) -> M:
    item = cast("M", model.model_construct(**raw)) if masked else model.model_validate(raw)
    item._meta = meta
    return item


def _envelope(
    response: httpx.Response, meta: ResponseMeta
) -> tuple[Any, dict[str, Any], ResponseMeta]:
    body = response.json()
    metadata = body.get("metadata") or {}
    if meta.request_id is None and metadata.get("request_id"):
        meta = ResponseMeta(
            status=meta.status,
            request_id=str(metadata["request_id"]),
            etag=meta.etag,
            rate_limit=meta.rate_limit,
            attempts=meta.attempts,
            replayed=meta.replayed,
            headers=meta.headers,
        )
    return body["data"], metadata, meta


def one(model: type[M], masked: bool = False) -> Callable[[httpx.Response, ResponseMeta], M]:
    def parse(response: httpx.Response, meta: ResponseMeta) -> M:
        data, _, meta = _envelope(response, meta)
        return _build(model, data, meta, masked)

    return parse


def many(
    model: type[M], masked: bool = False
) -> Callable[[httpx.Response, ResponseMeta], ItemList[M]]:
    def parse(response: httpx.Response, meta: ResponseMeta) -> ItemList[M]:
        data, _, meta = _envelope(response, meta)
        return ItemList((_build(model, row, meta, masked) for row in data), meta)

    return parse


def page(model: type[M], masked: bool = False) -> Callable[[httpx.Response, ResponseMeta], Page[M]]:
    def parse(response: httpx.Response, meta: ResponseMeta) -> Page[M]:
        data, metadata, meta = _envelope(response, meta)
        pagination = metadata.get("pagination") or {}
        token = pagination.get("next_page_token")
        return Page([_build(model, row, meta, masked) for row in data], token or None, meta)

    return parse


def bare(model: type[M]) -> Callable[[httpx.Response, ResponseMeta], M]:
    """A JSON body that is not in the envelope (the stream ticket)."""

    def parse(response: httpx.Response, meta: ResponseMeta) -> M:
        return _build(model, response.json(), meta, False)

    return parse


def done(response: httpx.Response, meta: ResponseMeta) -> Done:
    item = Done()
    item._meta = meta
    return item
