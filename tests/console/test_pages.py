"""Every console page and form against the real app and Redis: rendering, the API's
validation shown on the form, secrets and passwords kept off the pages, and each action."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from relay.api import create_app
from relay.core.models import Event
from relay.settings import Settings
from relay.store import Store
from tests.api.conftest import message
from tests.console.conftest import BASE_URL, Console, csrf_of, log_in
from tests.support import Receiver

PASSWORD = "s3cret-mc5-password"


async def _source(store: Store, username: str = "acct") -> str:
    source = await store.sources.create(
        username=username,
        password=PASSWORD,
        base_url="https://mc5.example",
        poll_interval_s=2.0,
        start_from=None,
        now=time.time(),
    )
    return source.id


async def _subscription(console: Console, url: str, **fields: str) -> tuple[str, str]:
    """Create through the form; (subscription id, the secret shown once)."""
    response = await console.post("/ui/subscriptions", {"url": url, "enabled": "true", **fields})
    assert response.status_code == 200, response.text
    secret = re.search(r'value="(whsec_[^"]+)"', response.text)
    sub_id = re.search(r'href="/ui/subscriptions/(sub_[^"/]+)"', response.text)
    assert secret is not None and sub_id is not None
    return sub_id.group(1), secret.group(1)


def _assert_console_headers(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"


async def test_every_page_renders_with_data_in_it(
    console: Console,
    store: Store,
    add_events: Callable[..., Any],
    receiver: tuple[Receiver, str],
) -> None:
    _, hook_url = receiver
    source_id = await _source(store)
    sub_id, _ = await _subscription(console, hook_url, headers="X-Team: ops")
    events: list[Event] = await add_events(message("doc-1"), message("doc-2", kind="outgoing"))
    await console.post(f"/ui/subscriptions/{sub_id}/test")
    await store.dead_letters.add(
        event_id=events[0].id,
        subscription_id=sub_id,
        attempts=3,
        last_error="HTTP 500",
        last_status_code=500,
        failed_at=time.time(),
    )
    filtered = (
        "/ui/events?type=message.sent",
        "/ui/events?source_id=src_test&limit=1",
        "/ui/events?phone=61555879987&document_id=doc-1&since=2013-04-22T09:00",
        f"/ui/events/{events[0].id}",
    )
    for path in (*_every_page(source_id, sub_id), *filtered):
        response = await console.get(path)
        assert response.status_code == 200, path
        _assert_console_headers(response)
    overview = (await console.get("/ui/")).text
    assert "acct" in overview and hook_url in overview
    assert "1 delivered and 0 failed" in overview
    assert "100 %" in overview  # the subscription's success rate over the last hour
    events_page = (await console.get("/ui/events")).text
    assert events[0].id in events_page and "ggghhh" in events_page


async def test_static_files_and_the_bare_prefix(console: Console) -> None:
    css = await console.get("/ui/static/console.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    assert (await console.get("/ui/static/console.js")).status_code == 200
    bare = await console.get("/ui")
    assert bare.status_code == 308 and bare.headers["location"] == "/ui/"


async def test_an_unknown_console_page_is_an_html_404(console: Console) -> None:
    response = await console.get("/ui/no-such-page")
    assert response.status_code == 404
    assert "There is no console page" in response.text


async def test_unknown_resources_are_404_pages_not_500(console: Console) -> None:
    for path in ("/ui/sources/src_nope", "/ui/subscriptions/sub_nope/attempts"):
        response = await console.get(path)
        assert response.status_code == 404 and "not found" in response.text
    response = await console.post("/ui/dead-letters/dl_nope/retry")
    assert response.status_code == 404


async def test_a_bad_cursor_is_shown_as_an_error_page(console: Console) -> None:
    response = await console.get("/ui/events?cursor=not-a-cursor")
    assert response.status_code == 422
    assert "cursor is not one this API returned" in response.text


@pytest.mark.parametrize(
    ("fields", "message_text"),
    [
        ({"url": "ftp://example.com/hook"}, "url must be an http:// or https:// URL"),
        ({"url": ""}, "url must be 1 to 2048 characters long"),
        ({"url": "https://example.com/", "headers": "no colon here"}, "must look like"),
        ({"url": "https://example.com/", "headers": "Host: x"}, "set by relay"),
        ({"url": "https://example.com/", "event_types": "message.bogus"}, "unknown value"),
    ],
)
async def test_subscription_form_errors_are_shown_on_the_form(
    console: Console, store: Store, fields: dict[str, str], message_text: str
) -> None:
    response = await console.post("/ui/subscriptions", fields)
    assert response.status_code == 422
    assert message_text in response.text
    assert 'aria-invalid="true"' in response.text
    assert f'value="{fields["url"]}"' in response.text  # what was typed is kept
    assert (await store.subscriptions.page(limit=10, cursor=None)).items == ()


async def test_private_targets_are_refused_on_the_form_unless_allowed(
    api_settings: Settings,
) -> None:
    app = create_app(api_settings.replace(allow_private_targets=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            await log_in(http)
            console = Console(http, csrf_of((await http.get("/ui/")).text))
            response = await console.post("/ui/subscriptions", {"url": "http://127.0.0.1/hook"})
    assert response.status_code == 422
    assert "loopback" in response.text or "private" in response.text


async def test_source_form_errors_are_shown_on_the_form(console: Console, store: Store) -> None:
    cases = [
        ({"username": "u"}, "password must be 1 to 200 characters long"),
        ({"username": "u", "password": "p", "poll_interval": "abc"}, "poll_interval must be"),
        ({"username": "u", "password": "p", "poll_interval": "0"}, "poll_interval must be"),
        ({"username": "u", "password": "p", "start_from": "yesterday"}, "start_from must be"),
        ({"username": "u v", "password": "p"}, "username must not contain spaces"),
        ({"username": "u", "password": "p", "base_url": "mc5.example"}, "base_url must be"),
    ]
    for fields, message_text in cases:
        response = await console.post("/ui/sources", fields)
        assert response.status_code == 422, fields
        assert message_text in response.text, (fields, response.text)
    assert (await store.sources.page(limit=10, cursor=None)).items == ()


async def test_a_duplicate_source_is_a_conflict_on_the_form(console: Console) -> None:
    fields = {"username": "acct", "password": "p", "base_url": "https://mc5.example"}
    assert (await console.post("/ui/sources", fields)).status_code == 303
    response = await console.post("/ui/sources", fields)
    assert response.status_code == 409
    assert "already polls acct" in response.text


async def test_sources_are_added_edited_paused_and_resumed(console: Console, store: Store) -> None:
    response = await console.post(
        "/ui/sources",
        {"username": "acct", "password": PASSWORD, "poll_interval": "1.5", "start_from": "100"},
    )
    assert response.status_code == 303
    (source,) = (await store.sources.page(limit=10, cursor=None)).items
    assert (source.poll_interval_s, source.cursor, source.password) == (1.5, 100, PASSWORD)

    edit = {
        "username": "acct2",
        "password": "",
        "base_url": source.base_url,
        "poll_interval": "3",
        "cursor": "100",
        "cursor_was": "100",
    }
    assert (await console.post(f"/ui/sources/{source.id}", edit)).status_code == 303
    changed = await store.sources.get(source.id)
    assert (changed.username, changed.poll_interval_s, changed.password) == ("acct2", 3.0, PASSWORD)

    bad = await console.post(f"/ui/sources/{source.id}", {**edit, "cursor": "-5"})
    assert bad.status_code == 422 and "cursor must be" in bad.text

    await console.post(f"/ui/sources/{source.id}/status", {"status": "paused"})
    assert (await store.sources.get(source.id)).status == "paused"
    await console.post(f"/ui/sources/{source.id}/status", {"status": "ok"})
    assert (await store.sources.get(source.id)).status == "ok"
    bad = await console.post(f"/ui/sources/{source.id}/status", {"status": "failing"})
    assert bad.status_code == 422

    assert (await console.post(f"/ui/sources/{source.id}/delete")).status_code == 303
    assert (await store.sources.page(limit=10, cursor=None)).items == ()


async def test_no_page_shows_a_password_or_an_unrequested_secret(
    console: Console, store: Store, receiver: tuple[Receiver, str]
) -> None:
    _, hook_url = receiver
    source_id = await _source(store)
    sub_id, secret = await _subscription(console, hook_url)
    await console.post(f"/ui/subscriptions/{sub_id}/test")
    for path in _every_page(source_id, sub_id):
        text = (await console.get(path)).text
        assert PASSWORD not in text, path
        assert secret not in text, path
    failed = await console.post(
        f"/ui/sources/{source_id}",
        {"username": "a b", "password": PASSWORD, "base_url": "x", "poll_interval": "1"},
    )
    assert failed.status_code == 422 and PASSWORD not in failed.text


async def test_secret_reveal_and_rotation(console: Console, store: Store) -> None:
    sub_id, secret = await _subscription(console, "https://example.com/hook")
    revealed = await console.post(f"/ui/subscriptions/{sub_id}/secret")
    assert revealed.status_code == 200 and secret in revealed.text
    assert revealed.headers["cache-control"] == "no-store"

    rotated = await console.post(
        f"/ui/subscriptions/{sub_id}/secret/rotate", {"overlap_seconds": "3600"}
    )
    assert rotated.status_code == 200 and secret not in rotated.text
    subscription = await store.subscriptions.get(sub_id)
    assert subscription.secrets[0].value in rotated.text
    assert subscription.secrets[1].value == secret
    assert subscription.signing_secrets(now=time.time()) == (
        subscription.secrets[0].value,
        secret,
    )

    bad = await console.post(
        f"/ui/subscriptions/{sub_id}/secret/rotate", {"overlap_seconds": "9999999"}
    )
    assert bad.status_code == 422 and "overlap_seconds must be between" in bad.text


async def test_subscription_edit_enable_disable_and_delete(console: Console, store: Store) -> None:
    sub_id, _ = await _subscription(console, "https://example.com/hook")
    edit = {
        "url": "https://example.com/other",
        "description": "orders",
        "event_types": "message.sent",
        "source_ids": "src_a, src_b",
        "headers": "X-Team: ops\nX-Env: prod",
    }
    assert (await console.post(f"/ui/subscriptions/{sub_id}", edit)).status_code == 303
    sub = await store.subscriptions.get(sub_id)
    assert sub.url == "https://example.com/other" and sub.description == "orders"
    assert sub.event_types == ("message.sent",) and sub.source_ids == ("src_a", "src_b")
    assert dict(sub.headers) == {"X-Team": "ops", "X-Env": "prod"}
    page = (await console.get(f"/ui/subscriptions/{sub_id}")).text
    assert "X-Team: ops\nX-Env: prod" in page and "src_a, src_b" in page

    bad = await console.post(f"/ui/subscriptions/{sub_id}", {**edit, "url": "nope"})
    assert bad.status_code == 422 and (await store.subscriptions.get(sub_id)).url == sub.url

    await console.post(f"/ui/subscriptions/{sub_id}/enabled", {"enabled": "false"})
    assert not (await store.subscriptions.get(sub_id)).enabled
    await console.post(f"/ui/subscriptions/{sub_id}/enabled", {"enabled": "true"})
    assert (await store.subscriptions.get(sub_id)).enabled

    assert (await console.post(f"/ui/subscriptions/{sub_id}/delete")).status_code == 303
    assert (await store.subscriptions.page(limit=10, cursor=None)).items == ()


async def test_redeliver_queues_the_event_and_a_disabled_target_is_a_conflict_page(
    console: Console, store: Store, add_events: Callable[..., Any]
) -> None:
    sub_id, _ = await _subscription(console, "https://example.com/hook")
    (event,) = await add_events(message("doc-9"))
    before = await store.redis.xlen(store.keys.replay_stream)
    response = await console.post(f"/ui/events/{event.id}/redeliver", {"subscription_id": ""})
    assert response.status_code == 303
    assert response.headers["location"] == f"/ui/events/{event.id}?done=redelivered&n=1"
    assert await store.redis.xlen(store.keys.replay_stream) == before + 1
    await store.subscriptions.update(sub_id, enabled=False)
    conflict = await console.post(f"/ui/events/{event.id}/redeliver", {"subscription_id": sub_id})
    assert conflict.status_code == 409 and "is disabled" in conflict.text


async def test_retry_all_dead_letters(console: Console, store: Store) -> None:
    sub_id, _ = await _subscription(console, "https://example.com/hook")
    for n in range(4):
        await store.dead_letters.add(
            event_id=f"evt_{n}",
            subscription_id=sub_id if n < 3 else "sub_deleted",
            attempts=3,
            last_error=None,
            last_status_code=500,
            failed_at=time.time(),
        )
    response = await console.post("/ui/dead-letters/retry-all")
    assert response.headers["location"] == "/ui/dead-letters?done=retried-all&n=3"
    left = (await store.dead_letters.page(limit=10, cursor=None)).items
    assert [d.subscription_id for d in left] == ["sub_deleted"]  # nothing to deliver it to
    shown = await console.get(response.headers["location"])
    assert "Queued 3 dead letter(s)" in shown.text


async def test_a_form_that_is_not_urlencoded_is_refused_cleanly(console: Console) -> None:
    response = await console.http.post(
        "/ui/sources", json={"csrf": console.csrf}, headers={"Origin": BASE_URL}
    )
    assert response.status_code == 415
    assert "text/html" in response.headers["content-type"]


def _every_page(source_id: str, sub_id: str) -> tuple[str, ...]:
    """One URL of each console page, for these records."""
    return (
        "/ui/",
        "/ui/sources",
        f"/ui/sources/{source_id}",
        "/ui/subscriptions",
        f"/ui/subscriptions/{sub_id}",
        f"/ui/subscriptions/{sub_id}/attempts",
        "/ui/events",
        "/ui/dead-letters",
    )


async def test_pages_mask_url_query_values_like_relay_status(console: Console) -> None:
    url = "https://example.com/in?token=query-secret-1&team=ops"
    sub_id, _ = await _subscription(console, url)
    shown = "https://example.com/in?token=***&amp;team=***"
    for path in ("/ui/", "/ui/subscriptions", f"/ui/subscriptions/{sub_id}/attempts"):
        page = (await console.get(path)).text
        assert shown in page, path
        assert "query-secret-1" not in page, path
    detail = (await console.get(f"/ui/subscriptions/{sub_id}")).text
    assert f'<h1 class="breakable">{shown}</h1>' in detail


def _shown_errors(html: str) -> dict[str, str]:
    return dict(re.findall(r'<p class="field-error" id="([\w.-]+)-error">([^<]*)</p>', html))


async def test_a_source_form_shows_every_field_error_at_once(
    console: Console, store: Store
) -> None:
    fields = {
        "username": "u v",
        "password": "",
        "base_url": "mc5.example",
        "poll_interval": "abc",
        "start_from": "yesterday",
    }
    response = await console.post("/ui/sources", fields)
    assert response.status_code == 422
    errors = _shown_errors(response.text)
    assert set(errors) == {"username", "password", "base_url", "poll_interval", "start_from"}
    assert "must not contain spaces" in errors["username"]
    assert (await store.sources.page(limit=10, cursor=None)).items == ()


async def test_a_source_edit_form_shows_every_field_error_at_once(
    console: Console, store: Store
) -> None:
    assert (
        await console.post("/ui/sources", {"username": "a", "password": "p"})
    ).status_code == 303
    (source,) = (await store.sources.page(limit=10, cursor=None)).items
    edit = {"username": "a b", "base_url": "x", "poll_interval": "0", "cursor": "-5"}
    response = await console.post(f"/ui/sources/{source.id}", {**edit, "cursor_was": "0"})
    assert response.status_code == 422
    assert set(_shown_errors(response.text)) == {"username", "base_url", "poll_interval", "cursor"}


async def test_a_subscription_form_shows_every_field_error_at_once(console: Console) -> None:
    fields = {"url": "ftp://x", "headers": "no colon", "event_types": "message.bogus"}
    response = await console.post("/ui/subscriptions", fields)
    assert response.status_code == 422
    errors = _shown_errors(response.text)
    assert set(errors) == {"url", "headers", "event_types"}
    assert "unknown value" in errors["event_types"]
