"""SourceStore against a real Redis."""

from __future__ import annotations

import math

import pytest
import redis.asyncio

from relay.core.errors import InvalidInput, NotFound
from relay.store.keys import Keys
from relay.store.sources import SourceStore

NOW = 1_700_000_000.5


@pytest.fixture
def sources(aredis: redis.asyncio.Redis, keys: Keys) -> SourceStore:
    return SourceStore(redis=aredis, keys=keys)


async def _create(sources: SourceStore, username: str = "1@r", **kw: object) -> str:
    args: dict[str, object] = {
        "password": "pw",
        "base_url": "http://mc5.test/",
        "poll_interval_s": 2.0,
        "start_from": None,
        "now": NOW,
    } | kw
    source = await sources.create(username=username, **args)  # type: ignore[arg-type]
    return source.id


async def test_create_starts_the_cursor_now_or_at_start_from(sources: SourceStore) -> None:
    now_id = await _create(sources)
    then_id = await _create(sources, "2@r", start_from=1366624700)
    now_source = await sources.get(now_id)
    assert now_source.cursor == int(NOW)
    assert now_source.base_url == "http://mc5.test"
    assert now_source.status == "ok"
    assert now_source.last_polled_at is None and now_source.last_error is None
    assert (await sources.get(then_id)).cursor == 1366624700


async def test_ids_in_creation_order_and_page_newest_first(sources: SourceStore) -> None:
    created = [await _create(sources, f"{i}@r") for i in range(3)]
    assert await sources.ids() == created
    first = await sources.page(limit=2, cursor=None)
    assert [s.id for s in first.items] == created[:0:-1]
    assert first.next_cursor is not None
    rest = await sources.page(limit=2, cursor=first.next_cursor)
    assert [s.id for s in rest.items] == created[:1]
    assert rest.next_cursor is None


async def test_ensure_is_idempotent_and_takes_the_new_password(sources: SourceStore) -> None:
    args = {"base_url": "http://mc5.test", "poll_interval_s": 1.0, "start_from": 5, "now": NOW}
    first = await sources.ensure(username="u@r", password="old", **args)  # type: ignore[arg-type]
    again = await sources.ensure(username="u@r", password="new", **args)  # type: ignore[arg-type]
    other = await sources.ensure(username="v@r", password="x", **args)  # type: ignore[arg-type]
    assert again.id == first.id and again.password == "new"
    assert other.id != first.id
    assert await sources.ids() == [first.id, other.id]


async def test_ensure_with_a_new_password_clears_a_failing_state(sources: SourceStore) -> None:
    args = {"base_url": "http://mc5.test", "poll_interval_s": 1.0, "start_from": 5, "now": NOW}
    source = await sources.ensure(username="u@r", password="old", **args)  # type: ignore[arg-type]
    await sources.record_failure(
        source.id,
        version=0,
        error="MC5 status 3: authentication failed",
        failures=1,
        next_poll_at=NOW + 300,
        now=NOW,
    )
    fixed = await sources.ensure(username="u@r", password="new", **args)  # type: ignore[arg-type]
    assert (fixed.status, fixed.last_error, fixed.next_poll_at, fixed.failures) == (
        "ok",
        None,
        0,
        0,
    )


async def test_get_unknown_raises_not_found(sources: SourceStore) -> None:
    with pytest.raises(NotFound):
        await sources.get("src_missing")
    with pytest.raises(NotFound):
        await sources.update("src_missing", cursor=3)
    with pytest.raises(NotFound):
        await sources.delete("src_missing")


async def test_record_failure_marks_failing_and_stop_waits_forever(sources: SourceStore) -> None:
    source_id = await _create(sources)
    recorded = await sources.record_failure(
        source_id,
        version=0,
        error="MC5 status 4: account blocked",
        failures=1,
        next_poll_at=math.inf,
        now=NOW + 1,
    )
    source = await sources.get(source_id)
    assert recorded
    assert source.status == "failing"
    assert source.last_error == "MC5 status 4: account blocked"
    assert source.next_poll_at == math.inf
    assert source.last_polled_at == NOW + 1


async def test_failure_of_a_stale_version_is_not_recorded(sources: SourceStore) -> None:
    source_id = await _create(sources)
    await sources.update(source_id, password="fixed")
    recorded = await sources.record_failure(
        source_id,
        version=0,
        error="MC5 status 3: authentication failed",
        failures=1,
        next_poll_at=NOW + 300,
        now=NOW,
    )
    assert not recorded
    assert (await sources.get(source_id)).status == "ok"


async def test_changing_credentials_clears_failing_but_cursor_alone_does_not(
    sources: SourceStore,
) -> None:
    source_id = await _create(sources)
    _, version = await sources.get_versioned(source_id)
    await sources.record_failure(
        source_id, version=version, error="boom", failures=2, next_poll_at=NOW + 9, now=NOW
    )
    moved = await sources.update(source_id, cursor=123)
    assert (moved.status, moved.cursor, moved.failures) == ("failing", 123, 2)
    fixed = await sources.update(source_id, password="new")
    assert (fixed.status, fixed.last_error, fixed.failures, fixed.next_poll_at) == (
        "ok",
        None,
        0,
        0,
    )
    assert fixed.password == "new"


async def test_pause_and_resume(sources: SourceStore) -> None:
    source_id = await _create(sources)
    assert (await sources.update(source_id, status="paused")).status == "paused"
    assert (await sources.update(source_id, poll_interval_s=5.0)).status == "paused"
    assert (await sources.update(source_id, status="ok")).status == "ok"
    with pytest.raises(InvalidInput):
        await sources.update(source_id, status="failing")


async def test_delete_removes_hash_index_and_lock(
    sources: SourceStore, aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    source_id = await _create(sources)
    await aredis.set(keys.source_lock(source_id), "poller_x")
    await sources.delete(source_id)
    assert await sources.ids() == []
    assert not await aredis.exists(keys.source(source_id), keys.source_lock(source_id))
