"""The demo receiver of `relay dev`: one printed line per webhook, verified or not."""

from __future__ import annotations

import httpx

from relay.core.signing import new_secret, webhook_headers
from relay.demo.receiver import create_receiver

BODY = (
    b'{"type":"message.received","timestamp":"2013-04-22T09:59:29Z","data":{"documentId":"d1",'
    b'"from":"61555879987","recipient":"61500079987","text":" ggghhh","timestamp":1366624769}}'
)


async def _post(secret: str | None, signed_with: str) -> tuple[int, list[str]]:
    lines: list[str] = []
    app = create_receiver(secret=secret, clock=lambda: 1_700_000_000.0, out=lines.append)
    headers = webhook_headers(
        msg_id="evt_1", timestamp=1_700_000_000, body=BODY, secrets=[signed_with], user_agent="t"
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        response = await client.post("/", content=BODY, headers=headers)
    return response.status_code, lines


async def test_a_verified_webhook_is_printed_and_answered_204() -> None:
    secret = new_secret()
    status, lines = await _post(secret, secret)
    assert status == 204
    assert lines == ["[verified] message.received evt_1 61555879987 -> 61500079987: ' ggghhh'"]


async def test_a_wrong_signature_is_printed_as_such_and_answered_400() -> None:
    status, lines = await _post(new_secret(), new_secret())
    assert status == 400
    assert lines[0].startswith("[SIGNATURE INVALID] message.received evt_1")
