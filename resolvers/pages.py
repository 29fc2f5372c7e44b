"""A connection's page info (Relay): every connection's, declared or written by hand."""

from __future__ import annotations

import strawberry


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None
