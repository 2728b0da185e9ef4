"""The events pages rendered by the real app from deliveries the real dispatcher and retry
worker made: messages found by documentId, phone number and time, one event's deliveries
(delivered, retrying, dead) and attempts, redelivery, and a tenant key's portal seeing only
its own messages (the browser test checks the same in Chromium)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace

import httpx

from relay.console.message_view import form_time
from relay.core.events import event_from_message
from relay.settings import Settings
from relay.store import Store
from tests.api.conftest import AUTH
from tests.console.conftest import Console, csrf_of, log_in
from tests.console.message_seed import ORDER_TEXT, sms, tell_a_story
from tests.console.test_portal import TENANT_SCOPES, _portal
from workers.dispatcher import open_dispatcher

ESCAPED_EXCERPT = "&lt;b&gt;Order&lt;/b&gt; #1234 shipped &amp; on its way Reply STOP to opt out"
ESCAPED_TEXT = "&lt;b&gt;Order&lt;/b&gt; #1234 shipped &amp; on its way\nReply STOP to opt out"


def _rows(html: str) -> list[str]:
    """The body rows of every table on the page."""
    return re.findall(r"<tr>(.*?)</tr>", html.split("<tbody>", 1)[-1], flags=re.S)


def _row_of(html: str, marker: str) -> str:
    (row,) = [row for row in _rows(html) if marker in row]
    return row


async def test_messages_are_found_by_document_id_phone_and_time(
    console: Console, store: Store, api_settings: Settings, serve_app: Callable[..., str]
) -> None:
    story = await tell_a_story(store, api_settings, serve_app)
    everything = (await console.get("/ui/events")).text
    row = _row_of(everything, story.event.id)
    assert ESCAPED_EXCERPT in row and "<b>Order" not in everything
    assert "61455123456 <span" in row and "61480000111" in row
    assert f'href="/ui/events/{story.event.id}"' in row
    assert "1 delivered</span> · " in row and "1 retrying</span> · " in row and "1 dead<" in row

    blank = "phone=&type=&source_id=&since=&until="  # the form sends every field
    by_document = (await console.get(f"/ui/events?document_id=doc-7731&{blank}")).text
    assert story.event.id in by_document and story.other.id not in by_document
    assert 'value="doc-7731"' in by_document  # the search stays in the form
    by_phone = (await console.get("/ui/events?phone=61499888777")).text
    assert story.other.id in by_phone and story.event.id not in by_phone
    by_recipient = (await console.get("/ui/events?phone=61480000111")).text
    assert story.event.id in by_recipient and story.other.id not in by_recipient
    since = form_time(story.other.timestamp)
    later = (await console.get(f"/ui/events?since={since}")).text
    assert story.other.id in later and story.event.id not in later
    nothing = (await console.get("/ui/events?phone=61400000000")).text
    assert "No messages match this search." in nothing

    first = (await console.get("/ui/events?type=message.received&source_id=src_shop&limit=1")).text
    assert story.other.id in first and story.event.id not in first
    older = re.search(r'href="(/ui/events\?cursor=[^"]+)">Older', first)
    assert older is not None
    link = older.group(1).replace("&amp;", "&")
    assert link.endswith("&type=message.received&source_id=src_shop")  # the search is kept
    second = (await console.get(link + "&limit=1")).text
    assert story.event.id in second and story.other.id not in second


async def test_a_bad_search_time_and_a_missing_event_are_error_pages(console: Console) -> None:
    response = await console.get("/ui/events?since=yesterday")
    assert response.status_code == 422
    assert "since must be a date and time like 2026-12-03T08:30 (UTC)" in response.text
    too_long = await console.get("/ui/events?phone=" + "6" * 65)
    assert too_long.status_code == 422 and "phone must be 1 to 64 characters" in too_long.text
    missing = await console.get("/ui/events/evt_<b>gone")  # a ping's, or an expired one
    assert missing.status_code == 404
    assert "Event evt_&lt;b&gt;gone not found" in missing.text
    assert "test pings are never stored" in missing.text


async def test_the_event_page_shows_each_delivery_state_and_every_attempt(
    console: Console, store: Store, api_settings: Settings, serve_app: Callable[..., str]
) -> None:
    story = await tell_a_story(store, api_settings, serve_app)
    page = (await console.get(f"/ui/events/{story.event.id}")).text
    assert "<h1>61455123456 → 61480000111</h1>" in page
    assert ESCAPED_TEXT in page and ORDER_TEXT not in page
    assert "<code>doc-7731</code>" in page
    deliveries = page.split('id="deliveries"', 1)[1].split('id="attempts"', 1)[0]
    delivered = _row_of(deliveries, story.delivered.id)
    assert 'badge-delivered">delivered<' in delivered and "HTTP 204" in delivered
    retrying = _row_of(deliveries, story.retrying.id)
    assert 'badge-retrying">retrying<' in retrying and "HTTP 503" in retrying
    assert re.search(r"\(in (60 min|1 h)\)", retrying)  # the receiver's Retry-After: 3600
    dead = _row_of(deliveries, story.dead.id)
    assert 'badge-dead">dead<' in dead and "HTTP 500" in dead
    assert '<td data-label="Attempts">4</td>' in dead
    assert '<td data-label="Next attempt">—</td>' in dead

    attempts = _rows(page.split('id="attempts"', 1)[1])
    assert len(attempts) == 6  # 1 delivered, 1 failed and waiting, 4 failed
    assert sum("#4" in row for row in attempts) == 1
    assert all(story.other.id not in row for row in attempts)

    dead_letters = (await console.get("/ui/dead-letters")).text
    assert f'href="/ui/events/{story.event.id}"' in dead_letters
    log = (await console.get(f"/ui/subscriptions/{story.dead.id}/attempts")).text
    assert f'href="/ui/events/{story.event.id}"' in log


async def test_redeliver_from_the_event_page_sends_it_again(
    console: Console, store: Store, api_settings: Settings, serve_app: Callable[..., str]
) -> None:
    story = await tell_a_story(store, api_settings, serve_app)
    path = f"/ui/events/{story.event.id}"
    forged = await console.http.post(
        f"{path}/redeliver", data={"subscription_id": story.delivered.id}
    )
    assert forged.status_code == 403  # no CSRF token, no Origin: nothing queued

    response = await console.post(f"{path}/redeliver", {"subscription_id": story.delivered.id})
    assert response.status_code == 303
    assert response.headers["location"] == f"{path}?done=redelivered&n=1"
    async with open_dispatcher(api_settings) as dispatcher:
        assert await dispatcher.run_until_idle() == 1
    page = (await console.get(response.headers["location"])).text
    assert "Queued 1 delivery(ies)." in page
    attempts = _rows(page.split('id="attempts"', 1)[1])
    assert len(attempts) == 7
    assert sum('badge-ok">204<' in row for row in attempts) == 2


async def test_a_tenant_key_sees_only_its_own_messages(
    browser: httpx.AsyncClient, store: Store
) -> None:
    browser.headers.update(AUTH)
    ids: dict[str, str] = {}
    events = {}
    for name, sender, text in (
        ("acme", "61411111111", "acme parcel ready"),
        ("globex", "61422222222", "globex secret offer"),
    ):
        ids[name] = (await browser.post("/v1/tenants", json={"name": name})).json()["id"]
        message = sms(f"{name}-doc", text, sender=sender, recipient="61480000999", timestamp=1)
        event = event_from_message(
            message, source_id=f"src_{name}", created_at_ms=int(time.time() * 1000)
        )
        events[name] = replace(event, tenant_id=ids[name])
    await store.events.add(list(events.values()), retention_s=3600)
    body = {"name": "portal", "scopes": TENANT_SCOPES, "tenant_id": ids["acme"]}
    key = (await browser.post("/v1/keys", json=body)).json()["key"]
    del browser.headers["Authorization"]
    portal = await _portal(browser, key)

    mine = (await portal.get("/ui/events")).text
    assert "acme parcel ready" in mine and "61411111111" in mine
    assert "globex" not in mine and "61422222222" not in mine
    for search in ("phone=61480000999", "phone=61422222222", "document_id=globex-doc"):
        found = await portal.get(f"/ui/events?{search}")
        assert found.status_code == 200, search
        assert "globex secret offer" not in found.text and events["globex"].id not in found.text
        assert ("acme parcel ready" in found.text) == (search == "phone=61480000999"), search
    own = (await portal.get(f"/ui/events/{events['acme'].id}")).text
    assert "acme parcel ready" in own and "globex" not in own and "61422222222" not in own
    theirs = await portal.get(f"/ui/events/{events['globex'].id}")
    assert theirs.status_code == 404
    assert "globex secret offer" not in theirs.text and "61422222222" not in theirs.text
    stolen = await portal.post(f"/ui/events/{events['globex'].id}/redeliver")
    assert stolen.status_code == 404


async def test_a_key_without_deliveries_write_sees_no_redeliver_button(
    browser: httpx.AsyncClient, store: Store, api_settings: Settings
) -> None:
    browser.headers.update(AUTH)
    tenant_id = (await browser.post("/v1/tenants", json={"name": "acme"})).json()["id"]
    sub = (
        await browser.post(
            "/v1/subscriptions", json={"url": "http://127.0.0.1:9/acme", "tenant_id": tenant_id}
        )
    ).json()
    message = sms("acme-doc", "hello", sender="61411111111", recipient="6148", timestamp=1)
    event = event_from_message(message, source_id="src_acme", created_at_ms=int(time.time() * 1000))
    await store.events.add([replace(event, tenant_id=tenant_id)], retention_s=3600)
    body = {"name": "reader", "scopes": ["events:read"], "tenant_id": tenant_id}
    key = (await browser.post("/v1/keys", json=body)).json()["key"]
    del browser.headers["Authorization"]
    reader = await _portal_reader(browser, key)

    page = (await reader.get(f"/ui/events/{event.id}")).text
    assert sub["id"] in page and "hello" in page  # its delivery row is there
    assert "Redeliver" not in page and "/redeliver" not in page
    refused = await reader.post(f"/ui/events/{event.id}/redeliver")
    assert refused.status_code == 403


async def _portal_reader(browser: httpx.AsyncClient, key: str) -> Console:
    """A session of a key that may read events only (it lands on the events page)."""
    assert (await log_in(browser, key)).status_code == 303
    landing = await browser.get("/ui/events")
    assert landing.status_code == 200
    return Console(browser, csrf_of(landing.text))
