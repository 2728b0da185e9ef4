"""The delivery hand-off stream and its consumer group (first attempts, read by dispatchers).

`publish` is the producers' side (ingest writes the same entries from its script, the admin
operations publish replays and redeliveries); the consumer side belongs to the dispatcher.

An entry is ACKed (and deleted) only once every subscription it goes to is settled: delivered,
handed to the retry queue, or dead. Until then the subscriptions already settled are kept in
`run:{entry}`, so an entry reclaimed from a dead dispatcher skips them. Entry fields are drawn
in keys.py.

Two lanes share the consumer group's name: the live stream (new messages) and the replay lane
(replays, redeliveries, dead-letter retries), so a 100,000-event replay never queues ahead of
live first attempts. A read takes live entries first and fills at most half of what is left
with replays; only when both are empty does it block, on both. Replay entries carry the
`REPLAY_ID_PREFIX` in their id, so the reader's settle goes to the right lane unchanged.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from relay.store.keys import DISPATCH_GROUP, Keys

REPLAY_ID_PREFIX = "replay:"


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
        redelivery or dead-letter retry, which ignores the created-after rule and goes
        through the replay lane."""
        fields = {"e": event_id}
        if subscription_id is not None:
            fields["s"] = subscription_id
        if explicit:
            fields["x"] = "1"
        lane = self._keys.replay_stream if explicit else self._keys.stream
        await self._redis.xadd(lane, fields)  # type: ignore[arg-type]

    async def publish_many(self, pairs: Sequence[tuple[str, str]], *, atomic: bool = False) -> None:
        """Queue explicit deliveries (event id, subscription id) in one round trip: replays,
        redeliveries and recovers, which ignore the created-after rule, on the replay lane.
        `atomic`: in one MULTI, so all are queued or none (a failed request can be retried
        without doubles)."""
        if not pairs:
            return
        async with self._redis.pipeline(transaction=atomic) as pipe:
            for event_id, subscription_id in pairs:
                fields = {"e": event_id, "s": subscription_id, "x": "1"}
                pipe.xadd(self._keys.replay_stream, fields)  # type: ignore[arg-type]
            await pipe.execute()

    async def ensure_group(self) -> None:
        """Create both lanes and their dispatch group (from the start) unless they exist."""
        for lane in (self._keys.stream, self._keys.replay_stream):
            try:
                await self._redis.xgroup_create(lane, DISPATCH_GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read(self, *, consumer: str, count: int, block_ms: int | None) -> list[StreamEntry]:
        """Up to `count` new entries for this consumer: live ones first, then replays for at
        most half of the rest; waiting up to `block_ms` on both lanes when both are empty
        (None: no wait)."""
        live_key, replay_key = self._keys.stream, self._keys.replay_stream
        live = await self._read({live_key: ">"}, consumer=consumer, count=count, block_ms=None)
        room = max(1, (count - len(live)) // 2) if len(live) < count else 0
        replays = []
        if room > 0:
            replays = await self._read(
                {replay_key: ">"}, consumer=consumer, count=room, block_ms=None
            )
        if live or replays:
            return live + replays
        return await self._read(
            {live_key: ">", replay_key: ">"},
            consumer=consumer,
            count=max(1, count // 2),
            block_ms=block_ms,
        )

    async def _read(
        self, streams: dict[str, str], *, consumer: str, count: int, block_ms: int | None
    ) -> list[StreamEntry]:
        reply = await self._redis.xreadgroup(
            DISPATCH_GROUP,
            consumer,
            streams,  # type: ignore[arg-type]
            count=count,
            block=block_ms,
        )
        found: list[StreamEntry] = []
        for stream, entries in cast("list[tuple[str, list[Any]]]", reply or []):
            found += _entries(entries, lane_prefix=self._prefix_of(stream))
        return found

    def _prefix_of(self, stream: str) -> str:
        return REPLAY_ID_PREFIX if stream == self._keys.replay_stream else ""

    async def claim_stale(
        self, *, consumer: str, min_idle_ms: int, count: int
    ) -> list[StreamEntry]:
        """Take over up to `count` entries another consumer read but left unsettled for
        `min_idle_ms` (it died or hangs): live ones first, then replays."""
        claimed: list[StreamEntry] = []
        for lane in (self._keys.stream, self._keys.replay_stream):
            cursor = "0-0"
            while len(claimed) < count:
                reply = await self._redis.xautoclaim(
                    lane,
                    DISPATCH_GROUP,
                    consumer,
                    min_idle_ms,
                    start_id=cursor,
                    count=count - len(claimed),
                )
                cursor = str(reply[0])
                rows = cast("list[tuple[str, dict[str, str] | None]]", reply[1])
                claimed.extend(_entries(rows, lane_prefix=self._prefix_of(lane)))
                if cursor == "0-0":
                    break
        return claimed

    async def holders(self) -> dict[str, int]:
        """Consumers that hold unsettled entries in either lane, with how many; {} without a
        group."""
        held: dict[str, int] = {}
        for lane in (self._keys.stream, self._keys.replay_stream):
            try:
                rows = await self._redis.xinfo_consumers(lane, DISPATCH_GROUP)
            except ResponseError:  # no stream or no group yet
                continue
            for row in rows:
                if int(row["pending"]):
                    name = str(row["name"])
                    held[name] = held.get(name, 0) + int(row["pending"])
        return held

    async def claim_from(
        self, holder: str, *, consumer: str, min_idle_ms: int, count: int
    ) -> list[StreamEntry]:
        """Take over up to `count` of the entries `holder` (a dead consumer) left unsettled,
        those idle at least `min_idle_ms`: two peers taking over at once split them, since a
        claim resets the idle time."""
        claimed: list[StreamEntry] = []
        for lane in (self._keys.stream, self._keys.replay_stream):
            if len(claimed) >= count:
                break
            try:
                pending = await self._redis.xpending_range(
                    lane,
                    DISPATCH_GROUP,
                    min="-",
                    max="+",
                    count=count - len(claimed),
                    consumername=holder,
                )
            except ResponseError:  # no stream or no group yet
                continue
            ids: list[str | bytes | int | memoryview[int]] = [row["message_id"] for row in pending]
            if not ids:
                continue
            rows = await self._redis.xclaim(lane, DISPATCH_GROUP, consumer, min_idle_ms, ids)
            claimed += _entries(
                cast("list[tuple[str, dict[str, str] | None]]", rows),
                lane_prefix=self._prefix_of(lane),
            )
        return claimed

    async def claim_orphans(
        self, consumer: str, *, known: Container[str], min_idle_ms: int, count: int
    ) -> list[StreamEntry]:
        """Re-take up to `count` of `consumer`'s own unsettled entries, idle at least
        `min_idle_ms`, that it does not know it holds (`known`: its tracked entry ids): read
        by a reply it never got (a connection lost mid-read), so only it can see them soon."""
        claimed: list[StreamEntry] = []
        for lane in (self._keys.stream, self._keys.replay_stream):
            if len(claimed) >= count:
                break
            prefix = self._prefix_of(lane)
            try:
                pending = await self._redis.xpending_range(
                    lane, DISPATCH_GROUP, min="-", max="+", count=count, consumername=consumer
                )
            except ResponseError:  # no stream or no group yet
                continue
            ids: list[str | bytes | int | memoryview[int]] = []
            for row in pending:
                idle = int(row["time_since_delivered"]) >= min_idle_ms
                if idle and prefix + str(row["message_id"]) not in known:
                    ids.append(row["message_id"])
            del ids[count - len(claimed) :]
            if not ids:
                continue
            rows = await self._redis.xclaim(lane, DISPATCH_GROUP, consumer, min_idle_ms, ids)
            claimed += _entries(
                cast("list[tuple[str, dict[str, str] | None]]", rows), lane_prefix=prefix
            )
        return claimed

    async def forget_idle_consumers(self, *, min_idle_ms: int) -> int:
        """Remove consumers (dead dispatchers) that hold no entries and have been idle for
        `min_idle_ms`, so the group's consumer list does not grow with every restart. One
        script per lane: a consumer cannot read an entry between the check and its removal."""
        removed = 0
        for lane in (self._keys.stream, self._keys.replay_stream):
            if not await self._redis.exists(lane):
                continue
            try:
                removed += int(await self._forget(keys=[lane], args=[DISPATCH_GROUP, min_idle_ms]))
            except ResponseError:  # no group yet
                continue
        return removed

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
                for lane, ids in _by_lane(finished, keys):
                    pipe.xack(lane, DISPATCH_GROUP, *ids)
                    pipe.xdel(lane, *ids)
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


def _by_lane(entry_ids: Sequence[str], keys: Keys) -> list[tuple[str, list[str]]]:
    """Entry ids split by lane, each with its stream key and the ids as the stream knows them."""
    live = [i for i in entry_ids if not i.startswith(REPLAY_ID_PREFIX)]
    replay = [i.removeprefix(REPLAY_ID_PREFIX) for i in entry_ids if i.startswith(REPLAY_ID_PREFIX)]
    return [(lane, ids) for lane, ids in ((keys.stream, live), (keys.replay_stream, replay)) if ids]


def _entries(
    rows: Sequence[tuple[str, dict[str, str] | None]], *, lane_prefix: str = ""
) -> list[StreamEntry]:
    """Parsed entries; one deleted meanwhile or malformed gets an empty event id (nothing to
    deliver, only to ACK)."""
    entries = []
    for entry_id, fields in rows:
        values = fields or {}
        entries.append(
            StreamEntry(
                id=lane_prefix + entry_id,
                event_id=values.get("e", ""),
                subscription_id=values.get("s") or None,
                is_explicit=values.get("x") == "1",
            )
        )
    return entries
