"""The audit log: a capped zset of compact entry JSON scored by seq (newest kept).

Member JSON keys: `i` id, `at`, `a` actor, `x` action, `r` resource id, `t` tenant id.
"""

from __future__ import annotations

import json

from redis.asyncio import Redis

from relay.core.ids import new_id
from relay.core.models import AuditEntry, Listing
from relay.store.keys import Keys
from relay.store.pagination import page_ids

AUDIT_KEPT = 10_000

# KEYS: seq, audit. ARGV: kept, entry JSON.
_RECORD_SCRIPT = """
redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[1]), ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[1]) - 1)
return 1
"""


class AuditLog:
    def __init__(self, *, redis: Redis, keys: Keys, kept: int = AUDIT_KEPT) -> None:
        self._redis = redis
        self._keys = keys
        self._kept = kept
        self._record = redis.register_script(_RECORD_SCRIPT)

    async def record(
        self,
        *,
        actor: str,
        action: str,
        resource_id: str | None,
        tenant_id: str | None,
        now: float,
    ) -> AuditEntry:
        """Append one entry, dropping the oldest beyond `kept`; one round trip."""
        entry = AuditEntry(
            id=new_id("aud"),
            at=now,
            actor=actor,
            action=action,
            resource_id=resource_id,
            tenant_id=tenant_id,
        )
        await self._record(keys=[self._keys.seq, self._keys.audit], args=[self._kept, _json(entry)])
        return entry

    async def page(self, *, limit: int, cursor: str | None) -> Listing[AuditEntry]:
        """Newest first."""
        members, next_cursor = await page_ids(
            self._redis, self._keys.audit, limit=limit, cursor=cursor
        )
        return Listing(tuple(_from_json(m) for m in members), next_cursor)


def _json(entry: AuditEntry) -> str:
    row = {
        "i": entry.id,
        "at": entry.at,
        "a": entry.actor,
        "x": entry.action,
        "r": entry.resource_id,
        "t": entry.tenant_id,
    }
    return json.dumps(row, separators=(",", ":"))


def _from_json(member: str) -> AuditEntry:
    row = json.loads(member)
    return AuditEntry(
        id=row["i"],
        at=row["at"],
        actor=row["a"],
        action=row["x"],
        resource_id=row["r"],
        tenant_id=row["t"],
    )
