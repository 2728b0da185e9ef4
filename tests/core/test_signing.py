from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from relay.core.errors import InvalidInput, SignatureError
from relay.core.signing import new_secret, sign, verify, webhook_headers

# The Standard Webhooks published test vector (standard-webhooks/standard-webhooks, libraries).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def _vector_headers(**overrides: str) -> dict[str, str]:
    headers = {
        "webhook-id": VECTOR_MSG_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    headers.update(overrides)
    return headers


def test_sign_matches_published_vector() -> None:
    signature = sign(
        secrets=[VECTOR_SECRET],
        msg_id=VECTOR_MSG_ID,
        timestamp=VECTOR_TIMESTAMP,
        body=VECTOR_BODY,
    )
    assert signature == VECTOR_SIGNATURE


def test_verify_accepts_published_vector_within_tolerance() -> None:
    verify(
        secret=VECTOR_SECRET,
        headers=_vector_headers(),
        body=VECTOR_BODY,
        now=VECTOR_TIMESTAMP + 299,
    )


def test_verify_reads_header_names_case_insensitively() -> None:
    headers = {name.title(): value for name, value in _vector_headers().items()}
    verify(secret=VECTOR_SECRET, headers=headers, body=VECTOR_BODY, now=VECTOR_TIMESTAMP)


def test_verify_accepts_secret_without_prefix() -> None:
    verify(
        secret=VECTOR_SECRET.removeprefix("whsec_"),
        headers=_vector_headers(),
        body=VECTOR_BODY,
        now=VECTOR_TIMESTAMP,
    )


@pytest.mark.parametrize(
    ("body", "overrides"),
    [
        pytest.param(b'{"test": 2432232315}', {}, id="tampered-body"),
        pytest.param(VECTOR_BODY, {"webhook-id": "msg_other"}, id="tampered-id"),
        pytest.param(
            VECTOR_BODY, {"webhook-timestamp": str(VECTOR_TIMESTAMP + 1)}, id="tampered-timestamp"
        ),
        pytest.param(
            VECTOR_BODY,
            {"webhook-signature": "v1,h0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
            id="tampered-signature",
        ),
        pytest.param(
            VECTOR_BODY,
            {"webhook-signature": VECTOR_SIGNATURE.replace("v1,", "v2,")},
            id="unknown-version",
        ),
        pytest.param(VECTOR_BODY, {"webhook-signature": "v1,not base64!"}, id="garbage"),
        pytest.param(VECTOR_BODY, {"webhook-timestamp": "soon"}, id="non-integer-timestamp"),
        pytest.param(VECTOR_BODY, {"webhook-id": ""}, id="missing-id"),
    ],
)
def test_verify_rejects_tampered_or_malformed_webhooks(
    body: bytes, overrides: dict[str, str]
) -> None:
    with pytest.raises(SignatureError):
        verify(
            secret=VECTOR_SECRET,
            headers=_vector_headers(**overrides),
            body=body,
            now=VECTOR_TIMESTAMP,
        )


def test_verify_rejects_missing_headers() -> None:
    headers = _vector_headers()
    del headers["webhook-signature"]
    with pytest.raises(SignatureError, match="missing"):
        verify(secret=VECTOR_SECRET, headers=headers, body=VECTOR_BODY, now=VECTOR_TIMESTAMP)


@pytest.mark.parametrize(("offset_s", "word"), [(301, "old"), (-301, "new")])
def test_verify_rejects_timestamps_outside_tolerance(offset_s: int, word: str) -> None:
    with pytest.raises(SignatureError, match=word):
        verify(
            secret=VECTOR_SECRET,
            headers=_vector_headers(),
            body=VECTOR_BODY,
            now=VECTOR_TIMESTAMP + offset_s,
        )


def test_verify_honours_a_custom_tolerance() -> None:
    with pytest.raises(SignatureError):
        verify(
            secret=VECTOR_SECRET,
            headers=_vector_headers(),
            body=VECTOR_BODY,
            now=VECTOR_TIMESTAMP + 11,
            tolerance_s=10,
        )


def test_verify_rejects_a_different_secret() -> None:
    with pytest.raises(SignatureError, match="no matching"):
        verify(
            secret=new_secret(),
            headers=_vector_headers(),
            body=VECTOR_BODY,
            now=VECTOR_TIMESTAMP,
        )


def test_new_secret_is_whsec_and_32_random_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert new_secret() != secret


def test_sign_needs_a_secret() -> None:
    with pytest.raises(InvalidInput):
        sign(secrets=[], msg_id="evt_1", timestamp=1, body=b"{}")


def test_sign_refuses_a_secret_that_is_not_base64() -> None:
    with pytest.raises(InvalidInput):
        sign(secrets=["whsec_***"], msg_id="evt_1", timestamp=1, body=b"{}")


def test_webhook_headers_round_trip_through_standardwebhooks_library() -> None:
    secret = new_secret()
    body = b'{"type": "message.received", "data": {"text": " ggghhh"}}'
    headers = webhook_headers(
        msg_id="evt_abc",
        timestamp=int(time.time()),  # the library checks against the real clock
        body=body,
        secrets=[secret],
        user_agent="relay/1.0.0",
    )
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "relay/1.0.0"
    assert headers["webhook-id"] == "evt_abc"
    assert Webhook(secret).verify(body, headers) == {
        "type": "message.received",
        "data": {"text": " ggghhh"},
    }


def test_rotation_sends_two_signatures_each_accepted_by_the_library() -> None:
    new, old = new_secret(), new_secret()
    body = b'{"n": 1}'
    now = int(time.time())
    headers = webhook_headers(
        msg_id="evt_rot", timestamp=now, body=body, secrets=[new, old], user_agent="relay/t"
    )
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        Webhook(secret).verify(body, headers)
        verify(secret=secret, headers=headers, body=body, now=now)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


def test_library_rejects_a_tampered_body_we_signed() -> None:
    secret = new_secret()
    headers = webhook_headers(
        msg_id="evt_t",
        timestamp=int(time.time()),
        body=b'{"n": 1}',
        secrets=[secret],
        user_agent="relay/t",
    )
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"n": 2}', headers)
