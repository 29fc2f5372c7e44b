"""Auto-paging: ``for item in client.orders.list()`` and ``async for`` alike.

Pages are fetched one at a time, when the previous one is used up, by following
``metadata.pagination.next_page_token`` (keyset pages: nothing is skipped or repeated
when rows are added meanwhile). Each fetch is a normal call, so a gateway that is
restarting is waited for by the client's retries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Generic, TypeVar

from gateway_client._base import Page
from gateway_client._core import Call
from gateway_client.errors import PagingError

T = TypeVar("T")
MakeCall = Callable[[str | None], Call[Page[T]]]


class Pager(Generic[T]):
    """Every item of a list, across pages; ``pages()`` gives the pages themselves."""

    def __init__(self, run: Callable[[Call[Page[T]]], Page[T]], make: MakeCall[T]) -> None:
        self._run, self._make = run, make

    def pages(self, page_token: str | None = None) -> Iterator[Page[T]]:
        token, seen = page_token, {page_token} - {None}
        while True:
            page = self._run(self._make(token))
            yield page
            if not page.next_page_token:
                return
            if page.next_page_token in seen:
                raise PagingError(page.next_page_token)
            seen.add(page.next_page_token)
            token = page.next_page_token

    def first_page(self) -> Page[T]:
        return self._run(self._make(None))

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page.items


class AsyncPager(Generic[T]):
    """``async for`` over every item of a list; ``pages()`` gives the pages."""

    def __init__(
        self, run: Callable[[Call[Page[T]]], Awaitable[Page[T]]], make: MakeCall[T]
    ) -> None:
        self._run, self._make = run, make

    async def pages(self, page_token: str | None = None) -> AsyncIterator[Page[T]]:
        token, seen = page_token, {page_token} - {None}
        while True:
            page = await self._run(self._make(token))
            yield page
            if not page.next_page_token:
                return
            if page.next_page_token in seen:
                raise PagingError(page.next_page_token)
            seen.add(page.next_page_token)
            token = page.next_page_token

    async def first_page(self) -> Page[T]:
        return await self._run(self._make(None))

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.items:
                yield item
