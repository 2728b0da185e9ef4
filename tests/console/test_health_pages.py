"""The health parts of the subscription, dead-letter and source pages, rendered by the real
app from what the real stores recorded (the browser test checks the same in Chromium)."""

from __future__ import annotations

import time

from relay.core.events import event_from_message
from relay.settings import Settings
from relay.store import Store
from tests.api.conftest import message
from tests.console.conftest import Console
from tests.console.health_seed import LAST_RESPONSE, make_failing, make_failing_source


async def test_a_failing_subscription_says_why_and_its_dead_letter_links_onwards(
    console: Console, store: Store, api_settings: Settings
) -> None:
    now = time.time()
    sub = await store.subscriptions.create(
        url="https://hooks.example.com/orders",
        event_types=None,
        source_ids=None,
        description=None,
        headers={},
        enabled=True,
        now=now,
    )
    event = event_from_message(message("d1"), source_id="src_t", created_at_ms=int(now * 1000))
    await store.events.add([event], retention_s=3600)
    await make_failing(store, api_settings, sub.id, event.id)

    page = (await console.get(f"/ui/subscriptions/{sub.id}")).text
    assert 'Health: <span class="badge badge-failing">failing</span>' in page
    assert "every attempt since then failed, last with HTTP 503" in page
    assert "<dd>25 %</dd>" in page
    assert "<dt>Queued retries</dt><dd>1</dd>" in page
    assert "(in 5 min)" in page
    assert "previous: stops signing" in page

    dead = (await console.get("/ui/dead-letters")).text
    assert f'href="/ui/subscriptions/{sub.id}">https://hooks.example.com/orders<' in dead
    assert f'href="/ui/events/{event.id}"' in dead
    assert "HTTP 503 <small>" not in dead  # the status is not said twice
    assert LAST_RESPONSE.replace('"', "&#34;") in dead

    await store.dead_letters.add(
        event_id=event.id,
        subscription_id="sub_operator",
        attempts=3,
        last_error="timeout",
        last_status_code=None,
        failed_at=time.time(),
    )
    dead = (await console.get("/ui/dead-letters")).text
    assert "operator webhook (RELAY_OPERATOR_WEBHOOK_URL)" in dead
    assert "timeout" in dead

    await store.subscriptions.disable(sub.id, reason="disabled after every delivery failed")
    page = (await console.get(f"/ui/subscriptions/{sub.id}")).text
    assert "Disabled: disabled after every delivery failed." in page


async def test_a_failing_source_says_since_when_and_when_it_is_polled_next(
    console: Console, store: Store
) -> None:
    source = await store.sources.create(
        username="acme@reseller",
        password="p",
        base_url="https://mc5.example",
        poll_interval_s=2.0,
        start_from=None,
        now=time.time(),
    )
    await make_failing_source(store, source)
    page = (await console.get("/ui/sources")).text
    assert "since " in page and "(5 min)" in page
    assert "next poll " in page and "(in 2 min)" in page
