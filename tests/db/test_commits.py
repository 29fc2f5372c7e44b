"""``db.events.writing`` tells the database client's ``Commits`` once it has committed."""

from __future__ import annotations

import asyncio

import pytest

from db.events import local_commits, writing
from db.models import Organization


async def test_a_write_is_told_after_its_outermost_commit_only(server):
    commits = local_commits()
    assert commits is not None  # both backends' clients hold one
    told = asyncio.Event()
    with commits.watching(told):
        async with writing():
            async with writing():
                pass
            assert not told.is_set()  # the inner block committed nothing
        assert told.is_set()
    told.clear()
    async with writing():
        pass
    assert not told.is_set()  # no longer watching


async def test_a_rolled_back_write_tells_nothing(server):
    commits = local_commits()
    assert commits is not None
    told = asyncio.Event()

    async def failing_write() -> None:
        async with writing():
            await Organization.filter(id=-1).delete()
            raise RuntimeError("rolled back")

    with commits.watching(told), pytest.raises(RuntimeError):
        await failing_write()
    assert not told.is_set()
