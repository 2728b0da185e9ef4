"""Standard Webhooks signing (symmetric `v1`): secrets, signatures, headers, verification.

A secret is `whsec_` + base64 of the HMAC key. The signature of one delivery is
`v1,` + base64(HMAC-SHA256(key, "{msg_id}.{timestamp}.{body}")); during a rotation overlap
the header carries one such signature per secret, separated by spaces.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import secrets as random
from collections.abc import Mapping, Sequence

from relay.core.errors import InvalidInput, SignatureError

SECRET_PREFIX = "whsec_"  # noqa: S105 (a format marker, not a password)
SECRET_BYTES = 32
DEFAULT_TOLERANCE_S = 300


def new_secret() -> str:
    """A fresh secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(random.token_bytes(SECRET_BYTES)).decode()


def sign(*, secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: one `v1,<base64>` per secret, space-separated."""
    if not secrets:
        raise InvalidInput("at least one secret is needed to sign", field="secret")
    content = _signed_content(msg_id, timestamp, body)
    if len(secrets) == 1:  # outside a rotation overlap: no generator, no join
        return f"v1,{_base64(_digest(secrets[0], content))}"
    return " ".join(f"v1,{_base64(_digest(s, content))}" for s in secrets)


def webhook_headers(
    *, msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str], user_agent: str
) -> dict[str, str]:
    """The headers of one webhook POST (custom subscription headers are not included)."""
    return {
        "content-type": "application/json",
        "user-agent": user_agent,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secrets=secrets, msg_id=msg_id, timestamp=timestamp, body=body),
    }


def verify(
    *,
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> None:
    """Return if one `v1` signature in `headers` matches `secret` and the timestamp is within
    `tolerance_s` of `now`; raise SignatureError otherwise. Header names are case-insensitive."""
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id")
    timestamp_text = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not (msg_id and timestamp_text and signatures):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(timestamp_text)
    except ValueError:
        raise SignatureError("webhook-timestamp is not an integer") from None
    if timestamp < now - tolerance_s:
        raise SignatureError("webhook-timestamp is too old")
    if timestamp > now + tolerance_s:
        raise SignatureError("webhook-timestamp is too new")
    try:
        expected = _digest(secret, _signed_content(msg_id, timestamp, body))
    except InvalidInput as exc:
        raise SignatureError(exc.detail) from None
    for candidate in signatures.split(" "):
        version, _, encoded = candidate.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            continue
        if hmac.compare_digest(expected, given):
            return
    raise SignatureError("no matching signature")


def _signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


def _digest(secret: str, content: bytes) -> bytes:
    mac = _keyed(secret).copy()  # the key's HMAC state is set up once, not per delivery
    mac.update(content)
    return mac.digest()


def _base64(digest: bytes) -> str:
    return binascii.b2a_base64(digest, newline=False).decode("ascii")


# An HMAC keyed with the secret, copied for each delivery: half the time of hmac.digest,
# which sets the key up on every call. About 800 B each (OpenSSL's state), so fewer than the
# decoded keys below; a secret that fell out costs one key setup when it comes back.
@functools.lru_cache(maxsize=16384)
def _keyed(secret: str) -> hmac.HMAC:
    return hmac.new(_key(secret), digestmod="sha256")


# A secret is decoded once, not on every delivery: one entry per secret in use (about 200 B),
# so tens of thousands of subscriptions stay cached.
@functools.lru_cache(maxsize=65536)
def _key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        # Accept unpadded base64 as the reference libraries do.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise InvalidInput("secret is not whsec_ followed by base64", field="secret") from None
    if not key:
        raise InvalidInput("secret is empty", field="secret")
    return key
