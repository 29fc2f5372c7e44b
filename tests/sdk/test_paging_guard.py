"""A gateway that hands back the same page token again must not loop forever."""

from __future__ import annotations

from typing import Any

import pytest
from gateway_client import AsyncPager, Pager, PagingError
from gateway_client._base import Page, ResponseMeta

pytestmark = pytest.mark.backend_independent


def _page(token: str | None) -> Page[int]:
    return Page(items=[1], next_page_token=token, meta=ResponseMeta(status=200, request_id=None))


def _stuck(_call: Any) -> Page[int]:
    return _page("same")


def test_a_repeated_token_raises_paging_error() -> None:
    pager: Pager[int] = Pager(_stuck, lambda token: token)  # type: ignore[arg-type,return-value]
    with pytest.raises(PagingError) as caught:
        list(pager)
    assert caught.value.token == "same"


async def test_a_repeated_token_raises_paging_error_async() -> None:
    async def stuck(_call: Any) -> Page[int]:
        return _page("same")

    pager: AsyncPager[int] = AsyncPager(stuck, lambda token: token)  # type: ignore[arg-type,return-value]
    with pytest.raises(PagingError):
        async for _ in pager:
            pass
