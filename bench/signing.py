"""Standard Webhooks signing (symmetric v1), as the relay signs, for the limit and naive clients."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_...` secret."""
    return base64.b64decode(secret.removeprefix("whsec_"))


def webhook_headers(key: bytes, webhook_id: str, body: bytes) -> dict[str, str]:
    """The headers of one signed attempt, stamped now."""
    stamp = str(int(time.time()))
    mac = hmac.new(key, f"{webhook_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }
