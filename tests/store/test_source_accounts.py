"""One source per MC5 account, checked through the account index (one HGET, no scan)."""

from __future__ import annotations

import pytest
import redis.asyncio

from relay.core.errors import Conflict
from relay.core.models import Source
from relay.store.keys import Keys
from relay.store.sources import SourceStore

NOW = 1_700_000_000.0


@pytest.fixture
def sources(aredis: redis.asyncio.Redis, keys: Keys) -> SourceStore:
    return SourceStore(redis=aredis, keys=keys)


async def _create(sources: SourceStore, username: str, base_url: str = "http://mc5") -> Source:
    return await sources.create(
        username=username,
        password="pw",
        base_url=base_url,
        poll_interval_s=2.0,
        start_from=None,
        now=NOW,
    )


async def test_a_second_source_for_one_account_is_a_conflict(sources: SourceStore) -> None:
    first = await _create(sources, "u@r")
    with pytest.raises(Conflict, match=f"source {first.id} already polls u@r at http://mc5"):
        await _create(sources, "u@r")
    await _create(sources, "u@r", base_url="http://other")  # another upstream: allowed
    assert len(await sources.ids()) == 2


async def test_renaming_onto_another_account_is_a_conflict_and_frees_the_old_name(
    sources: SourceStore,
) -> None:
    first, second = await _create(sources, "u@r"), await _create(sources, "v@r")
    with pytest.raises(Conflict, match=first.id):
        await sources.update(second.id, username="u@r")
    await sources.update(first.id, username="w@r")
    await sources.update(second.id, username="u@r")  # u@r is free now
    with pytest.raises(Conflict, match=first.id):
        await _create(sources, "w@r")


async def test_deleting_a_source_frees_its_account(sources: SourceStore) -> None:
    first = await _create(sources, "u@r")
    await sources.delete(first.id)
    again = await _create(sources, "u@r")
    assert await sources.ids() == [again.id]


async def test_a_store_written_before_the_index_gets_it_built_once(
    sources: SourceStore, aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    first = await _create(sources, "u@r")
    await aredis.delete(keys.source_accounts)  # as an older relay left it
    with pytest.raises(Conflict, match=first.id):
        await _create(sources, "u@r")
    assert await aredis.hget(keys.source_accounts, "http://mc5 u@r") == first.id


async def test_ensure_finds_the_account_through_the_index(sources: SourceStore) -> None:
    first = await _create(sources, "u@r")
    ensured = await sources.ensure(
        username="u@r",
        password="new",
        base_url="http://mc5",
        poll_interval_s=2.0,
        start_from=None,
        now=NOW,
    )
    assert ensured.id == first.id and ensured.password == "new"
