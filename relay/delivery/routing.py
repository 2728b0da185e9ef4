"""Which subscriptions an event goes to, at a cost independent of how many there are.

The index buckets enabled subscriptions by source (one bucket per source id a subscription
names, plus a wildcard bucket for those with no source filter), and within a bucket by event
type (None: every type). An event's candidates are the four buckets (its source or any, its
type or any); the index is only a superset filter, and `Subscription.matches` still makes
the decision, so filters added to `matches` (tenants, content) keep working unindexed.

It is kept current incrementally: the store logs every change with the version it made
(`SubscriptionStore.changes_since`), and only the subscriptions changed since the version
the index holds are read again.
"""

from __future__ import annotations

from collections.abc import Iterable

from relay.core.models import Event, Subscription
from relay.store.subscriptions import SubscriptionStore

# A bucket: subscriptions by id, in the order they were indexed.
_Bucket = dict[str, Subscription]


class RoutingIndex:
    def __init__(self) -> None:
        self.version = -1  # the store version this index reflects; -1: never loaded
        self._by_id: dict[str, Subscription] = {}
        self._disabled: dict[str, Subscription] = {}  # not in any bucket
        # source id (None: no source filter) -> event type (None: every type) -> bucket
        self._buckets: dict[str | None, dict[str | None, _Bucket]] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, subscription_id: str) -> Subscription | None:
        return self._by_id.get(subscription_id)

    def replace_all(self, subscriptions: Iterable[Subscription], *, version: int) -> None:
        self._by_id.clear()
        self._disabled.clear()
        self._buckets.clear()
        self.apply((), subscriptions, version=version)

    def apply(
        self,
        removed: Iterable[str],
        changed: Iterable[Subscription],
        *,
        version: int,
    ) -> None:
        """Drop the subscriptions `removed` (deleted), put in the `changed` ones as they are
        now, and record the store `version` they come from."""
        for subscription_id in removed:
            self._remove(subscription_id)
        for subscription in changed:
            self._remove(subscription.id)
            self._by_id[subscription.id] = subscription
            if not subscription.enabled:
                self._disabled[subscription.id] = subscription
            else:
                for source, kind in _keys(subscription):
                    self._buckets.setdefault(source, {}).setdefault(kind, {})[subscription.id] = (
                        subscription
                    )
        self.version = version

    async def refresh(self, subscriptions: SubscriptionStore) -> None:
        """Bring the index up to date: one round trip when nothing changed, and only the
        changed subscriptions read otherwise (all of them on the first call)."""
        if self.version < 0:
            version = await subscriptions.version()
            self.replace_all(await subscriptions.all(), version=version)
            return
        version, changed_ids = await subscriptions.changes_since(self.version)
        if version == self.version:
            return
        changed = await subscriptions.get_many(changed_ids)
        found = {sub.id for sub in changed}
        self.apply(
            [sub_id for sub_id in changed_ids if sub_id not in found], changed, version=version
        )

    def candidates(self, event: Event) -> list[Subscription]:
        """Enabled subscriptions that may match `event` (a superset: call `matches`)."""
        found: list[Subscription] = []
        for source in (event.source_id, None) if event.source_id is not None else (None,):
            by_type = self._buckets.get(source)
            if by_type is None:
                continue
            for kind in (event.type, None):
                bucket = by_type.get(kind)
                if bucket:
                    found.extend(bucket.values())
        return found

    def disabled(self) -> list[Subscription]:
        """The disabled subscriptions (an event's story shows those it would have gone to)."""
        return list(self._disabled.values())

    def _remove(self, subscription_id: str) -> None:
        self._disabled.pop(subscription_id, None)
        old = self._by_id.pop(subscription_id, None)
        if old is None or not old.enabled:
            return
        for source, kind in _keys(old):
            by_type = self._buckets.get(source)
            if by_type is None:
                continue
            bucket = by_type.get(kind)
            if bucket is not None:
                bucket.pop(subscription_id, None)
                if not bucket:
                    del by_type[kind]
            if not by_type:
                del self._buckets[source]


def _keys(subscription: Subscription) -> set[tuple[str | None, str | None]]:
    sources: tuple[str | None, ...] = (
        (None,) if subscription.source_ids is None else subscription.source_ids
    )
    kinds: tuple[str | None, ...] = (
        (None,) if subscription.event_types is None else subscription.event_types
    )
    return {(source, kind) for source in sources for kind in kinds}
