"""The delivery hand-off stream and its consumer group (first attempts, read by dispatchers).

`publish` is the producers' side (ingest writes the same entries from its script, the admin
operations publish replays and redeliveries); the consumer side belongs to the dispatcher.

An entry is ACKed (and deleted) only once every subscription it goes to is settled: delivered,
handed to the retry queue, or dead. Until then the subscriptions already settled are kept in
`run:{entry}`, so an entry reclaimed from a dead dispatcher skips them. Entry fields are drawn
in keys.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from relay.store.keys import DISPATCH_GROUP, Keys


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One hand-off: an event for every matching subscription, or for one (`subscription_id`)."""

    id: str
    event_id: str
    subscription_id: str | None = None
    is_explicit: bool = False


_FORGET_IDLE_SCRIPT = """
local removed = 0
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #consumer, 2 do info[consumer[i]] = consumer[i + 1] end
  if tonumber(info['pending']) == 0 and tonumber(info['idle']) >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    removed = removed + 1
  end
end
return removed
"""


class DeliveryStream:
    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._forget = redis.register_script(_FORGET_IDLE_SCRIPT)

    async def publish(
        self, event_id: str, *, subscription_id: str | None = None, explicit: bool = False
    ) -> None:
        """Queue an event for first-attempt delivery by the dispatcher.

        `subscription_id` limits it to that subscription; `explicit` marks a replay,
        redelivery or dead-letter retry, which ignores the created-after rule."""
        fields = {"e": event_id}
        if subscription_id is not None:
            fields["s"] = subscription_id
        if explicit:
            fields["x"] = "1"
        await self._redis.xadd(self._keys.stream, fields)  # type: ignore[arg-type]

    async def publish_many(self, pairs: Sequence[tuple[str, str]], *, atomic: bool = False) -> None:
        """Queue explicit deliveries (event id, subscription id) in one round trip: replays,
        redeliveries and recovers, which ignore the created-after rule. `atomic`: in one
        MULTI, so all are queued or none (a failed request can be retried without doubles)."""
        if not pairs:
            return
        async with self._redis.pipeline(transaction=atomic) as pipe:
            for event_id, subscription_id in pairs:
                pipe.xadd(self._keys.stream, {"e": event_id, "s": subscription_id, "x": "1"})
            await pipe.execute()

    async def ensure_group(self) -> None:
        """Create the stream and the dispatch group (from the start) unless they exist."""
        try:
            await self._redis.xgroup_create(
                self._keys.stream, DISPATCH_GROUP, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, *, consumer: str, count: int, block_ms: int | None) -> list[StreamEntry]:
        """New entries for this consumer, waiting up to `block_ms` for the first (None: no
        wait)."""
        reply = await self._redis.xreadgroup(
            DISPATCH_GROUP, consumer, {self._keys.stream: ">"}, count=count, block=block_ms
        )
        rows: list[tuple[str, dict[str, str] | None]] = []
        for _stream, entries in cast("list[tuple[str, list[Any]]]", reply or []):
            rows.extend(entries)
        return _entries(rows)

    async def claim_stale(
        self, *, consumer: str, min_idle_ms: int, count: int
    ) -> list[StreamEntry]:
        """Take over up to `count` entries another consumer read but left unsettled for
        `min_idle_ms` (it died or hangs)."""
        claimed: list[StreamEntry] = []
        cursor = "0-0"
        while len(claimed) < count:
            reply = await self._redis.xautoclaim(
                self._keys.stream,
                DISPATCH_GROUP,
                consumer,
                min_idle_ms,
                start_id=cursor,
                count=count - len(claimed),
            )
            cursor = str(reply[0])
            claimed.extend(_entries(cast("list[tuple[str, dict[str, str] | None]]", reply[1])))
            if cursor == "0-0":
                break
        return claimed

    async def holders(self) -> dict[str, int]:
        """Consumers that hold unsettled entries, with how many; {} without a group."""
        try:
            rows = await self._redis.xinfo_consumers(self._keys.stream, DISPATCH_GROUP)
        except ResponseError:  # no stream or no group yet
            return {}
        return {str(row["name"]): int(row["pending"]) for row in rows if int(row["pending"])}

    async def claim_from(
        self, holder: str, *, consumer: str, min_idle_ms: int, count: int
    ) -> list[StreamEntry]:
        """Take over up to `count` of the entries `holder` (a dead consumer) left unsettled,
        those idle at least `min_idle_ms`: two peers taking over at once split them, since a
        claim resets the idle time."""
        pending = await self._redis.xpending_range(
            self._keys.stream, DISPATCH_GROUP, min="-", max="+", count=count, consumername=holder
        )
        ids: list[str | bytes | int | memoryview[int]] = [row["message_id"] for row in pending]
        if not ids:
            return []
        rows = await self._redis.xclaim(
            self._keys.stream, DISPATCH_GROUP, consumer, min_idle_ms, ids
        )
        return _entries(cast("list[tuple[str, dict[str, str] | None]]", rows))

    async def forget_idle_consumers(self, *, min_idle_ms: int) -> int:
        """Remove consumers (dead dispatchers) that hold no entries and have been idle for
        `min_idle_ms`, so the group's consumer list does not grow with every restart. One
        script: a consumer cannot read an entry between the check and its removal."""
        if not await self._redis.exists(self._keys.stream):
            return 0
        try:
            removed = await self._forget(
                keys=[self._keys.stream], args=[DISPATCH_GROUP, min_idle_ms]
            )
        except ResponseError:  # no group yet
            return 0
        return int(removed)

    async def settled_subscriptions(self, entry_ids: Sequence[str]) -> dict[str, set[str]]:
        """For each entry, the subscriptions already settled by an earlier reader."""
        if not entry_ids:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id in entry_ids:
                pipe.smembers(self._keys.run(entry_id))
            rows = cast("list[set[str]]", await pipe.execute())
        return {entry_id: set(row) for entry_id, row in zip(entry_ids, rows, strict=True)}

    async def settle(
        self,
        *,
        done: Iterable[str],
        partial: Mapping[str, Iterable[str]],
        keep_s: int,
        clear_retries: Iterable[tuple[str, str]] = (),
    ) -> None:
        """In one round trip: ACK and delete finished entries, remember the settled
        subscriptions of unfinished ones, and clear the retry state of settled deliveries."""
        keys = self._keys
        async with self._redis.pipeline(transaction=False) as pipe:
            finished = list(done)
            if finished:
                pipe.xack(keys.stream, DISPATCH_GROUP, *finished)
                pipe.xdel(keys.stream, *finished)
                pipe.delete(*(keys.run(entry_id) for entry_id in finished))
            for entry_id, subscription_ids in partial.items():
                members = list(subscription_ids)
                if members:
                    pipe.sadd(keys.run(entry_id), *members)
                    pipe.expire(keys.run(entry_id), keep_s)
            retry_keys = [keys.retry_state(e, s) for e, s in clear_retries]
            if retry_keys:
                pipe.delete(*retry_keys)
            if len(pipe):
                await pipe.execute()


def _entries(rows: Sequence[tuple[str, dict[str, str] | None]]) -> list[StreamEntry]:
    """Parsed entries; one deleted meanwhile or malformed gets an empty event id (nothing to
    deliver, only to ACK)."""
    entries = []
    for entry_id, fields in rows:
        values = fields or {}
        entries.append(
            StreamEntry(
                id=entry_id,
                event_id=values.get("e", ""),
                subscription_id=values.get("s") or None,
                is_explicit=values.get("x") == "1",
            )
        )
    return entries
