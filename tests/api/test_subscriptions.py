from __future__ import annotations

import base64
import time
from datetime import datetime

import httpx
import pytest
import redis

from relay.api import create_app
from relay.delivery.jobs import retry_queue_for
from relay.settings import Settings
from relay.store import Store
from relay.store.retry_queue import RetryRequest
from relay.store.stats import queued_retries_by_subscription
from tests.api.conftest import AUTH
from tests.support import Receiver

URL = "https://example.com/hooks/sms"


async def create(client: httpx.AsyncClient, **fields: object) -> dict[str, object]:
    response = await client.post("/v1/subscriptions", json={"url": URL, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_create_returns_every_field_and_the_secret_once(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/subscriptions",
        json={
            "url": URL,
            "event_types": ["message.received"],
            "source_ids": ["src_a"],
            "description": "CRM",
            "headers": {"X-Api-Key": "abc 123"},
            "enabled": False,
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/v1/subscriptions/{body['id']}"
    assert body["url"] == URL
    assert body["event_types"] == ["message.received"]
    assert body["source_ids"] == ["src_a"]
    assert body["description"] == "CRM"
    assert body["headers"] == {"X-Api-Key": "abc 123"}
    assert body["enabled"] is False and body["disabled_reason"] is None
    secret = body["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32

    listed = await client.get("/v1/subscriptions")
    assert secret not in listed.text and "secret" not in listed.json()["data"][0]
    fetched = await client.get(f"/v1/subscriptions/{body['id']}")
    assert secret not in fetched.text
    assert fetched.json() == {k: v for k, v in body.items() if k != "secret"}


async def test_defaults(client: httpx.AsyncClient) -> None:
    body = await create(client)
    assert (body["event_types"], body["source_ids"], body["description"]) == (None, None, None)
    assert (body["headers"], body["enabled"]) == ({}, True)


async def test_url_is_normalized(client: httpx.AsyncClient) -> None:
    body = await create(client, url="HTTPS://Example.COM:443")
    assert body["url"] == "https://example.com/"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"url": "ftp://example.com/"}, "url"),
        ({"url": "example.com"}, "url"),
        ({"url": "https://user:pw@example.com/"}, "url"),
        ({"url": "https://exa mple.com/"}, "url"),
        ({"url": "https://example.com:99999/"}, "url"),
        ({"url": None}, "url"),
        ({"event_types": []}, "event_types"),
        ({"event_types": ["message.deleted"]}, "event_types"),
        ({"event_types": ["message.sent", "message.sent"]}, "event_types"),
        ({"event_types": "message.sent"}, "event_types"),
        ({"source_ids": []}, "source_ids"),
        ({"source_ids": [""]}, "source_ids"),
        ({"source_ids": [1]}, "source_ids"),
        ({"description": "x" * 501}, "description"),
        ({"description": 5}, "description"),
        ({"enabled": "yes"}, "enabled"),
        ({"headers": []}, "headers"),
        ({"headers": {"Bad Name": "x"}}, "headers.Bad Name"),
        ({"headers": {"X-A": "line\r\nInjected: 1"}}, "headers.X-A"),
        ({"headers": {"X-A": "line\n"}}, "headers.X-A"),
        ({"headers": {"X-A": " padded"}}, "headers.X-A"),
        ({"headers": {"X-A": "é"}}, "headers.X-A"),
        ({"headers": {"X-A": 1}}, "headers.X-A"),
        ({"headers": {"webhook-id": "x"}}, "headers.webhook-id"),
        ({"headers": {"Webhook-Signature": "x"}}, "headers.Webhook-Signature"),
        ({"headers": {"Content-Type": "text/plain"}}, "headers.Content-Type"),
        ({"headers": {"content-length": "1"}}, "headers.content-length"),
        ({"headers": {"Host": "evil"}}, "headers.Host"),
        ({"headers": {"User-Agent": "x"}}, "headers.User-Agent"),
        ({"headers": {f"X-{n}": "v" for n in range(21)}}, "headers"),
    ],
)
async def test_create_validation_is_422_naming_the_field(
    client: httpx.AsyncClient, fields: dict[str, object], field: str
) -> None:
    response = await client.post("/v1/subscriptions", json={"url": URL, **fields})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == field, body
    assert body["type"] == "urn:relay:problem:invalid-input"


async def test_url_is_required(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/subscriptions", json={})
    assert response.status_code == 422
    assert response.json()["detail"] == "url is required"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://224.0.0.1/",
        "http://0.0.0.0/",
    ],
)
async def test_private_targets_are_refused_unless_allowed(api_settings: Settings, url: str) -> None:
    strict = api_settings.replace(allow_private_targets=False)
    app = create_app(strict)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=AUTH) as c:
            response = await c.post("/v1/subscriptions", json={"url": url})
            assert response.status_code == 422
            assert response.json()["type"] == "urn:relay:problem:unsafe-target"
            assert response.json()["field"] == "url"
            assert "RELAY_ALLOW_PRIVATE_TARGETS=true" in response.json()["detail"]
            allowed = await c.post("/v1/subscriptions", json={"url": "https://example.com/"})
            assert allowed.status_code == 201


async def test_patch_changes_only_given_fields(client: httpx.AsyncClient) -> None:
    created = await create(client, event_types=["message.sent"], description="d")
    sub_id = created["id"]
    response = await client.patch(
        f"/v1/subscriptions/{sub_id}",
        json={"url": "https://example.org/new", "headers": {"X-B": "2"}, "enabled": False},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["url"] == "https://example.org/new"
    assert body["headers"] == {"X-B": "2"}
    assert body["enabled"] is False
    assert body["event_types"] == ["message.sent"] and body["description"] == "d"

    cleared = await client.patch(
        f"/v1/subscriptions/{sub_id}",
        json={"event_types": None, "source_ids": None, "description": None, "enabled": True},
    )
    body = cleared.json()
    assert (body["event_types"], body["source_ids"], body["description"]) == (None, None, None)
    assert body["enabled"] is True
    assert "secret" not in body
    assert (await client.patch(f"/v1/subscriptions/{sub_id}", json={})).json() == body


async def test_patch_validation(client: httpx.AsyncClient) -> None:
    sub_id = (await create(client))["id"]
    for patch, field in (({"url": None}, "url"), ({"enabled": 1}, "enabled"), ({"x": 1}, "x")):
        response = await client.patch(f"/v1/subscriptions/{sub_id}", json=patch)
        assert response.status_code == 422
        assert response.json()["field"] == field


async def test_delete_unsubscribes(client: httpx.AsyncClient) -> None:
    sub_id = (await create(client))["id"]
    assert (await client.delete(f"/v1/subscriptions/{sub_id}")).status_code == 204
    assert (await client.get(f"/v1/subscriptions/{sub_id}")).status_code == 404
    assert (await client.delete(f"/v1/subscriptions/{sub_id}")).status_code == 404


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("GET", "/secret"),
        ("POST", "/secret/rotate"),
        ("POST", "/test"),
        ("GET", "/attempts"),
    ],
)
async def test_unknown_subscription_is_404(
    client: httpx.AsyncClient, method: str, suffix: str
) -> None:
    body: dict[str, object] | None = {} if method == "PATCH" else None
    response = await client.request(method, f"/v1/subscriptions/sub_nope{suffix}", json=body)
    assert response.status_code == 404
    assert response.json()["type"] == "urn:relay:problem:not-found"


async def test_list_pages_newest_first(client: httpx.AsyncClient) -> None:
    ids = [(await create(client, description=str(n)))["id"] for n in range(3)]
    first = (await client.get("/v1/subscriptions", params={"limit": 2})).json()
    assert [s["id"] for s in first["data"]] == ids[:0:-1]
    second = (
        await client.get("/v1/subscriptions", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert [s["id"] for s in second["data"]] == ids[:1]
    assert second["next_cursor"] is None


async def test_secret_read_and_rotation(client: httpx.AsyncClient) -> None:
    created = await create(client)
    sub_id = created["id"]
    secret = await client.get(f"/v1/subscriptions/{sub_id}/secret")
    assert secret.status_code == 200
    assert secret.json() == {"secret": created["secret"]}
    assert secret.headers["cache-control"] == "no-store"

    rotated = await client.post(f"/v1/subscriptions/{sub_id}/secret/rotate")
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != created["secret"]
    assert (await client.get(f"/v1/subscriptions/{sub_id}/secret")).json() == {"secret": new}

    again = await client.post(
        f"/v1/subscriptions/{sub_id}/secret/rotate", json={"overlap_seconds": 0}
    )
    assert again.status_code == 200 and again.json()["secret"] != new


async def test_rotation_keeps_the_old_secret_signing_for_the_overlap(
    client: httpx.AsyncClient, store: object
) -> None:
    from relay.store import Store

    assert isinstance(store, Store)
    created = await create(client)
    before = time.time()
    await client.post(
        f"/v1/subscriptions/{created['id']}/secret/rotate", json={"overlap_seconds": 3600}
    )
    subscription = await store.subscriptions.get(str(created["id"]))
    signing = subscription.signing_secrets(now=before + 60)
    assert created["secret"] in signing and len(signing) == 2
    assert subscription.signing_secrets(now=before + 3700) == (subscription.secrets[0].value,)


async def test_rotation_answers_when_earlier_secrets_end_and_lists_active_ones(
    client: httpx.AsyncClient,
) -> None:
    created = await create(client)
    assert created["secrets"] == [{"expires_at": None}]
    before = time.time()
    rotated = await client.post(
        f"/v1/subscriptions/{created['id']}/secret/rotate", json={"overlap_seconds": 3600}
    )
    assert set(rotated.json()) == {"secret", "previous_expires_at"}
    ends = datetime.fromisoformat(rotated.json()["previous_expires_at"]).timestamp()
    assert int(before) + 3600 <= ends <= time.time() + 3600  # whole seconds
    shown = (await client.get(f"/v1/subscriptions/{created['id']}")).json()
    assert shown["secrets"][0] == {"expires_at": None}
    assert shown["secrets"][1] == {"expires_at": rotated.json()["previous_expires_at"]}
    assert str(created["secret"]) not in str(shown)
    assert rotated.json()["secret"] not in str(shown)


async def test_emergency_rotation_leaves_exactly_one_signature(
    client: httpx.AsyncClient, receiver: tuple[Receiver, str]
) -> None:
    """Overlap 0 after an earlier rotation: the secret still in its overlap stops too, so the
    next delivery carries one signature, made with the newest secret."""
    recorder, url = receiver
    sub = await create(client, url=url)
    path = f"/v1/subscriptions/{sub['id']}/secret/rotate"
    await client.post(path, json={"overlap_seconds": 3600})
    emergency = await client.post(path, json={"overlap_seconds": 0})
    newest = emergency.json()["secret"]
    recorder.secret = newest
    ping = await client.post(f"/v1/subscriptions/{sub['id']}/test")
    assert ping.status_code == 200, ping.text
    got = recorder.received[-1]
    assert len(got.headers["webhook-signature"].split(" ")) == 1
    assert got.verified
    shown = (await client.get(f"/v1/subscriptions/{sub['id']}")).json()
    assert shown["secrets"] == [{"expires_at": None}]


@pytest.mark.parametrize("overlap", [-1, 604801, "1", 1.5, None])
async def test_rotation_overlap_is_validated(client: httpx.AsyncClient, overlap: object) -> None:
    sub_id = (await create(client))["id"]
    response = await client.post(
        f"/v1/subscriptions/{sub_id}/secret/rotate", json={"overlap_seconds": overlap}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "overlap_seconds"


async def test_test_ping_returns_the_attempt_and_records_it(
    client: httpx.AsyncClient, receiver: tuple[Receiver, str]
) -> None:
    recorder, url = receiver
    sub = await create(client, url=url, event_types=["message.sent"], headers={"X-Key": "k"})
    response = await client.post(f"/v1/subscriptions/{sub['id']}/test")
    assert response.status_code == 200, response.text
    attempt = response.json()
    assert attempt["status_code"] == 204 and attempt["error"] is None
    assert set(attempt) == {
        "id", "event_id", "attempt", "at", "status_code", "error", "response_body",
        "duration_ms",
    }  # fmt: skip
    last = recorder.received[-1]
    headers, body = last.headers, last.body
    assert b'"type":"relay.ping"' in body
    assert headers["webhook-id"] == attempt["event_id"]
    assert headers["x-key"] == "k"

    attempts = (await client.get(f"/v1/subscriptions/{sub['id']}/attempts")).json()
    assert [a["id"] for a in attempts["data"]] == [attempt["id"]]
    assert attempts["next_cursor"] is None


async def test_test_ping_to_a_failing_target_is_still_200(
    client: httpx.AsyncClient, receiver: tuple[Receiver, str]
) -> None:
    recorder, url = receiver
    recorder.default = 500
    sub = await create(client, url=url, enabled=False)
    attempt = (await client.post(f"/v1/subscriptions/{sub['id']}/test")).json()
    assert attempt["status_code"] == 500


async def test_match_filter_is_validated_stored_and_changed(client: httpx.AsyncClient) -> None:
    created = await create(client, match={"recipients": ["+4477"], "keywords": ["STOP", "Stop"]})
    assert created["match"] == {"recipients": ["+4477"], "keywords": ["stop"]}
    sub_id = created["id"]
    assert (await client.get(f"/v1/subscriptions/{sub_id}")).json()["match"] == created["match"]
    changed = await client.patch(f"/v1/subscriptions/{sub_id}", json={"match": {"senders": ["+1"]}})
    assert changed.json()["match"] == {"senders": ["+1"]}
    cleared = await client.patch(f"/v1/subscriptions/{sub_id}", json={"match": {}})
    assert cleared.json()["match"] is None


@pytest.mark.parametrize(
    ("match", "field"),
    [
        ("+44", "match"),
        ({"numbers": ["+44"]}, "match"),
        ({"recipients": "+44"}, "match.recipients"),
        ({"recipients": []}, "match.recipients"),
        ({"senders": [""]}, "match.senders"),
        ({"keywords": ["two words"]}, "match.keywords"),
        ({"keywords": [" stop"]}, "match.keywords"),  # surrounding whitespace too
        ({"keywords": ["stop\x1c"]}, "match.keywords"),  # str.isspace, not only ASCII
        ({"keywords": ["x" * 65]}, "match.keywords"),
    ],
)
async def test_bad_match_filters_are_422(
    client: httpx.AsyncClient, match: object, field: str
) -> None:
    response = await client.post("/v1/subscriptions", json={"url": URL, "match": match})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


async def test_deleting_a_subscription_drops_its_waiting_retries(
    client: httpx.AsyncClient, store: Store, api_settings: Settings, redis_url: str
) -> None:
    doomed, kept = (await create(client))["id"], (await create(client))["id"]
    sync_client = redis.Redis.from_url(redis_url)
    try:
        retries = retry_queue_for(api_settings, sync_client)
        retries.schedule([RetryRequest(f"evt_{i}", str(doomed), 2, 600.0) for i in range(5)])
        retries.schedule([RetryRequest("evt_k", str(kept), 2, 600.0)])
    finally:
        sync_client.close()
    assert (await client.delete(f"/v1/subscriptions/{doomed}")).status_code == 204
    assert await queued_retries_by_subscription(store.redis, store.keys) == {kept: 1}
