"""`Idempotency-Key` on creating requests (README, "Idempotent subscribe").

The first request with a key runs and its answer is kept for 24 h; a repeat with the same key
and the same body gets that answer again without running; the same key with another body, or
a repeat while the first is still running, is 409 Conflict: the key is fine, it clashes with
the state an earlier request left (Stripe answers 400 and 409; the IETF draft 422 and 409).
A request that fails validation keeps nothing, so the client can correct it and retry with
the same key (Stripe does the same). Keys are remembered per credential.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from relay.admin.context import AdminContext
from relay.core.errors import Conflict, InvalidInput

TTL_S = 24 * 3600
HEADER = "Idempotency-Key"
_KEY = re.compile(r"\A[\x21-\x7e]{1,255}\Z")  # visible ASCII, as Stripe allows (<= 255)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any
    replayed: bool  # True: the remembered answer of an earlier request with this key


def check_key(value: str) -> str:
    if not _KEY.search(value):
        raise InvalidInput(f"{HEADER} must be 1 to 255 visible ASCII characters", field=HEADER)
    return value


def credential_scope(authorization: str) -> str:
    """A short digest of the credential a request came with: keys are remembered per
    credential (like Stripe's per account), so two clients' keys never collide."""
    return hashlib.sha256(authorization.encode()).hexdigest()[:32]


def fingerprint(data: Any) -> str:
    """The same for the same JSON body whatever its key order or spacing."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def once(
    ctx: AdminContext,
    operation: str,
    key: str,
    data: Any,
    run: Callable[[], Awaitable[tuple[int, Any]]],
) -> Answer:
    """Run `run` (which returns (status, JSON body)) once per `key` of `operation`."""
    print_ = fingerprint(data)
    store = ctx.store.idempotency
    earlier = await store.claim(operation, check_key(key), fingerprint=print_, ttl_s=TTL_S)
    if earlier is not None:
        if earlier.fingerprint != print_:
            raise Conflict(f"this {HEADER} was already used with a different request body")
        if earlier.status is None:
            raise Conflict(f"a request with this {HEADER} is still being processed")
        return Answer(earlier.status, earlier.body, replayed=True)
    try:
        status, body = await run()
    except BaseException:
        await store.release(operation, key)
        raise
    await store.remember(operation, key, fingerprint=print_, status=status, body=body, ttl_s=TTL_S)
    return Answer(status, body, replayed=False)
