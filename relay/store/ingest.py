"""The durable hand-off of one upstream page: dedupe, events, delivery stream and cursor,
in ONE Lua script, so Redis (and its append-only file) applies all of it or none of it.

For each message, in page order: HSETNX the documentId into the source's seen hash of the
message's second (`keys.seen`, expiring after the dedupe TTL); only when it is new, store the
event (`relay.store.events.pack_event`, expiring after the retention), index it in the
feed (score from `keys.seq`), by message time, by documentId and by phone number (see
store/search.py), and XADD it to the delivery stream. The
source's `tenant_id`, if any, is added to the event's source line (see store/events.py). Then,
if the source still has the version the poller read, set the cursor to max(old, new) and the
poll bookkeeping (status ok, failures 0, last_polled_at, last_error).

Fencing: the script first checks that the source lock still holds this poller's token. If
not (the lock expired and another poller took the source, or the source was deleted) it
writes nothing and `SourceLockLost` is raised. A crash before the script runs commits
nothing; running the same page again after a crash creates no duplicate (the seen marks).

Chunks: a page is recorded `CHUNK_MESSAGES` messages per script call, the cursor and
bookkeeping with the last chunk only, so a huge page never blocks Redis for long nor
overflows Lua's `unpack`. Each chunk is atomic and fenced; a crash between chunks leaves the
cursor where it was, and the page fetched again dedupes against the chunks already applied.

The locks themselves are `relay.store.locks.SourceLocks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from relay.core.errors import RelayError
from relay.core.events import event_from_message
from relay.core.models import Message
from relay.store.events import pack_event
from relay.store.keys import Keys
from relay.store.search import INDEX_LUA, numbers_json, numbers_of

_LOCK_LOST = "RELAY_LOCK_LOST"  # the script's error reply starts with it
CHUNK_MESSAGES = 500

# KEYS: lock, source, seq, events, events_by_time, stream, event numbers, then per message:
# seen, event, document, and one key per number (0-2).
# ARGV: token, version, dedupe ttl s, retention s, cursor ('' for a chunk that is not the
# page's last: messages only), now, note, note keep s, then per message: documentId,
# event id, timestamp, stored event value, numbers JSON ('' for none), how many numbers.
_INGEST_SCRIPT = (
    """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('RELAY_LOCK_LOST source lock is not held by this poller')
end
local tenant = redis.call('HGET', KEYS[2], 'tenant_id')
local new_ids = {}
local duplicates = 0
local key_index = 8
local arg = 9
local ttl, numbers_key = ARGV[4], KEYS[7]
while arg <= #ARGV do
  local seen, event_key, doc_key = KEYS[key_index], KEYS[key_index + 1], KEYS[key_index + 2]
  local document_id, event_id, timestamp = ARGV[arg], ARGV[arg + 1], ARGV[arg + 2]
  local numbers, number_count = ARGV[arg + 4], tonumber(ARGV[arg + 5])
  local number_keys = {}
  for j = 1, number_count do number_keys[j] = KEYS[key_index + 2 + j] end
  if redis.call('HSETNX', seen, document_id, '') == 1 then
    redis.call('EXPIRE', seen, ARGV[3])
    local value = ARGV[arg + 3]
    if tenant and tenant ~= '' then  -- the source line becomes "source_id tenant_id"
      local second = string.find(value, '\\n', string.find(value, '\\n', 1, true) + 1, true)
      value = string.sub(value, 1, second - 1) .. ' ' .. tenant .. string.sub(value, second)
    end
    redis.call('SET', event_key, value, 'EX', ttl)
    redis.call('ZADD', KEYS[4], redis.call('INCR', KEYS[3]), event_id)
    redis.call('ZADD', KEYS[5], timestamp, event_id)
"""
    + INDEX_LUA
    + """
    redis.call('XADD', KEYS[6], '*', 'e', event_id)
    new_ids[#new_ids + 1] = event_id
  else
    duplicates = duplicates + 1
  end
  key_index = key_index + 3 + number_count
  arg = arg + 6
end
if ARGV[5] == '' then
  return {duplicates, 1, unpack(new_ids)}
end
local is_current = redis.call('HGET', KEYS[2], 'v') == ARGV[2]
if is_current then
  local cursor = tonumber(ARGV[5])
  if cursor > tonumber(redis.call('HGET', KEYS[2], 'cursor') or '0') then
    redis.call('HSET', KEYS[2], 'cursor', cursor)
  end
  local now = tonumber(ARGV[6])
  local last_error = ''
  if ARGV[7] ~= '' then
    redis.call('HSET', KEYS[2], 'gap_note', ARGV[7], 'gap_at', ARGV[6])
    last_error = ARGV[7]
  elseif now - tonumber(redis.call('HGET', KEYS[2], 'gap_at') or '0') < tonumber(ARGV[8]) then
    last_error = redis.call('HGET', KEYS[2], 'gap_note') or ''
  end
  redis.call('HSET', KEYS[2], 'status', 'ok', 'failures', 0, 'next_poll_at', 0,
    'last_polled_at', ARGV[6], 'last_error', last_error)
end
return {duplicates, is_current and 1 or 0, unpack(new_ids)}
"""
)


class SourceLockLost(RelayError):
    """This poller no longer holds the source's lock; nothing of the page was recorded."""


@dataclass(frozen=True, slots=True)
class IngestResult:
    new_event_ids: tuple[str, ...]  # events created, in page order
    duplicates: int  # messages already seen (boundary re-polls)
    is_cursor_recorded: bool  # False when the source changed meanwhile (its new state wins)


class Ingest:
    """Records pages for one key prefix; see the module docstring for the guarantees."""

    def __init__(
        self,
        *,
        redis: Redis,
        keys: Keys,
        dedupe_ttl_s: int,
        event_retention_s: int,
        gap_note_keep_s: float = 3600.0,
    ) -> None:
        self._keys = keys
        self._dedupe_ttl_s = dedupe_ttl_s
        self._event_retention_s = event_retention_s
        self._gap_note_keep_s = gap_note_keep_s
        self._script = redis.register_script(_INGEST_SCRIPT)

    async def record_page(
        self,
        *,
        source_id: str,
        token: str,
        version: int,
        messages: Sequence[Message],
        cursor: int,
        now: float,
        gap_note: str | None = None,
    ) -> IngestResult:
        """Record the page's new messages and move the cursor, atomically; raises
        SourceLockLost (recording nothing) when `token` no longer holds the source's lock."""
        new_ids: list[str] = []
        duplicates = 0
        created_at_ms = int(now * 1000)
        chunks = [messages[i : i + CHUNK_MESSAGES] for i in range(0, len(messages), CHUNK_MESSAGES)]
        for index, chunk in enumerate(chunks or [()]):
            is_last = index == max(len(chunks) - 1, 0)
            reply = await self._record_chunk(
                source_id=source_id,
                token=token,
                version=version,
                messages=chunk,
                cursor=cursor if is_last else None,
                now=now,
                created_at_ms=created_at_ms,
                gap_note=gap_note,
            )
            chunk_duplicates, is_current, *chunk_ids = reply
            duplicates += int(chunk_duplicates)
            new_ids += [str(i) for i in chunk_ids]
        return IngestResult(
            new_event_ids=tuple(new_ids),
            duplicates=duplicates,
            is_cursor_recorded=bool(int(is_current)),
        )

    async def _record_chunk(
        self,
        *,
        source_id: str,
        token: str,
        version: int,
        messages: Sequence[Message],
        cursor: int | None,
        now: float,
        created_at_ms: int,
        gap_note: str | None,
    ) -> list[int | str]:
        keys = self._keys
        script_keys = [
            keys.source_lock(source_id),
            keys.source(source_id),
            keys.seq,
            keys.events,
            keys.events_by_time,
            keys.stream,
            keys.event_numbers,
        ]
        args: list[str | int | float] = [
            token,
            version,
            self._dedupe_ttl_s,
            self._event_retention_s,
            "" if cursor is None else cursor,
            repr(now),
            gap_note or "",
            self._gap_note_keep_s,
        ]
        for message in messages:
            event = event_from_message(message, source_id=source_id, created_at_ms=created_at_ms)
            numbers = numbers_of(message.sender, message.recipient)
            script_keys += [
                keys.seen(source_id, message.timestamp),
                keys.event(event.id),
                keys.document(message.document_id),
                *(keys.number(n) for n in numbers),
            ]
            args += [
                message.document_id,
                event.id,
                message.timestamp,
                pack_event(event),
                numbers_json(numbers),
                len(numbers),
            ]
        try:
            return cast("list[int | str]", await self._script(keys=script_keys, args=args))
        except ResponseError as exc:
            if _LOCK_LOST in str(exc):
                raise SourceLockLost(f"lock of source {source_id} lost") from exc
            raise
