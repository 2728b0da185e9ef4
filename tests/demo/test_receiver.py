"""The demo receiver of `relay dev`: one printed line per webhook, verified or not, with
repeats and pings marked as such."""

from __future__ import annotations

import httpx

from relay.core.signing import new_secret, webhook_headers
from relay.demo.receiver import create_receiver, fixed_secrets

NOW = 1_700_000_000
BODY = (
    b'{"type":"message.received","timestamp":"2013-04-22T09:59:29Z","data":{"documentId":"d1",'
    b'"from":"61555879987","recipient":"61500079987","text":" ggghhh","timestamp":1366624769}}'
)
PING = b'{"type":"relay.ping","timestamp":"2023-11-14T22:13:20Z","data":{}}'


async def _post_all(
    secrets: list[str], signed_with: str, posts: list[tuple[str, str, bytes]]
) -> tuple[list[int], list[str]]:
    """POST each (path, webhook id, body) in order; the statuses and printed lines."""
    lines: list[str] = []
    app = create_receiver(secrets=fixed_secrets(*secrets), clock=lambda: NOW, out=lines.append)
    statuses = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        for path, msg_id, body in posts:
            headers = webhook_headers(
                msg_id=msg_id, timestamp=NOW, body=body, secrets=[signed_with], user_agent="t"
            )
            response = await client.post(path, content=body, headers=headers)
            statuses.append(response.status_code)
    return statuses, lines


async def test_a_verified_webhook_is_printed_and_answered_204() -> None:
    secret = new_secret()
    statuses, lines = await _post_all([secret], secret, [("/", "evt_1", BODY)])
    assert statuses == [204]
    assert lines == ["[verified] message.received evt_1 61555879987 -> 61500079987: ' ggghhh'"]


async def test_a_wrong_signature_is_printed_as_such_and_answered_400() -> None:
    statuses, lines = await _post_all([new_secret()], new_secret(), [("/", "evt_1", BODY)])
    assert statuses == [400]
    assert lines[0].startswith("[SIGNATURE INVALID] message.received evt_1")


async def test_any_offered_secret_verifies_so_rotated_and_added_subscriptions_do() -> None:
    old, new = new_secret(), new_secret()
    statuses, lines = await _post_all([old, new], new, [("/hooks/sms", "evt_1", BODY)])
    assert statuses == [204]
    assert lines[0].startswith("[verified] message.received evt_1")
    assert lines[0].endswith("  (/hooks/sms)")


async def test_a_ping_is_marked_and_not_printed_like_a_message() -> None:
    secret = new_secret()
    _, lines = await _post_all([secret], secret, [("/", "evt_p", PING)])
    assert lines == ["[verified] [ping] relay.ping evt_p"]


async def test_status_path_answers_its_code_and_the_next_attempt_is_marked_retry() -> None:
    secret = new_secret()
    posts = [("/status/500", "evt_1", BODY), ("/status/500", "evt_1", BODY)]
    statuses, lines = await _post_all([secret], secret, posts)
    assert statuses == [500, 500]
    assert lines[0].startswith("[verified] message.received evt_1")
    assert lines[0].endswith("(/status/500, answered 500)")
    assert lines[1].startswith("[verified] [retry] message.received evt_1")


async def test_a_webhook_accepted_before_is_marked_replay_per_path() -> None:
    secret = new_secret()
    posts = [("/", "evt_1", BODY), ("/other", "evt_1", BODY), ("/", "evt_1", BODY)]
    _, lines = await _post_all([secret], secret, posts)
    marks = [line.split(" ")[1] for line in lines]
    assert marks == ["message.received", "message.received", "[replay]"]
