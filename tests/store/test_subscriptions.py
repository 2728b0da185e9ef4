from __future__ import annotations

import asyncio

import pytest
import redis.asyncio

from relay.core.errors import NotFound
from relay.core.models import Attempt, Subscription
from relay.store.attempts import AttemptLog
from relay.store.keys import Keys
from relay.store.subscriptions import SubscriptionStore

NOW = 1_700_000_000.0


async def _create(store: SubscriptionStore, url: str = "https://example.com/hook") -> Subscription:
    return await store.create(
        url=url,
        event_types=None,
        source_ids=None,
        description=None,
        headers={},
        enabled=True,
        now=NOW,
    )


async def test_created_subscription_reads_back_with_every_field(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    store = SubscriptionStore(redis=aredis, keys=keys)
    created = await store.create(
        url="https://example.com/hook",
        event_types=("message.received",),
        source_ids=("src_a", "src_b"),
        description="CRM inbox",
        headers={"X-Team": "sales", "Authorization": "Bearer abc"},
        enabled=False,
        now=NOW,
    )
    assert created.id.startswith("sub_")
    assert len(created.secrets) == 1
    assert created.secrets[0].value.startswith("whsec_")
    assert created.secrets[0].expires_at is None
    assert await store.get(created.id) == created


async def test_none_filters_and_empty_filters_stay_distinct(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    store = SubscriptionStore(redis=aredis, keys=keys)
    everything = await _create(store)
    nothing = await store.create(
        url="https://example.com/none",
        event_types=(),
        source_ids=(),
        description="",
        headers={},
        enabled=True,
        now=NOW,
    )
    assert (await store.get(everything.id)).event_types is None
    read = await store.get(nothing.id)
    assert (read.event_types, read.source_ids, read.description) == ((), (), "")


async def test_get_unknown_subscription_raises_not_found(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    store = SubscriptionStore(redis=aredis, keys=keys)
    with pytest.raises(NotFound):
        await store.get("sub_missing")


async def test_page_lists_newest_first_with_cursor(aredis: redis.asyncio.Redis, keys: Keys) -> None:
    store = SubscriptionStore(redis=aredis, keys=keys)
    created = [await _create(store, f"https://example.com/{n}") for n in range(5)]
    newest_first = [s.id for s in reversed(created)]

    first = await store.page(limit=2, cursor=None)
    assert [s.id for s in first.items] == newest_first[:2]
    assert first.next_cursor is not None
    second = await store.page(limit=2, cursor=first.next_cursor)
    assert [s.id for s in second.items] == newest_first[2:4]
    last = await store.page(limit=2, cursor=second.next_cursor)
    assert [s.id for s in last.items] == newest_first[4:]
    assert last.next_cursor is None


async def test_all_returns_every_subscription_oldest_first(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    store = SubscriptionStore(redis=aredis, keys=keys)
    assert await store.all() == []
    created = [await _create(store, f"https://example.com/{n}") for n in range(3)]
    assert await store.all() == created


async def test_every_change_bumps_the_version(aredis: redis.asyncio.Redis, keys: Keys) -> None:
    store = SubscriptionStore(redis=aredis, keys=keys)
    seen = [await store.version()]
    sub = await _create(store)
    seen.append(await store.version())
    await store.update(sub.id, description="changed")
    seen.append(await store.version())
    await store.disable(sub.id, reason="410 Gone")
    seen.append(await store.version())
    await store.rotate_secret(sub.id, overlap_s=60, now=NOW)
    seen.append(await store.version())
    await store.delete(sub.id)
    seen.append(await store.version())
    assert seen == sorted(set(seen))
    assert seen[0] == 0


async def test_update_changes_only_given_fields_and_none_clears_a_filter(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    store = SubscriptionStore(redis=aredis, keys=keys)
    sub = await store.create(
        url="https://example.com/a",
        event_types=("message.sent",),
        source_ids=("src_a",),
        description="keep me",
        headers={"X-A": "1"},
        enabled=True,
        now=NOW,
    )
    updated = await store.update(
        sub.id, url="https://example.com/b", event_types=None, headers={"X-B": "2"}
    )
    assert updated.url == "https://example.com/b"
    assert updated.event_types is None
    assert updated.source_ids == ("src_a",)
    assert updated.description == "keep me"
    assert dict(updated.headers) == {"X-B": "2"}
    assert updated.secrets == sub.secrets
    assert await store.get(sub.id) == updated


async def test_enabling_clears_the_disabled_reason(aredis: redis.asyncio.Redis, keys: Keys) -> None:
    store = SubscriptionStore(redis=aredis, keys=keys)
    sub = await _create(store)
    await store.disable(sub.id, reason="410 Gone")
    disabled = await store.get(sub.id)
    assert (disabled.enabled, disabled.disabled_reason) == (False, "410 Gone")

    assert (await store.update(sub.id, description="x")).disabled_reason == "410 Gone"
    enabled = await store.update(sub.id, enabled=True)
    assert (enabled.enabled, enabled.disabled_reason) == (True, None)


async def test_changing_an_unknown_subscription_raises_not_found(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    store = SubscriptionStore(redis=aredis, keys=keys)
    with pytest.raises(NotFound):
        await store.update("sub_missing", description="x")
    with pytest.raises(NotFound):
        await store.disable("sub_missing", reason="410 Gone")
    with pytest.raises(NotFound):
        await store.rotate_secret("sub_missing", overlap_s=1, now=NOW)
    with pytest.raises(NotFound):
        await store.delete("sub_missing")
    assert await aredis.exists(keys.subscription("sub_missing")) == 0


async def test_delete_removes_subscription_and_its_attempt_log(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    store = SubscriptionStore(redis=aredis, keys=keys)
    log = AttemptLog(redis=aredis, keys=keys, kept=10)
    sub = await _create(store)
    other = await _create(store)
    await log.record_many(
        [
            Attempt("att_1", "evt_1", sub.id, 1, NOW, 200, None, "ok", 5),
            Attempt("att_2", "evt_1", other.id, 1, NOW, 200, None, "ok", 5),
        ]
    )
    await store.delete(sub.id)

    with pytest.raises(NotFound):
        await store.get(sub.id)
    assert await store.all() == [other]
    assert await aredis.exists(keys.attempts(sub.id)) == 0
    assert await aredis.exists(keys.attempts(other.id)) == 1
    with pytest.raises(NotFound):
        await store.delete(sub.id)


async def test_rotated_secret_keeps_signing_until_overlap_ends(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    store = SubscriptionStore(redis=aredis, keys=keys)
    sub = await _create(store)
    old = sub.secrets[0].value

    rotated = await store.rotate_secret(sub.id, overlap_s=3600, now=NOW)
    new = rotated.secrets[0].value
    assert new != old
    assert rotated.secrets[0].expires_at is None
    assert rotated.secrets[1].value == old
    assert rotated.secrets[1].expires_at == NOW + 3600
    assert await store.get(sub.id) == rotated

    assert rotated.signing_secrets(now=NOW + 3599) == (new, old)
    assert rotated.signing_secrets(now=NOW + 3600) == (new,)


async def test_rotation_drops_secrets_whose_overlap_has_ended(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    store = SubscriptionStore(redis=aredis, keys=keys)
    sub = await _create(store)
    first = await store.rotate_secret(sub.id, overlap_s=100, now=NOW)
    second = await store.rotate_secret(sub.id, overlap_s=100, now=NOW + 50)
    # Within the first overlap: three secrets sign.
    assert [s.value for s in second.secrets[1:]] == [s.value for s in first.secrets]
    third = await store.rotate_secret(sub.id, overlap_s=100, now=NOW + 120)
    # The original secret's overlap ended at NOW + 100: gone.
    assert [s.value for s in third.secrets[1:]] == [s.value for s in second.secrets[:2]]
    assert [s.expires_at for s in third.secrets] == [None, NOW + 220, NOW + 150]


async def test_rotation_with_zero_overlap_drops_the_old_secret_at_once(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    store = SubscriptionStore(redis=aredis, keys=keys)
    sub = await _create(store)
    rotated = await store.rotate_secret(sub.id, overlap_s=0, now=NOW)
    assert len(rotated.secrets) == 1
    assert rotated.secrets[0].value != sub.secrets[0].value


async def test_rotation_with_zero_overlap_ends_every_earlier_secret(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    """The emergency rotation after a leak: secrets still in an earlier overlap stop too."""
    store = SubscriptionStore(redis=aredis, keys=keys)
    sub = await _create(store)
    await store.rotate_secret(sub.id, overlap_s=3600, now=NOW)
    rotated = await store.rotate_secret(sub.id, overlap_s=0, now=NOW + 10)
    assert len(rotated.secrets) == 1
    assert rotated.signing_secrets(now=NOW + 10) == (rotated.secrets[0].value,)
    assert await store.get(sub.id) == rotated


async def test_rotation_never_extends_an_earlier_overlap(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    store = SubscriptionStore(redis=aredis, keys=keys)
    sub = await _create(store)
    await store.rotate_secret(sub.id, overlap_s=60, now=NOW)
    rotated = await store.rotate_secret(sub.id, overlap_s=3600, now=NOW + 10)
    assert [s.expires_at for s in rotated.secrets] == [None, NOW + 3610, NOW + 60]
    shortened = await store.rotate_secret(sub.id, overlap_s=30, now=NOW + 20)
    assert [s.expires_at for s in shortened.secrets] == [None, NOW + 50, NOW + 50, NOW + 50]


async def test_concurrent_changes_are_all_kept(aredis: redis.asyncio.Redis, keys: Keys) -> None:
    store = SubscriptionStore(redis=aredis, keys=keys)
    sub = await _create(store)
    await asyncio.gather(
        *(store.rotate_secret(sub.id, overlap_s=3600, now=NOW) for _ in range(5)),
        store.update(sub.id, description="changed"),
        store.disable(sub.id, reason="410 Gone"),
    )
    final = await store.get(sub.id)
    assert len(final.secrets) == 6
    assert len({s.value for s in final.secrets}) == 6
    assert final.description == "changed"
    assert final.disabled_reason == "410 Gone"


async def test_a_change_racing_a_delete_does_not_resurrect_it(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    store = SubscriptionStore(redis=aredis, keys=keys)
    sub = await _create(store)
    results = await asyncio.gather(
        store.delete(sub.id),
        *(store.update(sub.id, description=str(n)) for n in range(5)),
        return_exceptions=True,
    )
    assert results[0] is None
    assert all(r is None or isinstance(r, (Subscription, NotFound)) for r in results)
    assert await aredis.exists(keys.subscription(sub.id)) == 0


async def test_changes_since_names_what_was_created_changed_or_deleted_after_a_version(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    store = SubscriptionStore(redis=aredis, keys=keys)
    kept, changed, deleted = await _create(store), await _create(store), await _create(store)
    version, ids = await store.changes_since(0)
    assert (version, sorted(ids)) == (3, sorted([kept.id, changed.id, deleted.id]))

    await store.update(changed.id, description="new")
    await store.delete(deleted.id)
    added = await _create(store)
    version, ids = await store.changes_since(3)

    assert (version, sorted(ids)) == (6, sorted([changed.id, deleted.id, added.id]))
    assert await store.changes_since(6) == (6, [])
    assert [s.id for s in await store.get_many(ids)] == [
        i for i in ids if i != deleted.id
    ]  # the deleted one is a tombstone: named, not found
