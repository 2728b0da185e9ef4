"""The console's subscription page states the subscription's delivery limits."""

from __future__ import annotations

import time

from relay.core.models import Subscription
from relay.store import Store
from tests.console.conftest import Console


async def _create(store: Store, **limits: float) -> Subscription:
    return await store.subscriptions.create(
        url="https://example.com/hook",
        event_types=None,
        source_ids=None,
        description=None,
        headers={},
        enabled=True,
        now=time.time(),
        **limits,  # type: ignore[arg-type]
    )


async def test_subscription_page_shows_its_delivery_limits(console: Console, store: Store) -> None:
    limited = await _create(store, rate_limit_per_s=2.5, concurrency=1, timeout_s=5)
    plain = await _create(store)

    page = (await console.get(f"/ui/subscriptions/{limited.id}")).text
    assert "at most 2.5 per second · 1 at a time · 5 s timeout" in page
    page = (await console.get(f"/ui/subscriptions/{plain.id}")).text
    assert "<dt>Delivery limits</dt><dd>global settings</dd>" in page
